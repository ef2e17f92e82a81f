//! What went wrong, and what to do about it: the error type of every S3 and admin API request,
//! the error code read from an answer's body (XML from the S3 API, JSON from the admin API,
//! anything at all from a proxy), and the hint an operator gets for each code.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;

use super::xml;
use crate::http::{self, HttpError};

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{op} {url}: HTTP {status}{}{}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default(), hint.as_ref().map(|h| format!(": {h}")).unwrap_or_default())]
    Api {
        op: &'static str,
        url: String,
        status: u16,
        code: Option<String>,
        hint: Option<String>,
    },
    #[error("{op} {url}: {source}")]
    Http {
        op: &'static str,
        url: String,
        source: HttpError,
    },
    #[error("invalid request for {what}: {reason}")]
    Request { what: String, reason: String },
    #[error("{op} {url}: the server's clock correction is refused: {reason}")]
    ClockRefused {
        op: &'static str,
        url: String,
        reason: String,
    },
    #[error("{what}: {source} (local disk: is TMPDIR writable, with room?)")]
    Local {
        what: String,
        source: std::io::Error,
    },
}

impl S3Error {
    /// The S3 error code (`NoSuchBucket`, ...), when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            S3Error::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The URL the failed request went to, when it got that far.
    pub fn url(&self) -> &str {
        match self {
            S3Error::Api { url, .. }
            | S3Error::Http { url, .. }
            | S3Error::ClockRefused { url, .. } => url,
            S3Error::Request { .. } | S3Error::Local { .. } => "",
        }
    }
}

/// The `Code` of an S3 error: `<Error><Code>X</Code>` (S3 API, XML) or `{"Code":"X"}` (admin
/// API, JSON). `None` for anything else (a proxy's HTML page, an empty body).
pub fn error_code(body: &[u8]) -> Option<String> {
    // Codes are identifiers (`NoSuchBucket`, `ERR_NO_SUCH_BUCKET`); anything else in that place
    // (a newline that would forge a log line, markup) is not a code.
    let plain = |code: &str| {
        !code.is_empty()
            && code.len() <= 64
            && code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    };
    let text = std::str::from_utf8(body).ok()?.trim_start();
    if text.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        return v
            .get("Code")?
            .as_str()
            .filter(|c| plain(c))
            .map(str::to_string);
    }
    if text.starts_with("<?xml") || text.starts_with("<Error") {
        let start = text.find("<Code>")? + "<Code>".len();
        let len = text[start..].find("</Code>")?;
        let code = text[start..start + len].trim();
        return plain(code).then(|| code.to_string());
    }
    None
}

/// What the hint may mention about the failed request.
pub struct Context<'a> {
    /// The request's operation (`GET`, `DELETE usage`, `PUT object`, ...).
    pub op: &'a str,
    pub resource: &'a str,
    pub access_key: &'a str,
    pub sent_at: SystemTime,
    pub server_date: Option<SystemTime>,
    /// Where a 3xx answer pointed.
    pub location: Option<&'a str>,
}

