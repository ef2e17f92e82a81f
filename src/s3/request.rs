//! Requests as data: pure builders for every request the exporter sends, from the operation's
//! arguments to method, path, query, headers and body. Nothing here signs or sends; a built
//! [`Request`] goes to the client, which signs it at send time.
//!
//! Paths and queries are built already percent-encoded, exactly as they go on the wire, since
//! both signers sign them as sent.

use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest, Md5};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Method;

use super::xml;

/// Characters of an object key that are sent as they are; everything else is percent-encoded
/// (UTF-8 bytes for non-ASCII). `/` stays so that keys keep their "folders".
const KEY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// How the bucket is named in a request: in the path (`/bucket/key`) or in the host name
/// (`bucket.s3.example.com/key`). Virtual-host requests sign `/bucket` in front of the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    Path,
    VirtualHost,
}

/// What is kept of a successful answer's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Nothing: the body of a PUT carries nothing the exporter uses, so none is read.
    Nothing,
    /// A small XML answer (multipart initiate, complete), up to 64 KiB.
    Small,
    /// In memory, up to the endpoint's `max_response_bytes`.
    Memory,
    /// Handed over unread, to be streamed to its reader as it arrives (a large answer parsed
    /// while it is received), up to the endpoint's `max_response_bytes`.
    Stream,
}

/// One request, before signing.
#[derive(Clone, Debug)]
pub struct Request {
    /// What the request does, for messages (`PUT object`, `PUT part`, ...).
    pub op: &'static str,
    pub method: Method,
    /// The URL path as sent (already percent-encoded), with the endpoint's own path in front.
    pub path: String,
    /// The query string as sent (already encoded), without `?`.
    pub query: Option<String>,
    /// The bucket when it travels in the host name.
    pub vhost_bucket: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Shared, so that a retry sends the same bytes without copying them.
    pub body: Bytes,
    pub keep: Keep,
}

/// Where one endpoint's requests go: the path of its URL (a gateway behind a path prefix) and
/// how it names buckets.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The endpoint URL's path without its trailing `/` (empty for most).
    pub base_path: &'a str,
    pub addressing: Addressing,
}

