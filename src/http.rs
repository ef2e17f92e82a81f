//! Shared HTTP plumbing: building clients with timeouts and TLS roots, reading bounded bodies,
//! and turning transport errors into one readable line.

use std::path::Path;
use std::time::Duration;

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
    #[error("response body exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("cannot use CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    /// The body arrived but could not be kept (a full or read-only temporary directory): a
    /// local failure, not the network's.
    #[error("writing the body to local disk: {0}")]
    Write(std::io::Error),
}

/// A client with connect and total timeouts, rustls, and optionally an extra CA.
pub fn client(
    connect_timeout: Duration,
    timeout: Duration,
    ca_file: Option<&Path>,
    insecure_skip_verify: bool,
) -> Result<reqwest::Client, HttpError> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(concat!("ceph-stats-exporter/", env!("CARGO_PKG_VERSION")))
        // A redirect would carry a signed body, unsigned, to another host, and its 2xx would
        // read as success: every 3xx is an answer to report, never to follow.
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(insecure_skip_verify);
    if let Some(path) = ca_file {
        let ca_err = |reason: String| HttpError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| ca_err(chain(&e)))?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| HttpError::Transport(chain(&e)))
}

/// Maps a reqwest error, telling timeouts apart. The URL is left out: callers name it
/// themselves, without its password (see [`shown`]).
pub fn classify(e: reqwest::Error, timeout: Duration) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout(timeout)
    } else {
        HttpError::Transport(chain(&e.without_url()))
    }
}

/// A URL as it may be printed: a password in it is replaced by `***`.
pub fn shown(url: &url::Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut masked = url.clone();
    // Only URLs that cannot have a password (`data:`, ...) refuse this, and they have none.
    let _ = masked.set_password(Some("***"));
    masked.to_string()
}

/// The `Location` of a 3xx answer, for the error that reports it (printed without password).
pub fn location(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let raw = headers.get(reqwest::header::LOCATION)?;
    let text = String::from_utf8_lossy(raw.as_bytes());
    Some(match url::Url::parse(&text) {
        Ok(url) => shown(&url),
        Err(_) => excerpt(text.as_bytes()),
    })
}

/// Reads a whole body, refusing to hold more than `limit` bytes.
pub async fn read_limited(
    resp: reqwest::Response,
    limit: u64,
    timeout: Duration,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    copy_limited(resp, limit, timeout, &mut body).await?;
    Ok(body)
}

/// Refuses a body whose announced length (`Content-Length`) is over `limit`, before reading it.
pub fn refuse_announced_over(resp: &reqwest::Response, limit: u64) -> Result<(), HttpError> {
    match resp.content_length() {
        Some(n) if n > limit => Err(HttpError::TooLarge { limit }),
        _ => Ok(()),
    }
}

/// Copies a body into `out` as it arrives, refusing more than `limit` bytes.
pub async fn copy_limited(
    mut resp: reqwest::Response,
    limit: u64,
    timeout: Duration,
    out: &mut impl std::io::Write,
) -> Result<u64, HttpError> {
    refuse_announced_over(&resp, limit)?;
    let mut copied = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| classify(e, timeout))? {
        copied += chunk.len() as u64;
        if copied > limit {
            return Err(HttpError::TooLarge { limit });
        }
        out.write_all(&chunk).map_err(HttpError::Write)?;
    }
    Ok(copied)
}

/// An error and all its causes on one line ("error sending request: connection refused").
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// The first bytes of a body, printable, for error messages about unexpected answers.
pub fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 160;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.len() > MAX {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_hide_the_password_only() {
        let url = url::Url::parse("http://mgr:s3cret@10.0.0.1:8080/osd?x=1").unwrap();
        assert_eq!(shown(&url), "http://mgr:***@10.0.0.1:8080/osd?x=1");
        let plain = url::Url::parse("https://rgw.example/admin").unwrap();
        assert_eq!(shown(&plain), "https://rgw.example/admin");
    }

    /// A writer on a full disk.
    struct Full;

    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::StorageFull))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_body_that_cannot_be_kept_is_a_local_error_not_a_transport_one() {
        let resp = reqwest::Response::from(hyper::Response::new("answer"));
        let err = copy_limited(resp, 1 << 20, Duration::from_secs(1), &mut Full)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HttpError::Write(e) if e.kind() == std::io::ErrorKind::StorageFull),
            "{err:?}"
        );
    }

    #[test]
    fn excerpt_is_short_and_printable() {
        assert_eq!(excerpt(b"<html>\n<body>"), "<html> <body>");
        let long = vec![b'a'; 500];
        assert_eq!(excerpt(&long).len(), 163);
    }
}
