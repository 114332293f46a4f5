//! Starting Nix before the flake it evaluates is ready.
//!
//! `nix` spends its first ~20 ms loading its libraries and reading its
//! configuration; only then does it look at a flake. A [`Gate`] lets nixflip
//! start it at once and write the scratch flake meanwhile: one more entry in
//! `NIX_USER_CONF_FILES` names a FIFO, and Nix's read of that "config file"
//! blocks until nixflip opens the gate (it writes nothing and closes, so the
//! configuration is unchanged). Nix reads its configuration before it reads
//! any flake, so nothing it evaluates can predate the open gate.
//!
//! A Nix that never reads the FIFO (one without `NIX_USER_CONF_FILES`) was
//! not held back, so what it evaluated may predate the scratch flake:
//! [`Gate::close`] reports that, and the caller evaluates again.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The environment variable Nix reads its user configuration files from.
const CONF_FILES: &str = "NIX_USER_CONF_FILES";

pub struct Gate {
    /// The FIFO, a temporary file of its own in the scratch directory
    /// (beside the flake, never inside it: Nix would copy it into the
    /// store); removed on drop, or with the directory.
    fifo: tempfile::NamedTempFile<()>,
    /// The value of `NIX_USER_CONF_FILES` for the gated Nix.
    conf_files: OsString,
    /// Blocks in opening the FIFO for writing until a reader opens it; its
    /// answer is whether that reader was Nix.
    opener: Option<JoinHandle<bool>>,
    /// The opener's answer, once collected.
    passed: Option<bool>,
    /// Set once Nix has exited: a reader after that is nixflip's own.
    nix_done: Arc<AtomicBool>,
}

