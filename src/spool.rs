//! The spool: objects that could not be uploaded yet, kept on local disk until S3 answers.
//!
//! Each object is one file, `NNNNNNNNNNNN.obj`, numbered in the order objects were spooled, so
//! the spool drains oldest first. A file is a one-line JSON header (key, content type, metadata,
//! body length and MD5) followed by the body. Files are written with [`write_atomic`], so a crash
//! leaves a whole entry or none; the header's length and MD5 are checked again on reading, and an
//! entry that fails the check is moved to `corrupt/` (and logged), never uploaded or deleted.
//!
//! The spool has a size cap. An object that would cross it is refused with
//! [`SpoolError::Full`]: the caller logs that loss loudly.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::s3auth::content_md5;
use crate::sink::Object;
use crate::state::{io_err, prepare_dir, write_atomic, StateError};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "spool {dir} is full ({used} of {cap} bytes): object {key} ({size} bytes) is NOT kept; \
         it is lost unless S3 comes back before the next run. Raise exporter.spool_max_bytes or \
         fix the upload"
    )]
    Full {
        dir: PathBuf,
        used: u64,
        cap: u64,
        key: String,
        size: u64,
    },
    #[error("spool entry {path} is damaged ({reason}); moved to {quarantine}")]
    Corrupt {
        path: PathBuf,
        reason: String,
        quarantine: PathBuf,
    },
}

#[derive(Serialize, Deserialize)]
struct Header {
    key: String,
    content_type: String,
    metadata: Vec<(String, String)>,
    len: u64,
    md5: String,
}

/// How much is waiting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    pub objects: u64,
    pub bytes: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    next: AtomicU64,
}

impl Spool {
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        prepare_dir(dir)?;
        let spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            next: AtomicU64::new(0),
        };
        let last = spool
            .entries()?
            .last()
            .and_then(|p| sequence(p))
            .unwrap_or(0);
        spool.next.store(last + 1, Ordering::SeqCst);
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The spooled entries, oldest first.
    pub fn entries(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(io_err(&self.dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| sequence(p).is_some())
            .collect();
        entries.sort();
        Ok(entries)
    }

    pub fn depth(&self) -> Result<Depth, SpoolError> {
        let mut d = Depth::default();
        for path in self.entries()? {
            d.objects += 1;
            d.bytes += std::fs::metadata(&path).map_err(io_err(&path))?.len();
        }
        Ok(d)
    }

    /// How long the oldest entry has waited.
    pub fn oldest_age(&self) -> Result<Option<std::time::Duration>, SpoolError> {
        let Some(oldest) = self.entries()?.into_iter().next() else {
            return Ok(None);
        };
        let modified = std::fs::metadata(&oldest)
            .and_then(|m| m.modified())
            .map_err(io_err(&oldest))?;
        Ok(Some(modified.elapsed().unwrap_or_default()))
    }

    /// Keeps an object durably; returns where.
    pub fn push(&self, object: &Object) -> Result<PathBuf, SpoolError> {
        let header = Header {
            key: object.key.clone(),
            content_type: object.content_type.clone(),
            metadata: object.metadata.clone(),
            len: object.body.len() as u64,
            md5: content_md5(&object.body),
        };
        // Strings and numbers only: serialization cannot fail.
        let mut bytes = serde_json::to_vec(&header).expect("spool header serializes");
        bytes.push(b'\n');
        bytes.extend_from_slice(&object.body);
        let used = self.depth()?.bytes;
        if used + bytes.len() as u64 > self.max_bytes {
            return Err(SpoolError::Full {
                dir: self.dir.clone(),
                used,
                cap: self.max_bytes,
                key: object.key.clone(),
                size: bytes.len() as u64,
            });
        }
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.join(format!("{n:012}.obj"));
        write_atomic(&path, &bytes)?;
        Ok(path)
    }

    /// Reads an entry back, checking it; a damaged one is moved to `corrupt/`.
    pub fn read(&self, path: &Path) -> Result<Object, SpoolError> {
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        parse_entry(&bytes).map_err(|reason| self.quarantine(path, reason))
    }

    pub fn remove(&self, path: &Path) -> Result<(), SpoolError> {
        std::fs::remove_file(path).map_err(io_err(path))?;
        Ok(())
    }

    fn quarantine(&self, path: &Path, reason: String) -> SpoolError {
        let dir = self.dir.join("corrupt");
        let target = dir.join(path.file_name().unwrap_or_default());
        let moved = std::fs::create_dir_all(&dir).and_then(|_| std::fs::rename(path, &target));
        match moved {
            Ok(()) => SpoolError::Corrupt {
                path: path.to_path_buf(),
                reason,
                quarantine: target,
            },
            Err(e) => io_err(path)(e).into(),
        }
    }
}

/// `000000000042.obj` -> 42.
fn sequence(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".obj")?.parse().ok()
}

fn parse_entry(bytes: &[u8]) -> Result<Object, String> {
    let newline = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no header line")?;
    let header: Header =
        serde_json::from_slice(&bytes[..newline]).map_err(|e| format!("header: {e}"))?;
    let body = bytes[newline + 1..].to_vec();
    if body.len() as u64 != header.len {
        return Err(format!(
            "body is {} bytes, header says {}",
            body.len(),
            header.len
        ));
    }
    if content_md5(&body) != header.md5 {
        return Err("body does not match its MD5".into());
    }
    Ok(Object {
        key: header.key,
        body,
        content_type: header.content_type,
        metadata: header.metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, body: &str) -> Object {
        Object {
            key: key.into(),
            body: body.as_bytes().to_vec(),
            content_type: "text/plain".into(),
            metadata: vec![("job".into(), "pool_df".into())],
        }
    }

    #[test]
    fn objects_come_back_whole_and_oldest_first_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let a = object("pool.a", "first\nwith newline");
        let b = object("usage.b", "");
        spool.push(&a).unwrap();
        spool.push(&b).unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let c = object("pool.c", "third");
        spool.push(&c).unwrap();
        let got: Vec<Object> = spool
            .entries()
            .unwrap()
            .iter()
            .map(|p| spool.read(p).unwrap())
            .collect();
        assert_eq!(got, vec![a, b, c]);
        assert_eq!(spool.depth().unwrap().objects, 3);
    }

    #[test]
    fn the_cap_refuses_loudly() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 300).unwrap();
        spool.push(&object("k1", &"x".repeat(100))).unwrap();
        let err = spool.push(&object("k2", &"y".repeat(200))).unwrap_err();
        assert!(matches!(err, SpoolError::Full { .. }), "{err}");
        assert!(err.to_string().contains("k2") && err.to_string().contains("NOT kept"));
        assert_eq!(spool.depth().unwrap().objects, 1);
    }

    #[test]
    fn damaged_entries_are_quarantined_not_uploaded_or_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let path = spool.push(&object("k", "body")).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, &bytes).unwrap();
        let err = spool.read(&path).unwrap_err();
        assert!(matches!(err, SpoolError::Corrupt { .. }), "{err}");
        assert!(spool.entries().unwrap().is_empty());
        assert!(dir
            .path()
            .join("corrupt")
            .join(path.file_name().unwrap())
            .exists());
    }

    #[test]
    fn half_written_temporaries_from_a_crash_are_ignored_and_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".tmp-000000000007.obj"), b"{\"key\":").unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(spool.entries().unwrap().is_empty());
        assert!(!dir.path().join(".tmp-000000000007.obj").exists());
    }
}
