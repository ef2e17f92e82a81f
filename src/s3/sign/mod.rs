//! Signing, as pure functions: a request as it will be sent, and the time to sign it at, give
//! the headers to add. Nothing here sends, reads a clock or keeps state, so a signer is tested
//! with fixed times against published and independently computed signatures.
//!
//! - [`v2`]: AWS signature version 2, written by hand (HMAC-SHA1 over RGW's string to sign);
//!   the default, which every RGW accepts.
//! - [`v4`]: AWS signature version 4, from the `aws-sigv4` crate, for AWS S3 buckets created
//!   since mid-2020 and gateways that refuse v2.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;

use crate::secret::Secret;

pub mod v2;
pub mod v4;

/// The access key pair of one S3 or RGW user. The secret never shows in `Debug` output.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: Secret,
}

/// Which AWS signature an endpoint's requests carry (`s3.signature`, `rgw.signature`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureVersion {
    #[default]
    V2,
    V4,
}

/// How an endpoint signs: the version, and the region a v4 signature is scoped to (v2 has
/// none; the region is kept so that `[rgw]` can inherit it alone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signing {
    pub version: SignatureVersion,
    pub region: String,
}

impl Default for Signing {
    fn default() -> Self {
        Signing {
            version: SignatureVersion::V2,
            region: "us-east-1".into(),
        }
    }
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

impl Unsigned<'_> {
    /// The headers, as the signers read them.
    fn header_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{0}")]
    Time(String),
    #[error("the v4 signer refused the request: {0}")]
    V4(String),
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
pub fn signer(credentials: &Credentials, signing: &Signing) -> Box<dyn Signer> {
    match signing.version {
        SignatureVersion::V2 => Box::new(v2::V2 {
            credentials: credentials.clone(),
        }),
        SignatureVersion::V4 => Box::new(v4::V4 {
            credentials: credentials.clone(),
            region: signing.region.clone(),
        }),
    }
}

/// An HTTP date (`Tue, 01 Dec 2026 07:00:00 GMT`), or why `t` has none (before 1970 or after
/// 9999: `httpdate` panics on those, and so does the v4 signer's date formatting).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_picks_the_signer_and_each_only_adds_headers() {
        let credentials = Credentials {
            access_key: "AK".into(),
            secret_key: Secret::new("SK"),
        };
        let url: Url = "http://127.0.0.1:8000/info/k".parse().unwrap();
        let headers = [("Content-Type".to_string(), "text/plain".to_string())];
        let req = Unsigned {
            method: "PUT",
            url: &url,
            headers: &headers,
            body: b"body",
            virtual_host_bucket: None,
        };
        // 2026-11-22T17:46:43Z
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_369_603);
        let names = |version| {
            let signing = Signing {
                version,
                ..Signing::default()
            };
            let added = signer(&credentials, &signing).sign(&req, time).unwrap();
            let auth = added
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("authorization"));
            let scheme = auth.unwrap().1.split(' ').next().unwrap().to_string();
            let mut names: Vec<String> = added.into_iter().map(|(n, _)| n).collect();
            names.sort();
            (scheme, names)
        };
        assert_eq!(
            names(SignatureVersion::V2),
            ("AWS".into(), vec!["Authorization".into(), "Date".into()])
        );
        assert_eq!(
            names(SignatureVersion::V4),
            (
                "AWS4-HMAC-SHA256".into(),
                vec![
                    "authorization".into(),
                    "x-amz-content-sha256".into(),
                    "x-amz-date".into()
                ]
            )
        );
    }
}
