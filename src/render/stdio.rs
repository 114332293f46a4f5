//! Standard output and error that go quiet when their reader goes away.
//!
//! Must never panic, and never stop or change a command half-way: once a
//! write finds the pipe closed (`nixflip diff … | head -1`), that stream drops
//! the rest of its output and the command finishes what it was doing (a
//! multi-file write is never cut short) with the exit status it would have
//! had. Any other write error on stdout (a full disk behind `>`) is kept, and
//! the binary reports it as exit 3: output that was cut short is never a
//! success.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The reader of stdout has gone away: later output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// The same for stderr.
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
/// The first stdout write error that was not a closed pipe.
static STDOUT_FAILED: Mutex<Option<String>> = Mutex::new(None);

#[derive(Clone, Copy, Debug)]
enum Stream {
    Out,
    Err,
}

/// A writer to stdout or stderr with the behaviour described above.
#[derive(Clone, Copy, Debug)]
pub struct Quiet(Stream);

/// Standard output, quiet once closed.
pub fn stdout() -> Quiet {
    Quiet(Stream::Out)
}

/// Standard error, quiet once closed.
pub fn stderr() -> Quiet {
    Quiet(Stream::Err)
}

impl Quiet {
    fn closed(&self) -> &'static AtomicBool {
        match self.0 {
            Stream::Out => &STDOUT_CLOSED,
            Stream::Err => &STDERR_CLOSED,
        }
    }

    /// Keep what a failed write says: a closed pipe silences the stream,
    /// anything else on stdout is remembered for [`stdout_failure`]. The
    /// write then counts as done, so callers (clap's generators among them)
    /// never see an error to panic on.
    fn absorb(&self, error: &io::Error) {
        self.closed().store(true, Ordering::Relaxed);
        if error.kind() == io::ErrorKind::BrokenPipe {
            return;
        }
        if let Stream::Out = self.0 {
            if let Ok(mut failed) = STDOUT_FAILED.lock() {
                failed.get_or_insert_with(|| error.to_string());
            }
        }
    }
}

impl Write for Quiet {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed().load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        let result = match self.0 {
            Stream::Out => io::stdout().lock().write_all(buf),
            Stream::Err => io::stderr().lock().write_all(buf),
        };
        if let Err(error) = result {
            self.absorb(&error);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed().load(Ordering::Relaxed) {
            return Ok(());
        }
        let result = match self.0 {
            Stream::Out => io::stdout().lock().flush(),
            Stream::Err => io::stderr().lock().flush(),
        };
        if let Err(error) = result {
            self.absorb(&error);
        }
        Ok(())
    }
}

/// `print!` through [`stdout`].
pub fn print(args: fmt::Arguments<'_>) {
    let _ = stdout().write_fmt(args);
}

/// `eprint!` through [`stderr`].
pub fn eprint(args: fmt::Arguments<'_>) {
    let _ = stderr().write_fmt(args);
}

/// Flush stdout; what a write to it failed with, other than a closed pipe.
pub fn stdout_failure() -> Option<String> {
    let _ = stdout().flush();
    STDOUT_FAILED.lock().ok().and_then(|failed| failed.clone())
}
