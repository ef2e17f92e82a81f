//! What resolving a config reads besides the file: environment variables, secret files,
//! systemd's credentials directory, the clock. Injected, so that resolution is testable without
//! touching the process's environment.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

pub trait Environment {
    /// An environment variable, if set and valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;
    /// A file's text (secret files, credentials).
    fn read(&self, path: &Path) -> std::io::Result<String>;
    fn now(&self) -> DateTime<Utc>;

    /// systemd's `$CREDENTIALS_DIRECTORY` (`LoadCredential=`).
    fn credentials_dir(&self) -> Option<PathBuf> {
        self.var("CREDENTIALS_DIRECTORY").map(PathBuf::from)
    }

    /// systemd's `$STATE_DIRECTORY` (`StateDirectory=`).
    fn state_directory(&self) -> Option<PathBuf> {
        self.var("STATE_DIRECTORY").map(PathBuf::from)
    }
}

/// The running process's environment, files and clock.
pub struct Process;

impl Environment for Process {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// An environment made up by a test: these variables and files, this time.
#[cfg(test)]
#[derive(Default)]
pub struct Fixed {
    pub vars: std::collections::HashMap<String, String>,
    pub files: std::collections::HashMap<PathBuf, String>,
    pub now: Option<DateTime<Utc>>,
}

#[cfg(test)]
impl Environment for Fixed {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn now(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }
}
