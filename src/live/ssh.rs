//! OpenSSH as nixflip's transport to cluster members: an argv in, its output back, over one
//! multiplexed connection per host per run. It must never send a command line built any other way than by quoting each argument in [`remote_command`].
//!
//! The first command to a host starts the connection (`ControlMaster=auto`,
//! `ControlPersist`); every later one rides on it through a socket in a
//! private directory (0700) that [`Transport`] removes, after closing each
//! connection, when it is dropped. Host keys are always checked
//! (`StrictHostKeyChecking=yes`, `BatchMode=yes`: ssh never asks).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::names::Target;

/// The client nixflip runs; found on `PATH`.
pub const SSH: &str = "ssh";

/// How ssh is run.
#[derive(Clone, Debug)]
pub struct SshOptions {
    /// A known_hosts file used instead of the user's.
    pub known_hosts: Option<PathBuf>,
    /// A private key to offer (ssh's own choice otherwise).
    pub identity_file: Option<PathBuf>,
    /// Seconds to wait for a connection.
    pub connect_timeout: u64,
    /// How long one remote command may take.
    pub command_timeout: Duration,
    /// Seconds an idle connection stays open; it only matters when nixflip
    /// dies without closing it.
    pub persist: u64,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            known_hosts: None,
            identity_file: None,
            connect_timeout: 10,
            command_timeout: Duration::from_secs(30),
            persist: 60,
        }
    }
}

/// What a remote command printed and how it exited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl RemoteOutput {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// stderr's last non-empty line (the message), or a description of the exit.
    pub fn message(&self) -> String {
        self.stderr
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map_or_else(|| format!("exit status {}", self.code), str::to_string)
    }
}

/// Why a remote command produced no [`RemoteOutput`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    /// ssh could not connect or log in (its exit status 255); ssh's message.
    #[error("{0}")]
    Unreachable(String),
    /// The command ran past its time and was stopped.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// ssh could not be run, or an argument cannot be sent.
    #[error("{0}")]
    Local(String),
}

/// One run's ssh connections: at most one per host.
pub struct Transport {
    program: PathBuf,
    options: SshOptions,
    /// The control sockets' directory, removed on drop.
    dir: tempfile::TempDir,
    /// Locked while this process lives: a directory whose owner lock can
    /// be taken belongs to a process that died without removing it.
    _owner: std::fs::File,
    /// Hosts a command was sent to, each with its socket's name: their
    /// connections are closed on drop.
    used: Mutex<BTreeMap<Target, String>>,
}

/// A Unix socket's path is at most 107 bytes, and ssh first binds the
/// control socket under a name 17 bytes longer than its own: a temporary
/// directory with a longer path than this is not used for the sockets.
const MAX_CONTROL_PARENT: usize = 64;

/// The control sockets' directories are named `nixflip-ssh-XXXXXX`.
const CONTROL_PREFIX: &str = "nixflip-ssh-";

/// The file a live transport holds locked inside its directory.
const OWNER_LOCK: &str = "owner.lock";

/// A directory younger than this is left alone: its owner may not have
/// taken its lock yet.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// Remove the control directories that processes killed before their
/// clean-up left in `parent`: older than `age`, and with an owner lock
/// that can be taken (its owner is gone), or empty without one. Best
/// effort: what cannot be read or removed stays.
pub fn sweep_abandoned(parent: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_string_lossy()
            .starts_with(CONTROL_PREFIX);
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|elapsed| elapsed >= age);
        if !(ours && old) {
            continue;
        }
        match std::fs::File::open(path.join(OWNER_LOCK)) {
            // Taken: its owner is gone (the lock goes with the process).
            Ok(lock) if lock.try_lock().is_ok() => {
                drop(lock);
                let _ = std::fs::remove_dir_all(&path);
            }
            Ok(_) => {}
            // No owner lock: only an empty one is surely nobody's.
            Err(_) => {
                let _ = std::fs::remove_dir(&path);
            }
        }
    }
}

impl Transport {
    /// A transport using `ssh` from `PATH`; exit 3 when there is none.
    pub fn new(options: SshOptions) -> Result<Transport> {
        let program = crate::deploy::find_program(SSH).ok_or_else(|| {
            Error::external(
                "`ssh` is not on PATH",
                "install the OpenSSH client (Debian: apt-get install openssh-client)",
            )
        })?;
        Self::with_program(program, options)
    }

