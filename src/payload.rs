//! Payloads: the bytes of one object, written once and read back as often as uploads need.
//!
//! A usage report of a large cluster renders to tens of megabytes, so an object is not built in
//! memory: [`PayloadWriter`] keeps the first [`SPILL_AT`] bytes in memory and moves everything
//! to an unnamed temporary file beyond that, hashing and counting as the bytes go by. The
//! finished [`Payload`] knows its length and MD5 before the first request is signed, and hands
//! out ranges (a PUT's body, a multipart part) with positioned reads, so several readers need
//! no shared cursor.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use md5::{Digest, Md5};

/// Objects up to this size stay in memory; larger ones go to a temporary file.
pub const SPILL_AT: usize = 256 * 1024;

/// The bytes of an object, with their length and MD5.
#[derive(Clone)]
pub struct Payload {
    store: Store,
    len: u64,
    md5: [u8; 16],
}

#[derive(Clone)]
enum Store {
    Memory(Bytes),
    /// `len` bytes of `file` from `offset` on.
    File {
        file: Arc<File>,
        offset: u64,
    },
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match self.store {
            Store::Memory(_) => "memory",
            Store::File { .. } => "file",
        };
        f.debug_struct("Payload")
            .field("len", &self.len)
            .field("md5", &self.content_md5())
            .field("in", &place)
            .finish()
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Payload {
        Payload {
            md5: Md5::digest(&bytes).into(),
            len: bytes.len() as u64,
            store: Store::Memory(bytes.into()),
        }
    }
}

impl Payload {
    /// A region of a file already on disk (a spool entry), checked against the length and MD5
    /// it was stored with. The check reads the region once; an error names what differs.
    pub fn from_file_region(
        file: File,
        offset: u64,
        len: u64,
        content_md5: &str,
    ) -> io::Result<Result<Payload, String>> {
        let available = file.metadata()?.len().saturating_sub(offset);
        if available != len {
            return Ok(Err(format!("body is {available} bytes, header says {len}")));
        }
        let payload = Payload {
            store: Store::File {
                file: Arc::new(file),
                offset,
            },
            len,
            md5: [0; 16],
        };
        let mut hasher = Md5::new();
        payload.for_each_chunk(|chunk| {
            hasher.update(chunk);
            Ok(())
        })?;
        let md5: [u8; 16] = hasher.finalize().into();
        let payload = Payload { md5, ..payload };
        if payload.content_md5() != content_md5 {
            return Ok(Err("body does not match its MD5".into()));
        }
        Ok(Ok(payload))
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The MD5 of the whole payload, computed as it was written.
    pub fn md5(&self) -> [u8; 16] {
        self.md5
    }

    /// The MD5 of the whole payload, base64, as the `Content-MD5` header wants it.
    pub fn content_md5(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.md5)
    }

    /// `len` bytes from `offset` (clipped to the end). A memory payload shares its buffer.
    pub fn read_range(&self, offset: u64, len: u64) -> io::Result<Bytes> {
        let start = offset.min(self.len);
        let end = offset.saturating_add(len).min(self.len);
        match &self.store {
            Store::Memory(bytes) => Ok(bytes.slice(start as usize..end as usize)),
            Store::File { file, offset: base } => {
                let mut buf = vec![0; (end - start) as usize];
                file.read_exact_at(&mut buf, base + start)?;
                Ok(buf.into())
            }
        }
    }

    /// Writes the whole payload to `out`, a chunk at a time.
    pub fn copy_to(&self, out: &mut impl Write) -> io::Result<()> {
        self.for_each_chunk(|chunk| out.write_all(chunk))
    }

    fn for_each_chunk(&self, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        const CHUNK: u64 = 1 << 20;
        match &self.store {
            Store::Memory(bytes) => f(bytes),
            Store::File { file, offset } => {
                let mut buf = vec![0; CHUNK as usize];
                let mut done = 0;
                while done < self.len {
                    let n = (self.len - done).min(CHUNK) as usize;
                    file.read_exact_at(&mut buf[..n], offset + done)?;
                    f(&buf[..n])?;
                    done += n as u64;
                }
                Ok(())
            }
        }
    }
}

