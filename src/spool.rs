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

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::delivery::Object;
use crate::payload::Payload;
use crate::state::{io_err, prepare_dir, write_atomic_with, StateError};

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

/// A header is a key, a content type and a little metadata: anything longer is damage.
const MAX_HEADER: u64 = 1 << 20;

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

    /// Keeps an object durably; returns where. The body is copied from its payload a chunk at
    /// a time, so spooling a large object does not load it.
    pub fn push(&self, object: &Object) -> Result<PathBuf, SpoolError> {
        let header = Header {
            key: object.key.clone(),
            content_type: object.content_type.clone(),
            metadata: object.metadata.clone(),
            len: object.body.len(),
            md5: object.body.content_md5(),
        };
        // Strings and numbers only: serialization cannot fail.
        let mut head = serde_json::to_vec(&header).expect("spool header serializes");
        head.push(b'\n');
        let size = head.len() as u64 + object.body.len();
        let used = self.depth()?.bytes;
        if used + size > self.max_bytes {
            return Err(SpoolError::Full {
                dir: self.dir.clone(),
                used,
                cap: self.max_bytes,
                key: object.key.clone(),
                size,
            });
        }
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.join(format!("{n:012}.obj"));
        write_atomic_with(&path, |f| {
            f.write_all(&head)?;
            object.body.copy_to(f)
        })?;
        Ok(path)
    }

    /// Reads an entry back, checking its length and MD5; a damaged one is moved to `corrupt/`.
    /// The body stays in the file: the returned object reads it from there.
    pub fn read(&self, path: &Path) -> Result<Object, SpoolError> {
        let file = std::fs::File::open(path).map_err(io_err(path))?;
        let (header, offset) = read_header(&file).map_err(io_err(path))?;
        let checked = match header {
            Ok(header) => Payload::from_file_region(file, offset, header.len, &header.md5)
                .map_err(io_err(path))?
                .map(|body| Object {
                    key: header.key,
                    body,
                    content_type: header.content_type,
                    metadata: header.metadata,
                }),
            Err(reason) => Err(reason),
        };
        checked.map_err(|reason| self.quarantine(path, reason))
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

/// The header line of an entry, and where the body starts. The outer error is the disk's; the
/// inner one says what is wrong with the entry.
fn read_header(file: &std::fs::File) -> std::io::Result<(Result<Header, String>, u64)> {
    let mut line = Vec::new();
    let mut reader = BufReader::new(file).take(MAX_HEADER);
    reader.read_until(b'\n', &mut line)?;
    let offset = line.len() as u64;
    if line.pop() != Some(b'\n') {
        return Ok((Err("no header line".into()), offset));
    }
    let header = serde_json::from_slice(&line).map_err(|e| format!("header: {e}"));
    Ok((header, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, body: &str) -> Object {
        Object {
            key: key.into(),
            body: Payload::from(body.as_bytes().to_vec()),
            content_type: "text/plain".into(),
            metadata: vec![("job".into(), "pool_df".into())],
        }
    }

    /// What must survive the spool: everything but where the body lives.
    fn view(o: &Object) -> (String, Vec<u8>, String, Vec<(String, String)>) {
        let body = o.body.read_range(0, o.body.len()).unwrap().to_vec();
        (
            o.key.clone(),
            body,
            o.content_type.clone(),
            o.metadata.clone(),
        )
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
        let got: Vec<_> = spool
            .entries()
            .unwrap()
            .iter()
            .map(|p| view(&spool.read(p).unwrap()))
            .collect();
        assert_eq!(got, vec![view(&a), view(&b), view(&c)]);
        assert_eq!(spool.depth().unwrap().objects, 3);
    }

    #[test]
    fn a_large_object_goes_through_from_temporary_file_to_spool_and_back() {
        use crate::payload::PayloadWriter;
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let mut w = PayloadWriter::with_spill_at(1024);
        for i in 0..100_000u32 {
            write!(w, "{i},").unwrap();
        }
        let big = Object {
            body: w.finish().unwrap(),
            ..object("usage.big", "")
        };
        let path = spool.push(&big).unwrap();
        let back = spool.read(&path).unwrap();
        assert_eq!(view(&back), view(&big));
        assert_eq!(back.body.content_md5(), big.body.content_md5());
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
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - 1]).unwrap();
        let err = spool.read(&path).unwrap_err();
        assert!(matches!(err, SpoolError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("header says 4"), "{err}");
        assert!(spool.entries().unwrap().is_empty());
        assert!(dir
            .path()
            .join("corrupt")
            .join(path.file_name().unwrap())
            .exists());

        let path = spool.push(&object("k2", "body")).unwrap();
        let mut flipped = std::fs::read(&path).unwrap();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        let err = spool.read(&path).unwrap_err();
        assert!(err.to_string().contains("does not match its MD5"), "{err}");
        std::fs::write(&path, b"no header line at all").unwrap();
        let err = spool.read(&path).unwrap_err();
        assert!(err.to_string().contains("no header line"), "{err}");
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
