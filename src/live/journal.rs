//! The journal of a live operation (a switchover; any operation that changes running hosts):
//! every step's start, end, outcome and the facts it learned (LSNs, times), and the lock that
//! keeps two operations on one cluster apart. It must never leave a half-written journal: each
//! save writes a whole new file and renames it into place.
//!
//! A flake's journals live in `.git/nixflip-live/` when the flake is a git
//! work tree root, else in the state directory
//! (`$XDG_STATE_HOME/nixflip/live/<hash of the flake's path>/`, default
//! `~/.local/state/…`, mode 0700): not in a runtime directory, because a
//! journal must outlive a reboot of the operator's machine. The operation
//! in progress is `current.json`; a finished, rolled-back or aborted one is
//! moved to `runs/<start time>-<operation>.json`, where it stays as a record.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The journal's format version; a journal of another version is refused.
pub const VERSION: u32 = 1;

/// A point in time, as RFC 3339 text in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(pub jiff::Timestamp);

impl Stamp {
    pub fn now() -> Stamp {
        Stamp(jiff::Timestamp::now())
    }

    /// Seconds from `earlier` to `self` (negative when `earlier` is later).
    pub fn seconds_since(self, earlier: Stamp) -> f64 {
        let nanos = self.0.as_nanosecond() - earlier.0.as_nanosecond();
        nanos as f64 / 1e9
    }
}

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Stamp, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map(Stamp)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a time: {e}")))
    }
}

/// How an operation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Started and not finished (or interrupted: nixflip was killed).
    Running,
    /// A step failed; `--resume` continues, `--abort` rolls back if it can.
    Failed,
    /// Every step is done.
    Finished,
    /// A step failed before the point of no return and what was done was undone.
    RolledBack,
    /// The operator stopped it with `--abort`.
    Aborted,
}

/// How one attempt at a step ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// Started, not ended (yet, or ever: nixflip was killed).
    Running,
    Done,
    Failed {
        message: String,
    },
}

/// One attempt at one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub step: String,
    pub started: Stamp,
    pub finished: Option<Stamp>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What the step learned or did (LSNs, timelines, addresses, times).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, serde_json::Value>,
}

