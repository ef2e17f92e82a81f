//! Signing, as pure functions: a request as it will be sent, and the time to sign it at, give
//! the headers to add. Nothing here sends, reads a clock or keeps state, so a signer is tested
//! with fixed times against published and independently computed signatures.
//!
//! - [`v2`]: AWS signature version 2, written by hand (HMAC-SHA1 over RGW's string to sign);
//!   every RGW accepts it.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use url::Url;

use crate::secret::Secret;

pub mod v2;

/// The access key pair of one S3 or RGW user. The secret never shows in `Debug` output.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: Secret,
}

/// What a signer sees of a request: everything that will be sent, before it is signed.
#[derive(Clone, Copy, Debug)]
pub struct Unsigned<'a> {
    pub method: &'a str,
    /// The whole URL as it will be sent: scheme, host (with the bucket, virtual-host style),
    /// percent-encoded path and query.
    pub url: &'a Url,
    /// The headers to send besides the ones the signer adds; names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    /// The bucket, when it travels in the host name rather than in the path.
    pub virtual_host_bucket: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{0}")]
    Time(String),
}

/// Signs requests: `(request, time) -> headers to add`.
pub trait Signer: Send + Sync + std::fmt::Debug {
    fn sign(
        &self,
        req: &Unsigned<'_>,
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, SignError>;
}

/// The signer an endpoint's config asks for.
pub fn signer(credentials: &Credentials) -> Box<dyn Signer> {
    Box::new(v2::V2 {
        credentials: credentials.clone(),
    })
}

/// An HTTP date (`Tue, 01 Dec 2026 07:00:00 GMT`), or why `t` has none (before 1970 or after
/// 9999: `httpdate` panics on those).
pub fn http_date(t: SystemTime) -> Result<String, String> {
    const YEAR_10000: Duration = Duration::from_secs(253_402_300_800);
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) if since < YEAR_10000 => Ok(httpdate::fmt_http_date(t)),
        _ => Err(format!(
            "{} cannot be written as an HTTP date",
            DateTime::<Utc>::from(t).to_rfc3339()
        )),
    }
}
