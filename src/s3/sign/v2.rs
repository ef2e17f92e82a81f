//! AWS signature version 2 (HMAC-SHA1), as pure functions over a request.
//!
//! RGW accepts v2 signatures on both the S3 API and the admin API. A request is signed by
//! building its *string to sign* ([`string_to_sign`]), taking HMAC-SHA1 of it with the secret
//! key, and sending `Authorization: AWS <access key>:<base64 signature>`.
//!
//! The string to sign is
//!
//! ```text
//! METHOD \n Content-MD5 \n Content-Type \n Date \n CanonicalizedAmzHeaders CanonicalizedResource
//! ```
//!
//! where the Date line is empty when an `x-amz-date` header is present (that header is then
//! signed among the amz headers), and the resource is the path *exactly as sent on the wire*
//! (percent-encoded), prefixed with the bucket for virtual-host style requests, followed by the
//! S3 sub-resources of the query string. Ordinary query parameters (`format=json`, `start=...`)
//! are not signed: RGW answers `SignatureDoesNotMatch` when they are.

use std::time::SystemTime;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::percent_decode_str;
use sha1::Sha1;

use super::{http_date, Credentials, SignError, Signer, Unsigned};
use crate::secret::Secret;

/// Query parameters that are part of the signed resource: the ones RGW signs (its list differs
/// from AWS's: no `restore`; `object-lock`, `policyStatus` and `publicAccessBlock` in), sorted
/// (a test keeps it so).
pub const SUB_RESOURCES: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// What the signer needs to know of a request. `path` and `query` are as sent on the wire
/// (percent-encoded); `headers` are all request headers, names in any case.
#[derive(Clone, Copy, Debug)]
pub struct SignableRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a [(&'a str, &'a str)],
    /// The bucket, when it travels in the host name rather than in `path`.
    pub virtual_host_bucket: Option<&'a str>,
}

/// The exact string that is HMAC'd. Pure, so it can be logged (it holds no secret) and compared
/// with RGW's own (`debug rgw = 20` prints it).
pub fn string_to_sign(req: &SignableRequest<'_>) -> String {
    let header = |name: &str| -> &str {
        req.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    };
    let amz = canonical_amz_headers(req.headers);
    // x-amz-date supersedes Date: the Date line must then be empty.
    let date = if amz.iter().any(|(n, _)| n == "x-amz-date") {
        ""
    } else {
        header("date")
    };
    let mut out = String::with_capacity(128);
    for line in [
        req.method,
        header("content-md5"),
        header("content-type"),
        date,
    ] {
        out.push_str(line);
        out.push('\n');
    }
    for (name, value) in &amz {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push_str(&canonical_resource(
        req.virtual_host_bucket,
        req.path,
        req.query,
    ));
    out
}

/// `x-amz-*` headers: names lower-cased and sorted, values of repeated names joined with `,`,
/// each value trimmed and its folded lines (a line break and the indent after it) unfolded to
/// one space. White space *inside* a line is signed as it is: RGW rejects a signature made
/// over `a b` for a header sent as `a  b`.
pub fn canonical_amz_headers(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut amz: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        if !name.starts_with("x-amz-") {
            continue;
        }
        let value = value
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        match amz.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => amz.push((name, value)),
        }
    }
    amz.sort_by(|a, b| a.0.cmp(&b.0));
    amz
}