impl Gate {
    /// A closed gate with its FIFO in `dir`, or `None` when one cannot be
    /// made there (no FIFO, or a path Nix's `:`-separated list cannot hold):
    /// then start Nix only once the flake is ready.
    pub fn new(dir: &Path) -> Option<Gate> {
        let fifo = tempfile::Builder::new()
            .prefix("nix-gate-")
            .suffix(".conf")
            .make_in(dir, |path| {
                let owner_only = rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR;
                Ok(rustix::fs::mkfifoat(rustix::fs::CWD, path, owner_only)?)
            })
            .ok()?;
        let conf_files = conf_files_with(fifo.path())?;
        Some(Gate {
            fifo,
            conf_files,
            opener: None,
            passed: None,
            nix_done: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Where the FIFO is.
    pub fn fifo(&self) -> &Path {
        self.fifo.path()
    }

    /// `(name, value)` of the environment variable that makes Nix wait here.
    pub fn env(&self) -> (&'static str, &OsString) {
        (CONF_FILES, &self.conf_files)
    }

    /// Let Nix through: from now on its read of the FIFO ends (empty) as soon
    /// as it gets there. Idempotent; never blocks.
    pub fn open(&mut self) {
        if self.opener.is_some() {
            return;
        }
        let fifo = self.fifo.path().to_path_buf();
        let nix_done = Arc::clone(&self.nix_done);
        self.opener = Some(std::thread::spawn(move || {
            // Opening for writing waits for a reader; closing at once gives
            // that reader an empty file. The reader is Nix unless it has
            // already exited (see `close`); checked before closing, since Nix
            // cannot finish while this end is open.
            let writer = OpenOptions::new().write(true).open(&fifo);
            let passed = writer.is_ok() && !nix_done.load(Ordering::SeqCst);
            drop(writer);
            // The gate serves one reader. Processes Nix starts inherit its
            // environment (a build hook, a nested `nix`): for them the FIFO
            // must be gone (a missing config file is skipped), or they would
            // wait at it for a writer that never comes. Nix starts them long
            // after it has read its own configuration, so this comes first.
            let _ = std::fs::remove_file(&fifo);
            passed
        }));
    }

    /// Whether Nix is known to have read the FIFO, i.e. was held until the
    /// gate opened; never blocks. (Once Nix has printed its answer, it has
    /// long been through an open gate, if it came to it at all.)
    pub fn passed(&mut self) -> bool {
        if self.passed.is_none() && self.opener.as_ref().is_some_and(|o| o.is_finished()) {
            self.passed = self.opener.take().map(|o| o.join().unwrap_or(false));
        }
        self.passed == Some(true)
    }

    /// After Nix has exited: whether it read the FIFO, i.e. was held until
    /// the gate opened. Unblocks the opener if Nix never came.
    pub fn close(mut self) -> bool {
        self.finish_opener()
    }

    fn finish_opener(&mut self) -> bool {
        if let Some(passed) = self.passed {
            return passed;
        }
        let Some(opener) = self.opener.take() else {
            return false;
        };
        self.nix_done.store(true, Ordering::SeqCst);
        // If Nix never opened the FIFO, the opener is blocked in its open (or
        // about to be): open the reading end ourselves, without blocking,
        // and hold it until the opener is done, so that its open returns
        // whenever it gets there. Should even that fail (the FIFO is gone),
        // the opener is left rather than joined: it holds nothing and ends
        // with the process.
        let _reader = if opener.is_finished() {
            None
        } else {
            let reader = OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(self.fifo.path());
            match reader {
                Ok(reader) => Some(reader),
                // Only the opener removes the FIFO, once its open succeeded:
                // it is about to finish.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(_) => return false,
            }
        };
        let passed = opener.join().unwrap_or(false);
        self.passed = Some(passed);
        passed
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        // Never leave a thread blocked on the FIFO (e.g. Nix was killed).
        self.finish_opener();
    }
}

/// `NIX_USER_CONF_FILES` as Nix would read it now, plus `fifo` last (Nix
/// applies the list back to front, so the FIFO is read first; being empty,
/// it overrides nothing). Without the variable, Nix reads the XDG config
/// files: `$XDG_CONFIG_HOME` (default `~/.config`), then each of
/// `$XDG_CONFIG_DIRS` (default `/etc/xdg`), each `/nix/nix.conf`.
fn conf_files_with(fifo: &std::path::Path) -> Option<OsString> {
    let fifo = fifo.to_str().filter(|f| !f.contains(':'))?;
    let current = match std::env::var_os(CONF_FILES) {
        Some(list) => list.into_string().ok()?,
        None => default_conf_files()?,
    };
    Some(if current.is_empty() {
        fifo.into()
    } else {
        format!("{current}:{fifo}").into()
    })
}

fn default_conf_files() -> Option<String> {
    let var = |name: &str| match std::env::var(name) {
        Ok(value) => Some(Some(value)),
        Err(std::env::VarError::NotPresent) => Some(None),
        Err(std::env::VarError::NotUnicode(_)) => None,
    };
    default_conf_files_from(
        var("HOME")?,
        var("XDG_CONFIG_HOME")?,
        var("XDG_CONFIG_DIRS")?,
    )
}

/// Nix's default list of user configuration files for these environment
/// values (a set but empty variable counts as set, as in Nix); `None` when
/// it cannot be written as a `:`-separated list.
pub fn default_conf_files_from(
    home: Option<String>,
    xdg_config_home: Option<String>,
    xdg_config_dirs: Option<String>,
) -> Option<String> {
    let config_home = match xdg_config_home {
        Some(dir) => dir,
        None => format!("{}/.config", home?),
    };
    if config_home.contains(':') {
        return None;
    }
    let dirs = xdg_config_dirs.unwrap_or_else(|| "/etc/xdg".into());
    let files: Vec<String> = std::iter::once(config_home.as_str())
        .chain(dirs.split(':').filter(|d| !d.is_empty()))
        .map(|dir| format!("{dir}/nix/nix.conf"))
        .collect();
    Some(files.join(":"))
}