impl Target<'_> {
    /// The path of an object, and the bucket when it travels in the host name.
    fn object(&self, bucket: &str, key: &str) -> (String, Option<String>) {
        self.bucket_and(bucket, &format!("/{}", encode_key(key)))
    }

    /// The path of a bucket itself (`/bucket/`, or `/` virtual-host style).
    fn bucket(&self, bucket: &str) -> (String, Option<String>) {
        self.bucket_and(bucket, "/")
    }

    fn bucket_and(&self, bucket: &str, rest: &str) -> (String, Option<String>) {
        match self.addressing {
            Addressing::Path => (format!("{}/{bucket}{rest}", self.base_path), None),
            Addressing::VirtualHost => (
                format!("{}{rest}", self.base_path),
                Some(bucket.to_string()),
            ),
        }
    }

    fn request(
        &self,
        op: &'static str,
        method: Method,
        (path, vhost_bucket): (String, Option<String>),
        query: Option<String>,
    ) -> Request {
        Request {
            op,
            method,
            path,
            query,
            vhost_bucket,
            headers: Vec::new(),
            body: Bytes::new(),
            keep: Keep::Nothing,
        }
    }

    /// PUT of a whole object. `content_md5` is the one taken while the object was rendered, so
    /// that bytes damaged since are refused by the server.
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_md5: String,
        content_type: &str,
        metadata: &[(String, String)],
    ) -> Request {
        let mut r = self.request("PUT object", Method::PUT, self.object(bucket, key), None);
        r.headers = vec![
            ("Content-Type".into(), content_type.into()),
            ("Content-MD5".into(), content_md5),
        ];
        r.headers.extend(metadata_headers(metadata));
        // An empty body (an hour nobody used, as records) would go without a length, which
        // RGW refuses (411 MissingContentLength); any other length the HTTP client sets.
        if body.is_empty() {
            r.headers.push(("Content-Length".into(), "0".into()));
        }
        r.body = body;
        r
    }

    /// Starts a multipart upload; the answer holds its `UploadId`.
    pub fn initiate_multipart(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        metadata: &[(String, String)],
    ) -> Request {
        let at = self.object(bucket, key);
        let mut r = self.request("initiate multipart upload", Method::POST, at, None);
        r.query = Some("uploads".into());
        r.headers = vec![("Content-Type".into(), content_type.into())];
        r.headers.extend(metadata_headers(metadata));
        r.keep = Keep::Small;
        r
    }

    /// One part (numbered from 1), with its own `Content-MD5`.
    pub fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: usize,
        chunk: Bytes,
    ) -> Request {
        let query = format!("partNumber={number}&uploadId={}", encode_query(upload_id));
        let at = self.object(bucket, key);
        let mut r = self.request("PUT part", Method::PUT, at, Some(query));
        r.headers = vec![("Content-MD5".into(), content_md5(&chunk))];
        r.body = chunk;
        r
    }

    /// Completes an upload from its parts' ETags, in part order.
    pub fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Request {
        let query = format!("uploadId={}", encode_query(upload_id));
        let at = self.object(bucket, key);
        let mut r = self.request("complete multipart upload", Method::POST, at, Some(query));
        r.headers = vec![("Content-Type".into(), "application/xml".into())];
        r.body = xml::complete_multipart(etags).into();
        r.keep = Keep::Small;
        r
    }

    pub fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> Request {
        let query = format!("uploadId={}", encode_query(upload_id));
        let at = self.object(bucket, key);
        self.request("abort multipart upload", Method::DELETE, at, Some(query))
    }

    pub fn delete_object(&self, bucket: &str, key: &str) -> Request {
        let at = self.object(bucket, key);
        self.request("DELETE object", Method::DELETE, at, None)
    }

    /// GET of a whole object, held in memory (up to the endpoint's `max_response_bytes`).
    pub fn get_object(&self, bucket: &str, key: &str) -> Request {
        let at = self.object(bucket, key);
        let mut r = self.request("GET object", Method::GET, at, None);
        r.keep = Keep::Memory;
        r
    }

    /// One page of ListObjectsV2: keys under `prefix`, after the page that gave `continuation`,
    /// at most `max_keys` (S3 caps a page at 1000). Keys come back URL-encoded
    /// (`encoding-type=url`), so that no key can upset the XML.
    pub fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u32,
    ) -> Request {
        let mut query = format!(
            "list-type=2&encoding-type=url&max-keys={max_keys}&prefix={}",
            encode_query(prefix)
        );
        if let Some(token) = continuation {
            query.push_str(&format!("&continuation-token={}", encode_query(token)));
        }
        let at = self.bucket(bucket);
        let mut r = self.request("list objects", Method::GET, at, Some(query));
        r.keep = Keep::Memory;
        r
    }

    /// A GET on the RGW admin API (`/admin/usage`, ...); `stream` hands a large answer over
    /// unread, to stream. The admin API always takes the path, whatever the addressing.
    pub fn admin_get(&self, resource: &str, query: &[(&str, &str)], stream: bool) -> Request {
        let mut r = self.admin("GET", Method::GET, resource, query);
        r.keep = if stream { Keep::Stream } else { Keep::Memory };
        r
    }

    /// Trims the usage log of `[start, end)` (`DELETE /admin/usage`, admin cap `usage=write`),
    /// of one user when `uid` is given. The bounds are RGW's `YYYY-MM-DD HH:MM:SS` (UTC); RGW
    /// trims the hourly entries whose hour starts in that range.
    pub fn trim_usage(&self, start: &str, end: &str, uid: Option<&str>) -> Request {
        let mut query = vec![("start", start), ("end", end)];
        if let Some(uid) = uid {
            query.push(("uid", uid));
        }
        self.admin("DELETE usage", Method::DELETE, "/admin/usage", &query)
    }

    fn admin(
        &self,
        op: &'static str,
        method: Method,
        resource: &str,
        query: &[(&str, &str)],
    ) -> Request {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish()
            // RGW decodes %20 and + alike; %20 reads better in logs.
            .replace('+', "%20");
        let path = format!("{}{resource}", self.base_path);
        self.request(op, method, (path, None), Some(query))
    }
}

