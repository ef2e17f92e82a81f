//! The state directory: what the exporter must remember across restarts, written so that a
//! crash or `kill -9` at any instant leaves either the old file or the new one, never a torn one.
//!
//! Per job, `<job>.state.json` holds the last fire time (to count capacity snapshots missed while
//! the exporter was down) and, for windowed jobs, the end of the contiguous run of windows
//! delivered so far (to fetch missed usage windows late). The spool lives in `spool/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is not valid ({reason}); move it away to start afresh")]
    Corrupt { path: PathBuf, reason: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically and durably: a temporary file in the same directory,
/// fsync, rename over the target, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// [`write_atomic`] for contents written piece by piece by `write` (a spooled object's body).
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".tmp-{name}"));
    let f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
    write(&mut w).map_err(io_err(&tmp))?;
    let f = w.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Creates `dir` if needed and removes the temporary files a crash may have left in it: they
/// were never renamed into place, so nothing refers to them.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), StateError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
        {
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

/// The most of a state file that is read.
const MAX_STATE_BYTES: u64 = 64 * 1024;

/// What is remembered of one job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    /// The last scheduled fire time that ran.
    pub last_fire: Option<DateTime<Utc>>,
    /// Every window ending at or before this instant has been delivered (stored or spooled).
    pub delivered_until: Option<DateTime<Utc>>,
    /// Trimming (`trim_after`) has dealt with every window ending at or before this instant:
    /// trimmed from RGW's usage log, or (before trimming began) left to the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trimmed_until: Option<DateTime<Utc>>,
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (creating it if needed) a state directory.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        prepare_dir(dir)?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    /// A state directory only read (a dry run): nothing is created, and a missing directory
    /// reads as empty state.
    pub fn existing(dir: &Path) -> StateDir {
        StateDir {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn job_file(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.state.json"))
    }

    pub fn load(&self, job: &str) -> Result<JobState, StateError> {
        use std::io::Read;
        let path = self.job_file(job);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JobState::default()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        // A state file is a few hundred bytes; whatever is far larger (a symlink to /dev/zero, a
        // stray copy of something else) is read no further than this.
        let mut bytes = Vec::new();
        file.take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        if bytes.len() as u64 > MAX_STATE_BYTES {
            return Err(StateError::Corrupt {
                path,
                reason: format!("larger than {MAX_STATE_BYTES} bytes"),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    pub fn save(&self, job: &str, state: &JobState) -> Result<(), StateError> {
        // A plain struct of optional dates: serialization cannot fail.
        let bytes = serde_json::to_vec_pretty(state).expect("job state serializes");
        write_atomic(&self.job_file(job), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::utc;

    #[test]
    fn state_round_trips_and_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::open(dir.path()).unwrap();
        assert_eq!(s.load("rgw_usage").unwrap(), JobState::default());
        let st = JobState {
            last_fire: Some(utc("2026-11-22T13:05:00Z")),
            delivered_until: Some(utc("2026-11-22T13:00:00Z")),
            trimmed_until: Some(utc("2026-11-22T10:00:00Z")),
        };
        s.save("rgw_usage", &st).unwrap();
        assert_eq!(
            StateDir::open(dir.path())
                .unwrap()
                .load("rgw_usage")
                .unwrap(),
            st
        );
    }

    #[test]
    fn an_endless_state_file_is_refused_not_read_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::open(dir.path()).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("pool_df.state.json")).unwrap();
        let err = s.load("pool_df").unwrap_err().to_string();
        assert!(err.contains("larger than 65536 bytes"), "{err}");
    }

    #[test]
    fn leftover_temporary_files_are_removed_and_corrupt_state_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".tmp-rgw_usage.state.json"), b"{\"last_f").unwrap();
        std::fs::write(dir.path().join("pool_df.state.json"), b"{\"last_f").unwrap();
        let s = StateDir::open(dir.path()).unwrap();
        assert!(!dir.path().join(".tmp-rgw_usage.state.json").exists());
        let err = s.load("pool_df").unwrap_err().to_string();
        assert!(err.contains("pool_df.state.json"), "{err}");
    }
}