/// What an operator should do about an error answer.
pub fn hint(
    status: StatusCode,
    code: Option<&str>,
    body: &[u8],
    cx: &Context<'_>,
) -> Option<String> {
    let admin = cx.resource.starts_with("/admin/");
    if status.is_redirection() {
        let to = cx.location.unwrap_or("no Location given");
        return Some(format!(
            "redirected to {to}; a signed request is never sent on to another address: set the \
             endpoint to the gateway that answers"
        ));
    }
    Some(match code {
        Some("RequestTimeTooSkewed") => {
            let local = DateTime::<Utc>::from(cx.sent_at);
            match cx.server_date {
                Some(server) => {
                    let server = DateTime::<Utc>::from(server);
                    format!(
                        "the clocks differ by {}s (local {}, server {}); RGW accepts 15 minutes: \
                         fix NTP on this host or on the gateway",
                        (local - server).num_seconds(),
                        local.to_rfc3339(),
                        server.to_rfc3339()
                    )
                }
                None => format!(
                    "local clock {} is too far from the server's; fix NTP",
                    local.to_rfc3339()
                ),
            }
        }
        Some("AccessDenied") if cx.resource.starts_with("/admin/usage") && cx.op != "GET" => {
            format!(
                "user of access key {} lacks the admin cap to trim the usage log: \
                 radosgw-admin caps add --uid=<user> --caps=\"usage=write\"",
                cx.access_key
            )
        }
        Some("AccessDenied") if cx.resource.starts_with("/admin/usage") => format!(
            "user of access key {} lacks the admin cap to read usage: \
             radosgw-admin caps add --uid=<user> --caps=\"usage=read\"",
            cx.access_key
        ),
        Some("AccessDenied") if cx.resource.starts_with("/admin/realm") => format!(
            "user of access key {} lacks the admin cap to list the zones: \
             radosgw-admin caps add --uid=<user> --caps=\"zone=read\"",
            cx.access_key
        ),
        Some("AccessDenied") if admin => format!(
            "user of access key {} lacks the admin caps for {}",
            cx.access_key, cx.resource
        ),
        Some("AccessDenied") => format!(
            "user of access key {} may not write {} (bucket policy or ownership)",
            cx.access_key, cx.resource
        ),
        Some("InvalidAccessKeyId") => format!(
            "access key {} is unknown to this gateway: check access_key",
            cx.access_key
        ),
        Some("SignatureDoesNotMatch") => format!(
            "the secret key does not match access key {} (or a proxy rewrote the request)",
            cx.access_key
        ),
        // AWS names the bucket's region when a v4 signature names another.
        Some("AuthorizationHeaderMalformed") => match xml::field(body, "Region")
            .filter(|r| r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            Some(region) => format!(
                "the bucket is in region {region}: set region = \"{region}\" (in [s3], or [rgw])"
            ),
            None => "the Authorization header was refused: check signature and region".into(),
        },
        // AWS S3 buckets created since mid-2020, and some gateways, take v4 only.
        Some("InvalidRequest")
            if xml::field(body, "Message").is_some_and(|m| m.contains("AWS4-HMAC-SHA256")) =>
        {
            "this server accepts only AWS signature v4: set signature = \"v4\" and its region \
             (in [s3], or [rgw])"
                .into()
        }
        Some("NoSuchBucket") => format!(
            "the bucket does not exist: create it first (e.g. `s3cmd mb` or a PUT on {})",
            cx.resource.split('/').take(2).collect::<Vec<_>>().join("/")
        ),
        Some("BadDigest") | Some("InvalidDigest") => {
            "the body did not match its Content-MD5: it was altered in transit".to_string()
        }
        Some("SlowDown") | Some("ServiceUnavailable") => {
            "the gateway is overloaded; the upload is retried later".to_string()
        }
        Some(_) => return None,
        None if body.is_empty() => return None,
        None => format!(
            "not an S3 error answer (a proxy in the way?): {}",
            http::excerpt(body)
        ),
    })
    .filter(|_| !status.is_success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fixture;

    #[test]
    fn codes_from_real_rgw_error_bodies() {
        let cases = [
            ("admin-error-no-usage-caps.json", "AccessDenied"),
            ("admin-error-time-skewed.json", "RequestTimeTooSkewed"),
            ("admin-error-unknown-access-key.json", "InvalidAccessKeyId"),
            ("admin-error-bad-signature.json", "SignatureDoesNotMatch"),
            ("s3-error-no-such-bucket.xml", "NoSuchBucket"),
            ("s3-error-time-skewed.xml", "RequestTimeTooSkewed"),
            ("s3-error-bad-signature.xml", "SignatureDoesNotMatch"),
        ];
        for (file, code) in cases {
            assert_eq!(error_code(&fixture(file)).as_deref(), Some(code), "{file}");
        }
    }

    #[test]
    fn no_code_from_html_garbage_or_odd_xml() {
        for body in [
            &b"<html><body>502 Bad Gateway</body></html>"[..],
            b"",
            b"\xff\xfe",
            b"{\"Code\":\"\"}",
            b"{\"Code\":42}",
            b"<?xml version=\"1.0\"?><Error><Code>",
            b"<?xml version=\"1.0\"?><Error><Code><b>x</b></Code></Error>",
            b"{\"Code\":\"AccessDenied\\n2026-12-01T00:00:00Z INFO stored\"}",
            b"{\"Code\":\"\\u001b[31mRed\"}",
        ] {
            assert_eq!(error_code(body), None, "{body:?}");
        }
    }

    fn cx<'a>(resource: &'a str, server_offset_secs: i64) -> Context<'a> {
        let sent_at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        Context {
            op: "GET",
            resource,
            access_key: "AK",
            sent_at,
            server_date: Some(
                sent_at + std::time::Duration::from_secs(server_offset_secs.unsigned_abs()),
            ),
            location: None,
        }
    }

    #[test]
    fn hints_say_what_to_do() {
        let forbidden = StatusCode::FORBIDDEN;
        let h = hint(
            forbidden,
            Some("AccessDenied"),
            b"x",
            &cx("/admin/usage", 0),
        )
        .unwrap();
        assert!(h.contains("usage=read"), "{h}");
        let trim = Context {
            op: "DELETE usage",
            ..cx("/admin/usage", 0)
        };
        let h = hint(forbidden, Some("AccessDenied"), b"x", &trim).unwrap();
        assert!(h.contains("trim") && h.contains("usage=write"), "{h}");
        let h = hint(
            forbidden,
            Some("AccessDenied"),
            b"x",
            &cx("/admin/realm/period", 0),
        );
        assert!(h.unwrap().contains("zone=read"));
        let h = hint(
            forbidden,
            Some("RequestTimeTooSkewed"),
            b"x",
            &cx("/info/k", 1200),
        )
        .unwrap();
        assert!(h.contains("-1200s") && h.contains("NTP"), "{h}");
        let h = hint(
            StatusCode::NOT_FOUND,
            Some("NoSuchBucket"),
            b"x",
            &cx("/info/pool.x", 0),
        )
        .unwrap();
        assert!(h.contains("/info"), "{h}");
        let h = hint(
            StatusCode::BAD_GATEWAY,
            None,
            b"<html>bad gateway</html>",
            &cx("/x", 0),
        )
        .unwrap();
        assert!(h.contains("<html>bad gateway"), "{h}");
    }

    #[test]
    fn a_server_that_wants_v4_or_another_region_says_which_setting_to_change() {
        let bad_request = |body: &[u8]| {
            let code = error_code(body);
            hint(
                StatusCode::BAD_REQUEST,
                code.as_deref(),
                body,
                &cx("/b/k", 0),
            )
        };
        let h = bad_request(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidRequest</Code>\
            <Message>The authorization mechanism you have provided is not supported. Please use \
            AWS4-HMAC-SHA256.</Message><RequestId>R</RequestId></Error>",
        );
        assert!(h.unwrap().contains("signature = \"v4\""));
        let h = bad_request(
            b"<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization \
            header is malformed; the region 'us-east-1' is wrong; expecting 'eu-central-1'\
            </Message><Region>eu-central-1</Region></Error>",
        );
        assert!(h.unwrap().contains("region = \"eu-central-1\""));
        // A region that is not a region name is not repeated.
        let h = bad_request(
            b"<Error><Code>AuthorizationHeaderMalformed</Code><Region>a\nb</Region></Error>",
        );
        assert!(h.unwrap().contains("check signature and region"));
        // Another InvalidRequest is not about signatures.
        let h = bad_request(b"<Error><Code>InvalidRequest</Code><Message>other</Message></Error>");
        assert_eq!(h, None);
    }

    #[test]
    fn a_redirect_names_where_it_pointed() {
        let c = Context {
            location: Some("http://elsewhere:9000/info/k"),
            ..cx("/info/k", 0)
        };
        let h = hint(StatusCode::TEMPORARY_REDIRECT, None, b"", &c).unwrap();
        assert!(h.contains("http://elsewhere:9000/info/k"), "{h}");
    }

    #[test]
    fn error_display_carries_status_code_and_hint_but_no_secret() {
        let e = S3Error::Api {
            op: "PUT object",
            url: "http://127.0.0.1:8000/info/k".into(),
            status: 404,
            code: Some("NoSuchBucket".into()),
            hint: Some("create it".into()),
        };
        assert_eq!(
            e.to_string(),
            "PUT object http://127.0.0.1:8000/info/k: HTTP 404 NoSuchBucket: create it"
        );
    }
}
