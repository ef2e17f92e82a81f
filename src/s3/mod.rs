//! Talking S3 and the RGW admin API: one file per job, and data flows one way, from the
//! operation's arguments to the bytes on the wire and back to a result or an [`S3Error`].
//!
//! | file | its one job |
//! | --- | --- |
//! | [`request`] | pure builders: each request (PUT, multipart initiate/part/complete/abort, DELETE, GET, ListObjectsV2, admin GET) as method, encoded path and query, headers and body |
//! | [`xml`] | the small XML documents: the multipart complete body, fields of answers, a listing page |
//! | [`sign`] | the [`Signer`](sign::Signer) seam, pure: (request, time) to the headers to add; [`sign::v2`] hand-written, the default; [`sign::v4`] from the `aws-sigv4` crate |
//! | [`retry`] | the policy: which failures are retried, the backoff with jitter, the clock correction from a server's `Date` |
//! | [`error`] | [`S3Error`], the error code of an answer's body, and the hint an operator gets for each code |
//! | [`client`] | the transport: sends a built request, signed at send time, under timeouts and size limits, as [`retry`] says |
//!
//! Nothing here knows of objects, the spool or jobs: callers pass a bucket, a key, a
//! [`Payload`](crate::payload::Payload) and metadata.

pub mod client;
pub mod endpoint;
pub mod error;
pub mod request;
pub mod retry;
pub mod sign;
pub mod xml;

pub use client::{Fetched, S3Client};
pub use endpoint::Endpoint;
pub use error::{error_code, S3Error};
pub use request::Addressing;
pub use sign::{Credentials, SignatureVersion, Signing};

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every `.rs` file under `dir`, with its text.
    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.display().to_string(), text));
            }
        }
    }

    #[test]
    fn data_flows_one_way_the_s3_module_knows_nothing_of_its_callers() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src.join("s3"), &mut files);
        assert!(files.len() >= 7, "{files:?}");
        for (path, text) in &files {
            // The code, not its tests (this one names the callers).
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for caller in ["delivery", "spool", "pipeline", "jobs", "sink"] {
                assert!(
                    !code.contains(&format!("crate::{caller}")),
                    "{path} uses crate::{caller}"
                );
            }
        }
        // The spool keeps objects; it does not talk to S3.
        let spool = std::fs::read_to_string(src.join("spool.rs")).unwrap();
        for s3 in ["crate::s3", "crate::sink"] {
            assert!(!spool.contains(s3), "spool.rs uses {s3}");
        }
    }
}