    /// A transport running `program` as ssh.
    pub fn with_program(program: PathBuf, options: SshOptions) -> Result<Transport> {
        // tempfile makes the directory 0700: nobody else may reach the sockets.
        let parent = std::env::temp_dir();
        let parent = if parent.as_os_str().len() <= MAX_CONTROL_PARENT {
            parent
        } else {
            PathBuf::from("/tmp")
        };
        sweep_abandoned(&parent, STALE_AFTER);
        let write_error = |source| {
            Error::Write {
            path: parent.clone(),
            help: "nixflip keeps its ssh control sockets in the temporary directory; set TMPDIR to a writable one".into(),
            source,
        }
        };
        let dir = tempfile::Builder::new()
            .prefix(CONTROL_PREFIX)
            .tempdir_in(&parent)
            .map_err(write_error)?;
        let owner = std::fs::File::create(dir.path().join(OWNER_LOCK)).map_err(write_error)?;
        owner.try_lock().map_err(|e| write_error(e.into()))?;
        Ok(Transport {
            program,
            options,
            dir,
            _owner: owner,
            used: Mutex::new(BTreeMap::new()),
        })
    }

    /// The directory holding the control sockets (0700, removed on drop).
    pub fn control_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run `argv` on `target` as the target user, with `stdin` as its input
    /// (none: an empty stdin). A non-zero exit of the remote command is an
    /// [`RemoteOutput`]; only ssh's own failures are errors.
    pub fn run(
        &self,
        target: &Target,
        argv: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<RemoteOutput, SshError> {
        self.run_for(target, argv, stdin, self.options.command_timeout)
    }

    /// [`Transport::run`] with its own time limit instead of
    /// `command_timeout` (a service that may take minutes to stop, a wait
    /// that is bounded on the host itself).
    pub fn run_for(
        &self,
        target: &Target,
        argv: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<RemoteOutput, SshError> {
        let line = remote_command(argv)?;
        let socket = self.socket(target);
        let mut args = self.connection_args(target, &socket)?;
        args.push("--".into());
        args.push(target.host.clone().into());
        args.push(line.into());
        let expression = duct::cmd(&self.program, args)
            .stdout_capture()
            .stderr_capture()
            .unchecked();
        let expression = match stdin {
            Some(bytes) => expression.stdin_bytes(bytes.to_vec()),
            None => expression.stdin_null(),
        };
        let handle = expression
            .start()
            .map_err(|e| SshError::Local(format!("cannot run {}: {e}", self.program.display())))?;
        let deadline = Instant::now() + timeout;
        let output = match handle.wait_deadline(deadline) {
            Ok(Some(output)) => output.clone(),
            Ok(None) => {
                let _ = handle.kill();
                return Err(SshError::TimedOut(timeout));
            }
            Err(e) => return Err(SshError::Local(format!("ssh: {e}"))),
        };
        let result = RemoteOutput {
            // Killed by a signal: no code; reported like a failed command.
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        if result.code == 255 {
            return Err(SshError::Unreachable(result.message()));
        }
        Ok(result)
    }

    /// The name of `target`'s control socket (short: see [`MAX_CONTROL_PARENT`]).
    fn socket(&self, target: &Target) -> String {
        let Ok(mut used) = self.used.lock() else {
            return "h".into();
        };
        let next = format!("h{}", used.len());
        used.entry(target.clone()).or_insert(next).clone()
    }

    /// The options every call to `target` shares (connection and control socket).
    fn connection_args(&self, target: &Target, socket: &str) -> Result<Vec<OsString>, SshError> {
        let o = &self.options;
        let mut args: Vec<OsString> = vec!["-T".into(), "-a".into(), "-x".into()];
        let mut option = |text: String| {
            args.push("-o".into());
            args.push(text.into());
        };
        option("BatchMode=yes".into());
        option("StrictHostKeyChecking=yes".into());
        option(format!("ConnectTimeout={}", o.connect_timeout));
        // A connection that dies mid-command is noticed within 15 s.
        option("ServerAliveInterval=5".into());
        option("ServerAliveCountMax=3".into());
        option("ClearAllForwardings=yes".into());
        option("ControlMaster=auto".into());
        option(format!(
            "ControlPath={}",
            config_path(&self.dir.path().join(socket))?
        ));
        option(format!("ControlPersist={}", o.persist));
        if let Some(file) = &o.known_hosts {
            option(format!("UserKnownHostsFile={}", config_path(file)?));
        }
        if let Some(file) = &o.identity_file {
            option(format!("IdentityFile={}", config_path(file)?));
        }
        if let Some(port) = target.port {
            args.push("-p".into());
            args.push(port.to_string().into());
        }
        if let Some(user) = &target.user {
            args.push("-l".into());
            args.push(user.into());
        }
        Ok(args)
    }

    /// Close `target`'s connection (`ssh -O exit`); quiet when there is none.
    fn close(&self, target: &Target, socket: &str) {
        let Ok(mut args) = self.connection_args(target, socket) else {
            return;
        };
        args.extend(["-O".into(), "exit".into(), "--".into()]);
        args.push(target.host.clone().into());
        let _ = duct::cmd(&self.program, args)
            .stdin_null()
            .stdout_null()
            .stderr_null()
            .unchecked()
            .run();
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        let used = self
            .used
            .lock()
            .map(|mut set| std::mem::take(&mut *set))
            .unwrap_or_default();
        for (target, socket) in &used {
            self.close(target, socket);
        }
    }
}

/// The command line ssh sends: OpenSSH joins its command arguments with
/// spaces and the remote login shell parses the result, so each argument is
/// quoted here, once, for a POSIX shell.
pub fn remote_command(argv: &[&str]) -> Result<String, SshError> {
    if argv.is_empty() {
        return Err(SshError::Local("no remote command".into()));
    }
    shlex::try_join(argv.iter().copied())
        .map_err(|e| SshError::Local(format!("cannot send {argv:?} to a remote shell: {e}")))
}

/// A path as an ssh `-o` value: `%` starts a token there (so it is
/// doubled), and a value with spaces must be quoted.
fn config_path(path: &Path) -> Result<String, SshError> {
    let text = path
        .to_str()
        .ok_or_else(|| SshError::Local(format!("{} is not valid UTF-8", path.display())))?;
    if text.contains(['"', '\n', '\r', '\0']) {
        return Err(SshError::Local(format!(
            "{text:?} cannot be passed to ssh (a quote or line break in the path)"
        )));
    }
    let text = text.replace('%', "%%");
    Ok(if text.contains(char::is_whitespace) {
        format!("\"{text}\"")
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directories_of_dead_owners_are_swept() {
        let parent = tempfile::tempdir().expect("tempdir");
        let make = |name: &str, lock: bool, other: bool| {
            let dir = parent.path().join(name);
            std::fs::create_dir(&dir).expect("mkdir");
            if other {
                std::fs::write(dir.join("socket"), "").expect("write");
            }
            lock.then(|| std::fs::File::create(dir.join(OWNER_LOCK)).expect("lock file"))
        };
        make("nixflip-ssh-dead", true, true);
        let live = make("nixflip-ssh-live", true, true).expect("a lock file");
        live.try_lock().expect("locked");
        make("nixflip-ssh-empty", false, false);
        make("nixflip-ssh-unowned", false, true);
        make("something-else", true, true);
        // Young directories are all left alone.
        sweep_abandoned(parent.path(), STALE_AFTER);
        assert!(parent.path().join("nixflip-ssh-dead").exists());
        assert!(parent.path().join("nixflip-ssh-empty").exists());
        sweep_abandoned(parent.path(), Duration::ZERO);
        let left: std::collections::BTreeSet<String> = std::fs::read_dir(parent.path())
            .expect("read_dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let want = ["nixflip-ssh-live", "nixflip-ssh-unowned", "something-else"];
        assert_eq!(left, want.iter().map(|s| s.to_string()).collect());
        drop(live);
    }

    #[test]
    fn a_transport_holds_its_directory_and_removes_it_on_drop() {
        let transport = Transport::with_program(PathBuf::from("ssh"), SshOptions::default())
            .expect("transport");
        let dir = transport.control_dir().to_path_buf();
        let lock = std::fs::File::open(dir.join(OWNER_LOCK)).expect("owner lock");
        assert!(lock.try_lock().is_err(), "the owner lock is held");
        drop(transport);
        assert!(!dir.exists());
    }

    #[test]
    fn each_argument_is_quoted_once() {
        let line = remote_command(&["psql", "-v", "name=it's $(rm -rf /); `x`", "-c", ""])
            .expect("quotable");
        assert_eq!(
            shlex::split(&line),
            Some(vec![
                "psql".to_string(),
                "-v".into(),
                "name=it's $(rm -rf /); `x`".into(),
                "-c".into(),
                "".into()
            ])
        );
        assert!(remote_command(&["a\0b"]).is_err());
        assert!(remote_command(&[]).is_err());
    }

    #[test]
    fn paths_as_ssh_option_values() {
        assert_eq!(
            config_path(Path::new("/a b/known_hosts%1")),
            Ok("\"/a b/known_hosts%%1\"".to_string())
        );
        assert_eq!(
            config_path(Path::new("/tmp/x/h0")),
            Ok("/tmp/x/h0".to_string())
        );
        assert!(config_path(Path::new("/a\"b")).is_err());
    }

    #[test]
    fn the_message_is_the_last_stderr_line() {
        let out = RemoteOutput {
            code: 2,
            stdout: String::new(),
            stderr: "warning: x\npsql: error: connection refused\n\n".into(),
        };
        assert_eq!(out.message(), "psql: error: connection refused");
        let quiet = RemoteOutput {
            code: 3,
            stdout: String::new(),
            stderr: String::new(),
        };
        assert_eq!(quiet.message(), "exit status 3");
    }
}
