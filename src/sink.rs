//! Sinks: where rendered objects go. S3 for the daemon, standard output for `--dry-run`.

use async_trait::async_trait;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::delivery::Object;
use crate::s3::{S3Client, S3Error};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("writing to standard output: {0}")]
    Stdout(#[from] std::io::Error),
    #[error("reading object {key} back from its temporary file: {source}")]
    ReadBack { key: String, source: std::io::Error },
    #[error("the upload panicked (a bug, please report it): {0}")]
    Panicked(String),
}

#[async_trait]
pub trait Sink: Send + Sync {
    async fn put(&self, object: &Object) -> Result<(), SinkError>;
    /// Where objects go, for logs (`s3://info @ http://...`).
    fn describe(&self) -> String;
}

/// A bucket on an S3 endpoint.
pub struct S3Sink {
    pub client: S3Client,
    pub bucket: String,
    /// Objects larger than this are uploaded in parts of `part_size`.
    pub multipart_threshold: u64,
    pub part_size: u64,
}

#[async_trait]
impl Sink for S3Sink {
    async fn put(&self, o: &Object) -> Result<(), SinkError> {
        let (bucket, key, meta) = (&self.bucket, &o.key, &o.metadata);
        if o.body.len() > self.multipart_threshold {
            let part = self.part_size;
            self.client
                .put_object_multipart(bucket, key, &o.body, part, &o.content_type, meta)
                .await?;
        } else {
            self.client
                .put_object(bucket, key, &o.body, &o.content_type, meta)
                .await?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("s3://{} at {}", self.bucket, self.client.endpoint())
    }
}

/// Prints each object's key and body instead of storing it.
pub struct DryRunSink;

#[async_trait]
impl Sink for DryRunSink {
    async fn put(&self, o: &Object) -> Result<(), SinkError> {
        print(o, &mut tokio::io::stdout()).await
    }

    fn describe(&self) -> String {
        "standard output (dry run)".into()
    }
}

/// Writes an object's key line and body, then a newline only when the body does not end in
/// one (the usage text body has none), so that what follows starts on its own line and a body
/// ending in `\n` is printed exactly as stored.
async fn print(o: &Object, stdout: &mut (impl AsyncWrite + Unpin)) -> Result<(), SinkError> {
    const CHUNK: u64 = 1 << 20;
    let head = format!(
        "=== {} ({}, {} bytes)\n",
        o.key,
        o.content_type,
        o.body.len()
    );
    stdout.write_all(head.as_bytes()).await?;
    let mut last = b'\n';
    let mut offset = 0;
    while offset < o.body.len() {
        let chunk = o
            .body
            .read_range(offset, CHUNK)
            .map_err(|source| SinkError::ReadBack {
                key: o.key.clone(),
                source,
            })?;
        stdout.write_all(&chunk).await?;
        last = chunk.last().copied().unwrap_or(last);
        offset += chunk.len() as u64;
    }
    if last != b'\n' {
        stdout.write_all(b"\n").await?;
    }
    stdout.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::PayloadWriter;
    use std::io::Write;

    async fn printed(body: &[u8], spill_at: usize) -> Vec<u8> {
        let mut w = PayloadWriter::with_spill_at(spill_at);
        w.write_all(body).unwrap();
        let o = Object {
            key: "k".into(),
            body: w.finish().unwrap(),
            content_type: "text/plain".into(),
            metadata: vec![],
        };
        let mut out = Vec::new();
        print(&o, &mut out).await.unwrap();
        out
    }

    fn head(len: usize) -> Vec<u8> {
        format!("=== k (text/plain, {len} bytes)\n").into_bytes()
    }

    #[tokio::test]
    async fn a_printed_object_ends_in_exactly_one_newline() {
        // A capacity body already ends in one: printed as stored, nothing added.
        let body = b"2026/11/22/13:05:00>default:1048576 kb 524288 kb_avail 524288 kb_used\n";
        assert_eq!(printed(body, 1 << 20).await, [&head(70)[..], body].concat());
        // The usage body has none: one is added after it (the object keeps its bytes).
        let body = b"op: 42 bytes_received:1024 bytes_sent:2048";
        assert_eq!(
            printed(body, 1 << 20).await,
            [&head(body.len())[..], body, b"\n"].concat()
        );
        assert_eq!(printed(b"", 1 << 20).await, head(0));
        // From a temporary file, over more than one read: only the body's last byte counts.
        let mut body = vec![b'x'; (1 << 20) - 1];
        body.push(b'\n');
        body.extend_from_slice(b"tail");
        assert_eq!(
            printed(&body, 16).await,
            [&head(body.len())[..], &body, b"\n"].concat()
        );
        body.push(b'\n');
        assert_eq!(
            printed(&body, 16).await,
            [&head(body.len())[..], &body].concat()
        );
    }
}