/// A whole operation: what it is about, its options, and every attempt at
/// every step, in order (a resumed run appends new attempts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    pub operation: String,
    /// The run's name: its start time.
    pub run: String,
    pub flake: PathBuf,
    pub state: State,
    /// What the operation is about and how it was asked for (hosts,
    /// flags), as the operation defines them.
    pub subject: serde_json::Value,
    pub entries: Vec<Entry>,
    /// Lines for the operator (what could not be undone, warnings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Journal {
    pub fn new(operation: &str, flake: &Path, subject: serde_json::Value) -> Journal {
        let now = Stamp::now();
        Journal {
            version: VERSION,
            operation: operation.into(),
            run: now.0.strftime("%Y%m%dT%H%M%S%.3fZ").to_string(),
            flake: flake.to_path_buf(),
            state: State::Running,
            subject,
            entries: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The last attempt at `step`.
    pub fn last(&self, step: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.step == step)
    }

    /// `step`'s last attempt succeeded.
    pub fn done(&self, step: &str) -> bool {
        self.last(step).is_some_and(|e| e.outcome == Outcome::Done)
    }

    /// `step` was ever started.
    pub fn started(&self, step: &str) -> bool {
        self.last(step).is_some()
    }

    /// A fact of the last attempt at `step` that recorded it.
    pub fn fact(&self, step: &str, key: &str) -> Option<&serde_json::Value> {
        self.entries
            .iter()
            .rev()
            .filter(|e| e.step == step)
            .find_map(|e| e.facts.get(key))
    }

    /// A fact read back as `T`.
    pub fn fact_as<T: for<'de> Deserialize<'de>>(&self, step: &str, key: &str) -> Option<T> {
        self.fact(step, key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Begin an attempt at `step`.
    pub fn start(&mut self, step: &str) {
        self.entries.push(Entry {
            step: step.into(),
            started: Stamp::now(),
            finished: None,
            outcome: Outcome::Running,
            facts: BTreeMap::new(),
        });
    }

    /// Record a fact on the current attempt (the last entry).
    pub fn record(&mut self, key: &str, value: impl Serialize) {
        if let Some(entry) = self.entries.last_mut() {
            entry.facts.insert(
                key.into(),
                serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
            );
        }
    }

    /// End the current attempt.
    pub fn finish(&mut self, outcome: Outcome) {
        if let Some(entry) = self.entries.last_mut() {
            entry.finished = Some(Stamp::now());
            entry.outcome = outcome;
        }
    }
}

/// Where a flake's journals live, and its operation lock.
pub struct Store {
    dir: PathBuf,
}

/// Held while an operation runs; released when dropped (or when the
/// process dies: an advisory `flock`).
pub struct OperationLock {
    _file: fs::File,
    pub path: PathBuf,
}

impl Store {
    /// The store of the flake at `root` (created when missing).
    pub fn for_flake(root: &Path) -> Result<Store> {
        Self::for_flake_with(root, |name| std::env::var_os(name))
    }

    /// [`Store::for_flake`] with the environment injected (for tests).
    pub fn for_flake_with(
        root: &Path,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Store> {
        let dir = if root.join(".git").is_dir() {
            root.join(".git").join("nixflip-live")
        } else {
            let absolute = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
            let base = if let Some(state) = absolute("XDG_STATE_HOME") {
                state.join("nixflip")
            } else if let Some(home) = absolute("HOME") {
                home.join(".local").join("state").join("nixflip")
            } else {
                return Err(Error::usage(
                    "no directory for the journal: neither XDG_STATE_HOME nor HOME is set",
                    "set HOME, or run nixflip in a git work tree, whose journal lives in .git",
                ));
            };
            let canonical = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&canonical, &mut hasher);
            base.join("live")
                .join(format!("{:016x}", std::hash::Hasher::finish(&hasher)))
        };
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir.join("runs"))
            .map_err(|source| Error::Write {
                path: dir.clone(),
                help: "nixflip keeps the journal of a live operation here; make it creatable"
                    .into(),
                source,
            })?;
        Ok(Store { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The journal of the operation in progress.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join("current.json")
    }

    /// Take the operation lock: refused (exit 4) while another nixflip
    /// holds it.
    pub fn lock(&self) -> Result<OperationLock> {
        let path = self.dir.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Write {
                path: path.clone(),
                help: "the journal's directory must be writable".into(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(OperationLock { _file: file, path }),
            Err(_) => Err(Error::refused(
                format!(
                    "another nixflip live operation is running on this cluster (it holds {})",
                    path.display()
                ),
                "wait for it to finish; the lock is released when its process exits",
            )),
        }
    }

    /// The operation in progress, if any.
    pub fn current(&self) -> Result<Option<Journal>> {
        let path = self.current_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Read { path, source }),
        };
        let journal: Journal = serde_json::from_str(&text).map_err(|e| {
            Error::usage(
                format!("{} is not a journal nixflip can read: {e}", path.display()),
                "it was edited or written by another version; look at it, then move it aside to start over",
            )
        })?;
        if journal.version != VERSION {
            return Err(Error::usage(
                format!(
                    "{} is a version {} journal; this nixflip reads version {VERSION}",
                    path.display(),
                    journal.version
                ),
                "finish the operation with the nixflip that started it",
            ));
        }
        Ok(Some(journal))
    }

    /// Write `journal` as the operation in progress (whole, then renamed
    /// into place, synced).
    pub fn save(&self, journal: &Journal) -> Result<()> {
        let mut text = serde_json::to_string_pretty(journal).map_err(|e| {
            Error::external(
                format!("cannot write the journal: {e}"),
                "please report this",
            )
        })?;
        text.push('\n');
        crate::fsx::replace_file(&self.current_path(), text.as_bytes(), 0o600)
    }

    /// Save `journal` one last time and move it to `runs/`: the operation
    /// is over. Returns where it went.
    pub fn close(&self, journal: &Journal) -> Result<PathBuf> {
        self.save(journal)?;
        let to = self
            .dir
            .join("runs")
            .join(format!("{}-{}.json", journal.run, journal.operation));
        fs::rename(self.current_path(), &to).map_err(|source| Error::Write {
            path: to.clone(),
            help: "the journal stays as current.json; move it to runs/ yourself".into(),
            source,
        })?;
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_outcomes_and_facts_round_trip() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::external(e.to_string(), ""))?;
        let home = dir.path().join("home");
        let store = Store::for_flake_with(dir.path(), |name| {
            (name == "HOME").then(|| home.clone().into_os_string())
        })?;
        assert!(store
            .dir()
            .starts_with(home.join(".local/state/nixflip/live")));
        assert_eq!(store.current()?, None);
        let mut j = Journal::new(
            "switchover",
            dir.path(),
            serde_json::json!({"host": "beta"}),
        );
        j.start("fence");
        j.record("fenceLsn", "0/3029CA0");
        j.finish(Outcome::Failed {
            message: "no".into(),
        });
        j.start("fence");
        j.record("fenceLsn", "0/3029D00");
        j.finish(Outcome::Done);
        j.start("catch-up");
        store.save(&j)?;
        let back = store.current()?.expect("saved");
        assert_eq!(back, j);
        assert!(back.done("fence"));
        assert!(back.started("catch-up") && !back.done("catch-up"));
        assert_eq!(
            back.fact_as::<String>("fence", "fenceLsn").as_deref(),
            Some("0/3029D00")
        );
        let lock = store.lock()?;
        assert!(store.lock().is_err(), "a second lock is refused");
        drop(lock);
        let to = store.close(&back)?;
        assert!(to.is_file());
        assert_eq!(store.current()?, None);
        Ok(())
    }

    #[test]
    fn a_git_flake_keeps_its_journal_in_git() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::external(e.to_string(), ""))?;
        fs::create_dir(dir.path().join(".git")).map_err(|e| Error::external(e.to_string(), ""))?;
        let store = Store::for_flake_with(dir.path(), |_| None)?;
        assert_eq!(store.dir(), dir.path().join(".git/nixflip-live"));
        Ok(())
    }
}