/// `/bucket` (virtual-host style only) + the path as sent + the sorted sub-resources.
pub fn canonical_resource(
    virtual_host_bucket: Option<&str>,
    path: &str,
    query: Option<&str>,
) -> String {
    let mut out = String::new();
    if let Some(bucket) = virtual_host_bucket {
        out.push('/');
        out.push_str(bucket);
    }
    out.push_str(if path.is_empty() { "/" } else { path });
    let mut subs: Vec<(String, Option<String>)> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = match pair.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (pair, None),
            };
            let name = percent_decode_str(name).decode_utf8_lossy().into_owned();
            SUB_RESOURCES.contains(&name.as_str()).then(|| {
                // Values are signed decoded (AWS: "do not encode these values when signing");
                // an empty one is signed as the bare name (`?acl`, not `?acl=`), as RGW does.
                let value = value.filter(|v| !v.is_empty()).map(|v| {
                    percent_decode_str(&v.replace('+', " "))
                        .decode_utf8_lossy()
                        .into_owned()
                });
                (name, value)
            })
        })
        .collect();
    subs.sort();
    for (i, (name, value)) in subs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        if let Some(v) = value {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// base64(HMAC-SHA1(secret, string_to_sign)).
pub fn signature(secret: &Secret, string_to_sign: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization` header value for a request.
pub fn authorization(creds: &Credentials, req: &SignableRequest<'_>) -> String {
    let sig = signature(&creds.secret_key, &string_to_sign(req));
    format!("AWS {}:{}", creds.access_key, sig)
}

/// The v2 signer behind the [`Signer`] seam: adds `Date` (the signing time) and
/// `Authorization`.
#[derive(Debug)]
pub struct V2 {
    pub credentials: Credentials,
}

impl Signer for V2 {
    fn sign(
        &self,
        req: &Unsigned<'_>,
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, SignError> {
        let date = http_date(time).map_err(SignError::Time)?;
        let mut headers: Vec<(&str, &str)> = req.header_pairs().collect();
        headers.push(("Date", &date));
        let authorization = authorization(
            &self.credentials,
            &SignableRequest {
                method: req.method,
                path: req.url.path(),
                query: req.url.query(),
                headers: &headers,
                virtual_host_bucket: req.virtual_host_bucket,
            },
        );
        Ok(vec![
            ("Date".to_string(), date),
            ("Authorization".to_string(), authorization),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example key pair of the AWS S3 v2 signing documentation.
    fn aws_example() -> Credentials {
        Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        }
    }

    fn sign(
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &[(&str, &str)],
        vhost: Option<&str>,
    ) -> (String, String) {
        let req = SignableRequest {
            method,
            path,
            query,
            headers,
            virtual_host_bucket: vhost,
        };
        let sts = string_to_sign(&req);
        let sig = signature(&aws_example().secret_key, &sts);
        (sts, sig)
    }

    // The worked examples of the AWS "Signing and authenticating REST requests" (v2) page, with
    // the `johnsmith` bucket the published signatures were computed for.
    #[test]
    fn aws_example_get_object_virtual_host() {
        let (sts, sig) = sign(
            "GET",
            "/photos/puppy.jpg",
            None,
            &[
                ("Host", "johnsmith.s3.amazonaws.com"),
                ("Date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            ],
            Some("johnsmith"),
        );
        assert_eq!(
            sts,
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg"
        );
        assert_eq!(sig, "bWq2s1WEIj+Ydj0vQ697zp+IXMU=");
    }

    #[test]
    fn aws_example_put_object() {
        let (_, sig) = sign(
            "PUT",
            "/photos/puppy.jpg",
            None,
            &[
                ("Content-Type", "image/jpeg"),
                ("Content-Length", "94328"),
                ("Host", "johnsmith.s3.amazonaws.com"),
                ("Date", "Tue, 27 Mar 2007 21:15:45 +0000"),
            ],
            Some("johnsmith"),
        );
        assert_eq!(sig, "MyyxeRY7whkBe+bq8fHCL/2kKUg=");
    }

    #[test]
    fn aws_example_list_ignores_ordinary_query_parameters() {
        let (sts, sig) = sign(
            "GET",
            "/",
            Some("prefix=photos&max-keys=50&marker=puppy"),
            &[
                ("User-Agent", "Mozilla/5.0"),
                ("Host", "johnsmith.s3.amazonaws.com"),
                ("Date", "Tue, 27 Mar 2007 19:42:41 +0000"),
            ],
            Some("johnsmith"),
        );
        assert!(sts.ends_with("\n/johnsmith/"), "{sts}");
        assert_eq!(sig, "htDYFYduRNen8P9ZfE/s9SuKy0U=");
    }

    #[test]
    fn aws_example_fetch_acl_sub_resource() {
        let (sts, sig) = sign(
            "GET",
            "/",
            Some("acl"),
            &[
                ("Host", "johnsmith.s3.amazonaws.com"),
                ("Date", "Tue, 27 Mar 2007 19:44:46 +0000"),
            ],
            Some("johnsmith"),
        );
        assert!(sts.ends_with("\n/johnsmith/?acl"), "{sts}");
        assert_eq!(sig, "c2WLPFtWHVgbEmeEG93a4cG37dM=");
    }

    #[test]
    fn aws_example_delete_x_amz_date_supersedes_date() {
        let (sts, sig) = sign(
            "DELETE",
            "/johnsmith/photos/puppy.jpg",
            None,
            &[
                ("User-Agent", "dotnet"),
                ("Host", "s3.amazonaws.com"),
                ("Date", "Tue, 27 Mar 2007 21:20:27 +0000"),
                ("x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"),
            ],
            None,
        );
        assert_eq!(
            sts,
            "DELETE\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg"
        );
        assert_eq!(sig, "R4dJ53KECjStyBO5iTBJZ4XVOaI=");
    }

    #[test]
    fn aws_example_upload_with_amz_headers_repeated_and_mixed_case() {
        let (sts, sig) = sign(
            "PUT",
            "/db-backup.dat.gz",
            None,
            &[
                ("User-Agent", "curl/7.15.5"),
                ("Host", "static.johnsmith.net:8080"),
                ("Date", "Tue, 27 Mar 2007 21:06:08 +0000"),
                ("x-amz-acl", "public-read"),
                ("content-type", "application/x-download"),
                ("Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="),
                ("X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"),
                ("X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"),
                ("X-Amz-Meta-FileChecksum", "0x02661779"),
                ("X-Amz-Meta-ChecksumAlgorithm", "crc32"),
                ("Content-Disposition", "attachment; filename=database.dat"),
                ("Content-Encoding", "gzip"),
                ("Content-Length", "5913339"),
            ],
            Some("static.johnsmith.net"),
        );
        assert_eq!(
            sts,
            "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\nTue, 27 Mar 2007 21:06:08 +0000\n\
             x-amz-acl:public-read\nx-amz-meta-checksumalgorithm:crc32\n\
             x-amz-meta-filechecksum:0x02661779\n\
             x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n\
             /static.johnsmith.net/db-backup.dat.gz"
        );
        assert_eq!(sig, "ilyl83RwaSoYIEdixDQcA4OnAnc=");
    }

    #[test]
    fn aws_example_list_all_buckets() {
        let (_, sig) = sign(
            "GET",
            "/",
            None,
            &[("Date", "Wed, 28 Mar 2007 01:29:59 +0000")],
            None,
        );
        assert_eq!(sig, "qGdzdERIC03wnaRNKh6OqZehG9s=");
    }

    #[test]
    fn aws_example_unicode_key_signed_as_encoded() {
        let (_, sig) = sign(
            "GET",
            "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
            None,
            &[("Date", "Wed, 28 Mar 2007 01:49:49 +0000")],
            None,
        );
        assert_eq!(sig, "DNEZGsoieTZ92F3bUfSPQcbGmlM=");
    }

    /// A request captured from the real RGW of the dev cluster, which accepted this signature
    /// (also a vector file: `tests/fixtures/sigv2/rgw-admin-usage.json`).
    #[test]
    fn rgw_admin_usage_signs_path_without_query() {
        let creds = Credentials {
            access_key: "EXPORTERACCESSKEY0001".into(),
            secret_key: Secret::new("exporter-secret-key-for-tests-only"),
        };
        let headers = [("Date", "Sun, 22 Nov 2026 17:46:43 GMT")];
        let req = SignableRequest {
            method: "GET",
            path: "/admin/usage",
            query: Some("format=json&show-entries=True&show-summary=True"),
            headers: &headers,
            virtual_host_bucket: None,
        };
        assert_eq!(
            string_to_sign(&req),
            "GET\n\n\nSun, 22 Nov 2026 17:46:43 GMT\n/admin/usage"
        );
        assert_eq!(
            authorization(&creds, &req),
            "AWS EXPORTERACCESSKEY0001:Ma8yxT4I6lLaOEZmFxLE8YOxTVo="
        );
    }

    /// A PUT with Content-MD5 that RGW accepted (also a vector file:
    /// `tests/fixtures/sigv2/rgw-put-object-content-md5.json`).
    #[test]
    fn rgw_put_with_content_md5() {
        let secret = Secret::new("exporter-secret-key-for-tests-only");
        let headers = [
            ("Date", "Sun, 22 Nov 2026 17:46:38 GMT"),
            ("Content-Type", "text/plain"),
            ("Content-MD5", "6yCyS7F5lHw2G3migBiOHg=="),
        ];
        let req = SignableRequest {
            method: "PUT",
            path: "/info/ceph-usage-20261122T174638Z.txt",
            query: None,
            headers: &headers,
            virtual_host_bucket: None,
        };
        assert_eq!(
            signature(&secret, &string_to_sign(&req)),
            "ujSIXk5TjcZe43Q7uKzSIKkvuzE="
        );
    }

    #[test]
    fn sub_resources_are_sorted_decoded_and_others_dropped() {
        let res = canonical_resource(
            None,
            "/b/k",
            Some("uploadId=abc%2Fd&partNumber=2&x-id=PutObject&response-content-type=text%2Fplain"),
        );
        assert_eq!(
            res,
            "/b/k?partNumber=2&response-content-type=text/plain&uploadId=abc/d"
        );
        assert_eq!(
            canonical_resource(None, "/b", Some("uploads")),
            "/b?uploads"
        );
        // As RGW signs them: an empty value is the bare name; `restore` is not signed, the
        // bucket policy and lock sub-resources are.
        assert_eq!(canonical_resource(None, "/b", Some("acl=")), "/b?acl");
        assert_eq!(canonical_resource(None, "/b/k", Some("restore")), "/b/k");
        assert_eq!(
            canonical_resource(
                None,
                "/b",
                Some("publicAccessBlock&policyStatus&object-lock")
            ),
            "/b?object-lock&policyStatus&publicAccessBlock"
        );
        assert_eq!(canonical_resource(Some("b"), "", None), "/b/");
    }

    #[test]
    fn amz_header_values_are_unfolded_and_trimmed() {
        let got = canonical_amz_headers(&[
            ("X-Amz-Meta-Note", "  first line\r\n   second\tline  "),
            ("x-amz-meta-spaced", "a  b"),
            ("Content-Type", "text/plain"),
        ]);
        assert_eq!(
            got,
            vec![
                ("x-amz-meta-note".into(), "first line second\tline".into()),
                ("x-amz-meta-spaced".into(), "a  b".into()),
            ]
        );
    }
}
