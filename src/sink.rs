//! Sinks: where rendered objects go. S3 for the daemon, standard output for `--dry-run`.

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::payload::Payload;
use crate::s3client::{S3Client, S3Error};

/// A rendered object, ready to store.
#[derive(Clone, Debug)]
pub struct Object {
    pub key: String,
    pub body: Payload,
    pub content_type: String,
    /// Sent as `x-amz-meta-NAME: VALUE`.
    pub metadata: Vec<(String, String)>,
}

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
        const CHUNK: u64 = 1 << 20;
        let mut stdout = tokio::io::stdout();
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

    fn describe(&self) -> String {
        "standard output (dry run)".into()
    }
}