/// An object's metadata as `x-amz-meta-*` headers.
fn metadata_headers(metadata: &[(String, String)]) -> impl Iterator<Item = (String, String)> + '_ {
    metadata
        .iter()
        .map(|(name, value)| (format!("x-amz-meta-{name}"), value.clone()))
}

/// Percent-encodes an object key for use in a URL path and, identically, in the signature.
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_ESCAPES).to_string()
}

fn encode_query(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// base64 of the MD5 of a body: the `Content-MD5` header, which RGW checks against the payload.
pub fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: Target<'static> = Target {
        base_path: "",
        addressing: Addressing::Path,
    };
    /// Virtual-host style, on a gateway behind a path prefix.
    const VHOST: Target<'static> = Target {
        base_path: "/s3",
        addressing: Addressing::VirtualHost,
    };

    /// (method, path, query, bucket in the host) of a request.
    fn line(r: &Request) -> (&str, &str, Option<&str>, Option<&str>) {
        (
            r.method.as_str(),
            &r.path,
            r.query.as_deref(),
            r.vhost_bucket.as_deref(),
        )
    }

    fn names(r: &Request) -> Vec<&str> {
        r.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn an_object_put_carries_its_checksum_type_and_metadata() {
        let meta = [("job".to_string(), "pool_df".to_string())];
        let body = Bytes::from_static(b"abc");
        let r = PATH.put_object(
            "info",
            "pool.x/1 2",
            body.clone(),
            "MD5".into(),
            "text/plain",
            &meta,
        );
        assert_eq!(line(&r), ("PUT", "/info/pool.x/1%202", None, None));
        assert_eq!(
            r.headers,
            [
                ("Content-Type".to_string(), "text/plain".to_string()),
                ("Content-MD5".into(), "MD5".into()),
                ("x-amz-meta-job".into(), "pool_df".into()),
            ]
        );
        assert_eq!((r.body, r.keep), (body, Keep::Nothing));
        let r = VHOST.put_object("info", "k", Bytes::new(), "MD5".into(), "text/plain", &[]);
        assert_eq!(line(&r), ("PUT", "/s3/k", None, Some("info")));
        // An empty object says its length: RGW refuses a PUT without one.
        assert_eq!(names(&r), ["Content-Type", "Content-MD5", "Content-Length"]);
        assert_eq!(r.headers[2].1, "0");
    }

    #[test]
    fn a_multipart_upload_is_four_requests_on_the_object() {
        let meta = [("job".to_string(), "rgw_usage".to_string())];
        let r = PATH.initiate_multipart("info", "k", "application/json", &meta);
        assert_eq!(line(&r), ("POST", "/info/k", Some("uploads"), None));
        assert_eq!(names(&r), ["Content-Type", "x-amz-meta-job"]);
        assert_eq!(r.keep, Keep::Small);
        // Upload ids are encoded as query values (RGW's hold `~`).
        let r = PATH.upload_part("info", "k", "2~a/b+c", 3, Bytes::from_static(b"abc"));
        assert_eq!(
            line(&r),
            (
                "PUT",
                "/info/k",
                Some("partNumber=3&uploadId=2%7Ea%2Fb%2Bc"),
                None
            )
        );
        assert_eq!(
            r.headers,
            [("Content-MD5".to_string(), content_md5(b"abc"))]
        );
        let r = PATH.complete_multipart("info", "k", "u1", &["\"e1\"".into()]);
        assert_eq!(line(&r), ("POST", "/info/k", Some("uploadId=u1"), None));
        assert_eq!(names(&r), ["Content-Type"]);
        assert!(r
            .body
            .starts_with(b"<CompleteMultipartUpload><Part><PartNumber>1<"));
        let r = PATH.abort_multipart("info", "k", "u1");
        assert_eq!(line(&r), ("DELETE", "/info/k", Some("uploadId=u1"), None));
        assert!(r.headers.is_empty() && r.body.is_empty());
    }

    #[test]
    fn delete_and_get_name_the_object_and_get_keeps_the_answer() {
        let r = PATH.delete_object("info", ".check/x");
        assert_eq!(line(&r), ("DELETE", "/info/.check/x", None, None));
        assert_eq!(r.keep, Keep::Nothing);
        let r = VHOST.get_object("info", "usage.2026/é");
        assert_eq!(
            line(&r),
            ("GET", "/s3/usage.2026/%C3%A9", None, Some("info"))
        );
        assert_eq!(r.keep, Keep::Memory);
    }

    #[test]
    fn a_list_page_names_its_prefix_size_and_continuation() {
        let r = PATH.list_objects("info", "usage.2026-11-22/", None, 1000);
        assert_eq!(
            line(&r),
            (
                "GET",
                "/info/",
                Some("list-type=2&encoding-type=url&max-keys=1000&prefix=usage.2026-11-22%2F"),
                None
            )
        );
        assert_eq!(r.keep, Keep::Memory);
        let r = VHOST.list_objects("info", "a b+c", Some("1/x+y=="), 2);
        assert_eq!(
            line(&r),
            (
                "GET",
                "/s3/",
                Some(
                    "list-type=2&encoding-type=url&max-keys=2&prefix=a+b%2Bc\
                     &continuation-token=1%2Fx%2By%3D%3D"
                ),
                Some("info")
            )
        );
    }

    #[test]
    fn admin_gets_take_the_path_whatever_the_addressing() {
        let q = [("format", "json"), ("start", "2026-11-22 13:00:00")];
        let r = VHOST.admin_get("/admin/usage", &q, true);
        assert_eq!(
            line(&r),
            (
                "GET",
                "/s3/admin/usage",
                Some("format=json&start=2026-11-22%2013%3A00%3A00"),
                None
            )
        );
        assert_eq!(r.keep, Keep::Stream);
        assert_eq!(PATH.admin_get("/", &[], false).keep, Keep::Memory);
    }

    #[test]
    fn a_usage_trim_deletes_exactly_its_hours_of_one_user_or_all() {
        let r = VHOST.trim_usage("2026-11-22 13:00:00", "2026-11-22 14:00:00", Some("alice"));
        assert_eq!(
            line(&r),
            (
                "DELETE",
                "/s3/admin/usage",
                Some("start=2026-11-22%2013%3A00%3A00&end=2026-11-22%2014%3A00%3A00&uid=alice"),
                None
            )
        );
        assert_eq!(
            (r.op, r.keep, r.body.len()),
            ("DELETE usage", Keep::Nothing, 0)
        );
        let all = PATH.trim_usage("2026-11-22 13:00:00", "2026-11-22 14:00:00", None);
        assert_eq!(
            all.query.as_deref(),
            Some("start=2026-11-22%2013%3A00%3A00&end=2026-11-22%2014%3A00%3A00")
        );
    }

    #[test]
    fn keys_encode_reserved_and_non_ascii_but_keep_slashes_and_unreserved() {
        assert_eq!(
            encode_key("dir/file with space+plus.txt"),
            "dir/file%20with%20space%2Bplus.txt"
        );
        assert_eq!(encode_key("a%b~c_d-e.f"), "a%25b~c_d-e.f");
        assert_eq!(
            encode_key("pool.2026-11-22/13/05/00"),
            "pool.2026-11-22/13/05/00"
        );
        assert_eq!(encode_key("é"), "%C3%A9");
    }

    #[test]
    fn content_md5_of_known_body() {
        // RFC 1321 test suite: MD5("abc") = 900150983cd24fb0d6963f7d28e17f72.
        assert_eq!(content_md5(b"abc"), "kAFQmDzST7DWlj99KOF/cg==");
    }
}
