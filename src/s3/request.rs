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
    /// In an unnamed temporary file, up to the endpoint's `max_response_bytes`.
    File,
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

    /// A GET on the RGW admin API (`/admin/usage`, ...); `to_file` keeps a large answer in a
    /// temporary file. The admin API always takes the path, whatever the addressing.
    pub fn admin_get(&self, resource: &str, query: &[(&str, &str)], to_file: bool) -> Request {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish()
            // RGW decodes %20 and + alike; %20 reads better in logs.
            .replace('+', "%20");
        let path = format!("{}{resource}", self.base_path);
        let mut r = self.request("GET", Method::GET, (path, None), Some(query));
        r.keep = if to_file { Keep::File } else { Keep::Memory };
        r
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