/// Builds a [`Payload`]: in memory up to [`SPILL_AT`] bytes, in a temporary file beyond.
pub struct PayloadWriter {
    memory: Vec<u8>,
    file: Option<io::BufWriter<File>>,
    hasher: Md5,
    len: u64,
    spill_at: usize,
}

impl Default for PayloadWriter {
    fn default() -> PayloadWriter {
        PayloadWriter::with_spill_at(SPILL_AT)
    }
}

impl PayloadWriter {
    pub fn new() -> PayloadWriter {
        PayloadWriter::default()
    }

    /// A writer that spills after `spill_at` bytes (tests use small values).
    pub fn with_spill_at(spill_at: usize) -> PayloadWriter {
        PayloadWriter {
            memory: Vec::new(),
            file: None,
            hasher: Md5::new(),
            len: 0,
            spill_at,
        }
    }

    pub fn finish(self) -> io::Result<Payload> {
        let md5 = self.hasher.finalize().into();
        let store = match self.file {
            None => Store::Memory(self.memory.into()),
            Some(file) => {
                let file = file.into_inner().map_err(|e| e.into_error())?;
                Store::File {
                    file: Arc::new(file),
                    offset: 0,
                }
            }
        };
        Ok(Payload {
            store,
            len: self.len,
            md5,
        })
    }
}

impl Write for PayloadWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.memory.len() + buf.len() > self.spill_at {
            let mut file = io::BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(buf)?,
            None => self.memory.extend_from_slice(buf),
        }
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::request::content_md5;

    fn written(bytes: &[u8], spill_at: usize, piece: usize) -> Payload {
        let mut w = PayloadWriter::with_spill_at(spill_at);
        for chunk in bytes.chunks(piece) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn small_payloads_stay_in_memory_large_ones_spill_with_the_same_bytes() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let small = written(&bytes, 1 << 20, 333);
        let large = written(&bytes, 1000, 333);
        assert!(matches!(small.store, Store::Memory(_)));
        assert!(matches!(large.store, Store::File { .. }));
        for p in [&small, &large] {
            assert_eq!(p.len(), bytes.len() as u64);
            assert_eq!(p.content_md5(), content_md5(&bytes));
            assert_eq!(p.read_range(0, p.len()).unwrap(), bytes);
            assert_eq!(p.read_range(9_990, 100).unwrap(), bytes[9_990..]);
            assert_eq!(p.read_range(20_000, 10).unwrap(), b"".as_slice());
            let mut copy = Vec::new();
            p.copy_to(&mut copy).unwrap();
            assert_eq!(copy, bytes);
        }
    }

    #[test]
    fn a_file_region_is_checked_against_its_length_and_md5() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"header\nthe body").unwrap();
        let md5 = content_md5(b"the body");
        let open = || file.try_clone().unwrap();
        let p = Payload::from_file_region(open(), 7, 8, &md5)
            .unwrap()
            .unwrap();
        assert_eq!(p.read_range(0, 8).unwrap(), b"the body".as_slice());
        assert_eq!(p.content_md5(), md5);
        let short = Payload::from_file_region(open(), 7, 9, &md5).unwrap();
        assert_eq!(short.unwrap_err(), "body is 8 bytes, header says 9");
        let other = Payload::from_file_region(open(), 7, 8, &content_md5(b"the bodx")).unwrap();
        assert_eq!(other.unwrap_err(), "body does not match its MD5");
    }

    #[test]
    fn debug_shows_size_and_digest_not_bytes() {
        let p = Payload::from(b"secret-looking bytes".to_vec());
        let shown = format!("{p:?}");
        assert!(shown.contains("len: 20"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
