//! A small S3 / RGW client: signed PUTs of objects and signed GETs on the admin API.
//!
//! Everything goes through one `send`, which signs with [`crate::s3auth`], applies the timeouts
//! and the response size limit, and turns an error answer (XML from the S3 API, JSON from the
//! admin API, anything at all from a proxy) into an [`S3Error`] that says what to do.

use std::io::{Read, Seek, Write};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use prometheus_client::metrics::counter::Counter;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::config::Endpoint;
use crate::http::{self, HttpError};
use crate::payload::Payload;
use crate::s3auth::{self, Addressing, SignableRequest};

/// The most of an error body that is read; the code is near the start. Also the most of the
/// small XML answers of multipart initiate and complete that is read.
const SMALL_BODY_LIMIT: u64 = 64 * 1024;

/// The largest clock correction taken from a server's `Date`. A clock that far off is a broken
/// host, not drift; and a `Date` beyond it (year 9999, say) is a broken or hostile server.
const MAX_CLOCK_CORRECTION: Duration = Duration::from_secs(24 * 3600);

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

/// A signed-request client for one endpoint and one key pair.
pub struct S3Client {
    http: reqwest::Client,
    endpoint: Endpoint,
    /// Server time minus local time, learnt from a `RequestTimeTooSkewed` answer.
    clock_offset_ms: AtomicI64,
    retries: Counter,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("endpoint", &self.endpoint.url.as_str())
            .field("access_key", &self.endpoint.credentials.access_key)
            .finish_non_exhaustive()
    }
}

/// A successful answer's body: in memory, or (large answers) in an unnamed temporary file.
pub enum Body {
    Memory(Vec<u8>),
    File(std::fs::File),
}

/// A successful answer.
struct Reply {
    body: Body,
    /// The `ETag` header (multipart uploads list each part's).
    etag: Option<String>,
}

/// What is kept of a successful answer's body.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Nothing: the body of a PUT carries nothing the exporter uses, so none is read.
    Nothing,
    /// A small XML answer (multipart initiate, complete), up to [`SMALL_BODY_LIMIT`].
    Small,
    /// In memory, up to the endpoint's `max_response_bytes`.
    Memory,
    /// In an unnamed temporary file, up to the endpoint's `max_response_bytes`.
    File,
}

/// What one request is made of, before signing.
struct Req<'a> {
    keep: Keep,
    op: &'static str,
    method: Method,
    /// The URL path as sent (already percent-encoded).
    path: String,
    /// The query string as sent (already encoded), without `?`.
    query: Option<String>,
    /// The bucket when it travels in the host name.
    vhost_bucket: Option<&'a str>,
    headers: Vec<(String, String)>,
    /// Shared, so that a retry sends the same bytes without copying them.
    body: Bytes,
}

impl S3Client {
    pub fn new(endpoint: &Endpoint) -> Result<S3Client, S3Error> {
        let http = http::client(endpoint.connect_timeout, endpoint.timeout, None, false).map_err(
            |source| S3Error::Http {
                op: "connect",
                url: endpoint.url.to_string(),
                source,
            },
        )?;
        Ok(S3Client {
            http,
            endpoint: endpoint.clone(),
            clock_offset_ms: AtomicI64::new(0),
            retries: Counter::default(),
        })
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint.url
    }

    /// Counts requests sent again (transient failures, clock corrections), for metrics.
    pub fn retry_counter(&self) -> Counter {
        self.retries.clone()
    }

    /// PUT one object, with `Content-MD5` so that the server verifies the payload. The MD5 is
    /// the one computed while the object was rendered: bytes damaged since are refused.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: &Payload,
        content_type: &str,
        metadata: &[(String, String)],
    ) -> Result<(), S3Error> {
        let mut headers = vec![
            ("Content-Type".to_string(), content_type.to_string()),
            ("Content-MD5".to_string(), body.content_md5()),
        ];
        for (name, value) in metadata {
            headers.push((format!("x-amz-meta-{name}"), value.clone()));
        }
        let (path, vhost_bucket) = self.object_path(bucket, key);
        self.send(Req {
            keep: Keep::Nothing,
            op: "PUT object",
            method: Method::PUT,
            path,
            query: None,
            vhost_bucket,
            headers,
            body: read_body(body, 0, body.len(), key).await?,
        })
        .await
        .map(drop)
    }

    /// Uploads an object in parts of `part_size` bytes (S3 multipart upload: initiate, a PUT per
    /// part with its own `Content-MD5`, complete). Parts are read from the payload one at a
    /// time, and their bytes must hash to the payload's MD5 before the upload is completed. On
    /// any failure the upload is aborted, so no half object and no orphaned parts stay behind.
    pub async fn put_object_multipart(
        &self,
        bucket: &str,
        key: &str,
        body: &Payload,
        part_size: u64,
        content_type: &str,
        metadata: &[(String, String)],
    ) -> Result<(), S3Error> {
        let (path, vhost_bucket) = self.object_path(bucket, key);
        let mut headers = vec![("Content-Type".to_string(), content_type.to_string())];
        for (name, value) in metadata {
            headers.push((format!("x-amz-meta-{name}"), value.clone()));
        }
        let initiated = self
            .send(Req {
                keep: Keep::Small,
                op: "initiate multipart upload",
                method: Method::POST,
                path: path.clone(),
                query: Some("uploads".into()),
                vhost_bucket,
                headers,
                body: Bytes::new(),
            })
            .await?;
        let upload_id = match &initiated.body {
            Body::Memory(xml) => xml_field(xml, "UploadId"),
            Body::File(_) => None,
        }
        .ok_or_else(|| S3Error::Request {
            what: format!("multipart upload of {key}"),
            reason: "the initiate answer has no UploadId".into(),
        })?;
        let upload = async {
            let mut parts = String::from("<CompleteMultipartUpload>");
            let mut whole = Md5::new();
            let part_size = part_size.max(1);
            for (i, offset) in (0..body.len().max(1))
                .step_by(part_size as usize)
                .enumerate()
            {
                let n = i + 1;
                let chunk = read_body(body, offset, part_size, key).await?;
                whole.update(&chunk);
                let reply = self
                    .send(Req {
                        keep: Keep::Nothing,
                        op: "PUT part",
                        method: Method::PUT,
                        path: path.clone(),
                        query: Some(format!(
                            "partNumber={n}&uploadId={}",
                            encode_query(&upload_id)
                        )),
                        vhost_bucket,
                        headers: vec![("Content-MD5".into(), s3auth::content_md5(&chunk))],
                        body: chunk,
                    })
                    .await?;
                let etag = reply.etag.unwrap_or_default();
                parts.push_str(&format!(
                    "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
                ));
            }
            parts.push_str("</CompleteMultipartUpload>");
            if <[u8; 16]>::from(whole.finalize()) != body.md5() {
                return Err(S3Error::Request {
                    what: format!("multipart upload of {key}"),
                    reason: "the parts read back do not hash to the object as rendered \
                             (temporary file damaged?)"
                        .into(),
                });
            }
            let done = self
                .send(Req {
                    keep: Keep::Small,
                    op: "complete multipart upload",
                    method: Method::POST,
                    path: path.clone(),
                    query: Some(format!("uploadId={}", encode_query(&upload_id))),
                    vhost_bucket,
                    headers: vec![("Content-Type".into(), "application/xml".into())],
                    body: parts.into(),
                })
                .await?;
            // S3 may answer 200 and still report an error in the body.
            match &done.body {
                Body::Memory(xml) if xml_field(xml, "Code").is_some() => Err(S3Error::Api {
                    op: "complete multipart upload",
                    url: format!("{}{path}", self.endpoint.url.origin().ascii_serialization()),
                    status: 200,
                    code: xml_field(xml, "Code"),
                    hint: None,
                }),
                _ => Ok(()),
            }
        }
        .await;
        if upload.is_err() {
            let aborted = self
                .send(Req {
                    keep: Keep::Nothing,
                    op: "abort multipart upload",
                    method: Method::DELETE,
                    path: path.clone(),
                    query: Some(format!("uploadId={}", encode_query(&upload_id))),
                    vhost_bucket,
                    headers: vec![],
                    body: Bytes::new(),
                })
                .await;
            if let Err(e) = aborted {
                tracing::warn!("could not abort the multipart upload of {key}: {e}");
            }
        }
        upload
    }

    /// DELETE one object (`check` removes its probe with it).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        let (path, vhost_bucket) = self.object_path(bucket, key);
        self.send(Req {
            keep: Keep::Nothing,
            op: "DELETE object",
            method: Method::DELETE,
            path,
            query: None,
            vhost_bucket,
            headers: vec![],
            body: Bytes::new(),
        })
        .await
        .map(drop)
    }

    /// The URL path of an object, and the bucket when it travels in the host name.
    fn object_path<'b>(&self, bucket: &'b str, key: &str) -> (String, Option<&'b str>) {
        let encoded_key = s3auth::encode_key(key);
        match self.endpoint.addressing {
            Addressing::Path => (format!("{}/{bucket}/{encoded_key}", self.base_path()), None),
            Addressing::VirtualHost => {
                (format!("{}/{encoded_key}", self.base_path()), Some(bucket))
            }
        }
    }

    /// A signed GET on the admin API (`/admin/usage`, ...); returns the body.
    pub async fn admin_get(
        &self,
        resource: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<u8>, S3Error> {
        let spilled = |source| S3Error::Local {
            what: format!("reading the answer of {resource} back"),
            source,
        };
        match self.admin_get_body(resource, query, false).await?.body {
            Body::Memory(body) => Ok(body),
            Body::File(mut file) => {
                let mut body = Vec::new();
                file.read_to_end(&mut body).map_err(spilled)?;
                Ok(body)
            }
        }
    }

    /// Like [`Self::admin_get`], with the body in a temporary file: for answers too large to
    /// hold (the usage log of a big cluster), to be parsed as a stream.
    pub async fn admin_get_file(
        &self,
        resource: &str,
        query: &[(&str, &str)],
    ) -> Result<std::fs::File, S3Error> {
        let spilled = |source| S3Error::Local {
            what: format!("keeping the answer of {resource}"),
            source,
        };
        match self.admin_get_body(resource, query, true).await?.body {
            Body::File(file) => Ok(file),
            Body::Memory(body) => {
                let mut file = tempfile::tempfile().map_err(spilled)?;
                file.write_all(&body).map_err(spilled)?;
                file.rewind().map_err(spilled)?;
                Ok(file)
            }
        }
    }

    async fn admin_get_body(
        &self,
        resource: &str,
        query: &[(&str, &str)],
        to_file: bool,
    ) -> Result<Reply, S3Error> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish()
            // RGW decodes %20 and + alike; %20 reads better in logs.
            .replace('+', "%20");
        self.send(Req {
            keep: if to_file { Keep::File } else { Keep::Memory },
            op: "GET",
            method: Method::GET,
            path: format!("{}{resource}", self.base_path()),
            query: Some(query),
            vhost_bucket: None,
            headers: vec![],
            body: Bytes::new(),
        })
        .await
    }

    fn base_path(&self) -> &str {
        self.endpoint.url.path().trim_end_matches('/')
    }

    fn url_for(&self, req: &Req<'_>) -> Result<Url, S3Error> {
        let mut url = self.endpoint.url.clone();
        if let Some(bucket) = req.vhost_bucket {
            let host = format!("{bucket}.{}", url.host_str().unwrap_or_default());
            url.set_host(Some(&host)).map_err(|e| S3Error::Request {
                what: format!("bucket {bucket}"),
                reason: format!("not usable in a host name ({e})"),
            })?;
        }
        url.set_path(&req.path);
        url.set_query(req.query.as_deref().filter(|q| !q.is_empty()));
        Ok(url)
    }

    /// Sends a request, retrying what retrying can fix (see [`verdict`]) with exponential
    /// backoff and full jitter, and correcting for a skewed clock once.
    async fn send(&self, req: Req<'_>) -> Result<Reply, S3Error> {
        let policy = &self.endpoint.retry;
        let mut clock_fixed = false;
        let mut attempt = 0;
        loop {
            let (err, server_date, sent_at) = match self.send_once(&req).await {
                Ok(body) => return Ok(body),
                Err(failure) => failure,
            };
            match verdict(&err, clock_fixed) {
                Verdict::Fail => return Err(err),
                Verdict::FixClock => {
                    let Some(server) = server_date else {
                        return Err(err);
                    };
                    let offset = plausible_offset(sent_at, server).map_err(|reason| {
                        S3Error::ClockRefused {
                            op: req.op,
                            url: err.url().to_string(),
                            reason: format!("{reason}; the answer was: {err}"),
                        }
                    })?;
                    self.clock_offset_ms.store(offset, Ordering::Relaxed);
                    self.retries.inc();
                    clock_fixed = true;
                    tracing::warn!(
                        local = %DateTime::<Utc>::from(sent_at).to_rfc3339(),
                        server = %DateTime::<Utc>::from(server).to_rfc3339(),
                        offset_ms = offset,
                        "{}: the local clock is off; signing with the server's time from now on. Fix NTP.",
                        self.endpoint.url
                    );
                }
                Verdict::Retry if attempt >= policy.retries => return Err(err),
                Verdict::Retry => {
                    attempt += 1;
                    self.retries.inc();
                    let delay = policy.delay(attempt);
                    tracing::warn!(
                        "{err}; retry {attempt}/{} in {:.1}s",
                        policy.retries,
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// The local time corrected by the offset learnt from a `RequestTimeTooSkewed` (bounded by
    /// [`MAX_CLOCK_CORRECTION`] when it was learnt).
    fn now(&self) -> SystemTime {
        shifted(
            SystemTime::now(),
            self.clock_offset_ms.load(Ordering::Relaxed),
        )
    }

    /// One attempt. A failure carries the server's `Date` (for the clock) and the signing time.
    async fn send_once(
        &self,
        req: &Req<'_>,
    ) -> Result<Reply, (S3Error, Option<SystemTime>, SystemTime)> {
        let sent_at = self.now();
        let fail = |e: S3Error| (e, None, sent_at);
        let url = self.url_for(req).map_err(fail)?;
        // What the server sees must be what was signed: sign the path as the URL holds it.
        let shown = format!("{}{}", url.origin().ascii_serialization(), url.path());
        let mut headers = req.headers.clone();
        let date = http_date(sent_at).map_err(|reason| {
            fail(S3Error::Request {
                what: format!("the Date header of {} {shown}", req.op),
                reason,
            })
        })?;
        headers.push(("Date".to_string(), date));
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let authorization = s3auth::authorization(
            &self.endpoint.credentials,
            &SignableRequest {
                method: req.method.as_str(),
                path: url.path(),
                query: url.query(),
                headers: &pairs,
                virtual_host_bucket: req.vhost_bucket,
            },
        );
        let mut map = HeaderMap::new();
        for (name, value) in headers
            .iter()
            .chain([&("Authorization".to_string(), authorization)])
        {
            let bad = |reason: String| {
                fail(S3Error::Request {
                    what: format!("header {name}"),
                    reason,
                })
            };
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let v = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
            map.append(n, v);
        }
        let timeout = self.endpoint.timeout;
        let http_err = |source| {
            fail(S3Error::Http {
                op: req.op,
                url: shown.clone(),
                source,
            })
        };
        let resp = self
            .http
            .request(req.method.clone(), url.clone())
            .headers(map)
            .body(req.body.clone())
            .send()
            .await
            .map_err(|e| http_err(http::classify(e, timeout)))?;
        let status = resp.status();
        let server_date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        if status.is_success() {
            let limit = self.endpoint.max_response_bytes;
            let etag = resp
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = match req.keep {
                // Dropping the answer unread closes the connection: nothing more is taken in.
                Keep::Nothing => Body::Memory(Vec::new()),
                Keep::Small => http::read_limited(resp, SMALL_BODY_LIMIT, timeout)
                    .await
                    .map(Body::Memory)
                    .map_err(http_err)?,
                Keep::Memory => http::read_limited(resp, limit, timeout)
                    .await
                    .map(Body::Memory)
                    .map_err(http_err)?,
                Keep::File => {
                    let spill = |source| {
                        fail(S3Error::Local {
                            what: format!("{} {shown}: temporary file for the answer", req.op),
                            source,
                        })
                    };
                    let mut file = tempfile::tempfile().map_err(spill)?;
                    http::copy_limited(resp, limit, timeout, &mut file)
                        .await
                        .map_err(http_err)?;
                    file.rewind().map_err(spill)?;
                    Body::File(file)
                }
            };
            return Ok(Reply { body, etag });
        }
        let location = http::location(resp.headers()).filter(|_| status.is_redirection());
        let body = http::read_limited(resp, SMALL_BODY_LIMIT, timeout)
            .await
            .unwrap_or_default();
        let code = error_code(&body);
        let hint = hint(
            status,
            code.as_deref(),
            &body,
            &Context {
                resource: url.path(),
                access_key: &self.endpoint.credentials.access_key,
                sent_at,
                server_date,
                location: location.as_deref(),
            },
        );
        Err((
            S3Error::Api {
                op: req.op,
                url: shown,
                status: status.as_u16(),
                code,
                hint,
            },
            server_date,
            sent_at,
        ))
    }
}

/// A range of an object's payload, read off the async runtime when it lives in a file.
async fn read_body(body: &Payload, offset: u64, len: u64, key: &str) -> Result<Bytes, S3Error> {
    let payload = body.clone();
    tokio::task::spawn_blocking(move || payload.read_range(offset, len))
        .await
        .map_err(std::io::Error::other)
        .and_then(|read| read)
        .map_err(|e| S3Error::Request {
            what: format!("object {key}"),
            reason: format!("reading its rendered bytes back: {e}"),
        })
}

/// Signed milliseconds from `a` to `b`, saturating.
fn millis_between(a: SystemTime, b: SystemTime) -> i64 {
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match b.duration_since(a) {
        Ok(d) => millis(d),
        Err(e) => -millis(e.duration()),
    }
}

/// The clock offset a server's `Date` implies, if it is one to sign with: within
/// [`MAX_CLOCK_CORRECTION`] of the local clock, and a date an HTTP header can carry.
fn plausible_offset(local: SystemTime, server: SystemTime) -> Result<i64, String> {
    let offset = millis_between(local, server);
    let server_text = http_date(server)?;
    if offset.unsigned_abs() > MAX_CLOCK_CORRECTION.as_millis() as u64 {
        return Err(format!(
            "its Date ({server_text}) is {}s from the local clock, more than the {}h this \
             exporter corrects for: fix NTP on this host or on the gateway",
            offset / 1000,
            MAX_CLOCK_CORRECTION.as_secs() / 3600
        ));
    }
    Ok(offset)
}

/// `t` moved by `offset_ms`; unmoved where the result would not fit a `SystemTime`.
fn shifted(t: SystemTime, offset_ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(offset_ms.unsigned_abs());
    let moved = if offset_ms >= 0 {
        t.checked_add(magnitude)
    } else {
        t.checked_sub(magnitude)
    };
    moved.unwrap_or(t)
}

/// An HTTP date (`Tue, 01 Dec 2026 07:00:00 GMT`), or why `t` has none (before 1970 or after
/// 9999: `httpdate` panics on those).
fn http_date(t: SystemTime) -> Result<String, String> {
    const YEAR_10000: Duration = Duration::from_secs(253_402_300_800);
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) if since < YEAR_10000 => Ok(httpdate::fmt_http_date(t)),
        _ => Err(format!(
            "{} cannot be written as an HTTP date",
            DateTime::<Utc>::from(t).to_rfc3339()
        )),
    }
}

/// What to do about a failed attempt.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The server or the network may do better next time.
    Retry,
    /// Our clock is off: learn the server's and sign again (once).
    FixClock,
    /// Retrying cannot help (wrong key, missing bucket, no caps, bad request).
    Fail,
}

fn verdict(err: &S3Error, clock_fixed: bool) -> Verdict {
    match err {
        S3Error::Api { code, .. } if code.as_deref() == Some("RequestTimeTooSkewed") => {
            if clock_fixed {
                Verdict::Fail
            } else {
                Verdict::FixClock
            }
        }
        S3Error::Api { status, code, .. } => {
            let transient_code = matches!(
                code.as_deref(),
                Some("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout")
            );
            if *status >= 500 || *status == 429 || transient_code {
                Verdict::Retry
            } else {
                Verdict::Fail
            }
        }
        S3Error::Http {
            source: HttpError::Timeout(_) | HttpError::Transport(_),
            ..
        } => Verdict::Retry,
        S3Error::Http { .. }
        | S3Error::Request { .. }
        | S3Error::ClockRefused { .. }
        | S3Error::Local { .. } => Verdict::Fail,
    }
}

/// The text of the first `<NAME>...</NAME>` element of an XML answer.
fn xml_field(xml: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(xml).ok()?;
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    Some(text[start..start + len].trim().to_string()).filter(|v| !v.is_empty())
}

fn encode_query(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
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
struct Context<'a> {
    resource: &'a str,
    access_key: &'a str,
    sent_at: SystemTime,
    server_date: Option<SystemTime>,
    /// Where a 3xx answer pointed.
    location: Option<&'a str>,
}

/// What an operator should do about an error answer.
fn hint(status: StatusCode, code: Option<&str>, body: &[u8], cx: &Context<'_>) -> Option<String> {
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
        Some("AccessDenied") if cx.resource.starts_with("/admin/usage") => format!(
            "user of access key {} lacks the admin cap to read usage: \
             radosgw-admin caps add --uid=<user> --caps=\"usage=read\"",
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

    fn api(status: u16, code: Option<&str>) -> S3Error {
        S3Error::Api {
            op: "PUT object",
            url: "u".into(),
            status,
            code: code.map(str::to_string),
            hint: None,
        }
    }

    #[test]
    fn retry_only_what_retrying_can_fix() {
        use Verdict::*;
        let http = |source| S3Error::Http {
            op: "GET",
            url: "u".into(),
            source,
        };
        let cases = [
            (api(503, Some("SlowDown")), Retry),
            (api(500, None), Retry),
            (api(502, None), Retry),
            (api(429, None), Retry),
            (api(400, Some("RequestTimeout")), Retry),
            (http(HttpError::Timeout(Duration::from_secs(1))), Retry),
            (
                http(HttpError::Transport("connection refused".into())),
                Retry,
            ),
            (api(403, Some("AccessDenied")), Fail),
            (api(403, Some("InvalidAccessKeyId")), Fail),
            (api(403, Some("SignatureDoesNotMatch")), Fail),
            (api(404, Some("NoSuchBucket")), Fail),
            (api(400, Some("BadDigest")), Fail),
            (http(HttpError::TooLarge { limit: 1 }), Fail),
            (api(403, Some("RequestTimeTooSkewed")), FixClock),
        ];
        for (err, want) in cases {
            assert_eq!(verdict(&err, false), want, "{err}");
        }
        // The clock is corrected once; a second skew answer is final.
        assert_eq!(verdict(&api(403, Some("RequestTimeTooSkewed")), true), Fail);
    }

    #[test]
    fn clock_offsets_are_signed() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(millis_between(t, t + Duration::from_millis(1500)), 1500);
        assert_eq!(millis_between(t + Duration::from_secs(2), t), -2000);
    }

    #[test]
    fn only_a_plausible_server_date_becomes_a_clock_offset() {
        let local = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let hour = Duration::from_secs(3600);
        assert_eq!(plausible_offset(local, local + hour), Ok(3_600_000));
        assert_eq!(plausible_offset(local, local - 2 * hour), Ok(-7_200_000));
        assert_eq!(plausible_offset(local, local + 24 * hour), Ok(86_400_000));
        let err = plausible_offset(local, local + 25 * hour).unwrap_err();
        assert!(err.contains("90000s") && err.contains("NTP"), "{err}");
        assert!(plausible_offset(local, local - 25 * hour).is_err());
        // `Date: Fri, 31 Dec 9999 23:59:59 GMT` parses, and is refused.
        let y9999 = httpdate::parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT").unwrap();
        assert!(plausible_offset(local, y9999).is_err());
    }

    #[test]
    fn dates_that_http_cannot_carry_are_errors_not_panics() {
        let y10000 = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert!(http_date(y10000).unwrap_err().contains("10000-01-01"));
        let last = y10000 - Duration::from_secs(1);
        assert_eq!(http_date(last).unwrap(), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert!(http_date(SystemTime::UNIX_EPOCH - Duration::from_secs(1)).is_err());
        // Shifting by any offset is defined (`SystemTime + Duration` panics on overflow).
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        assert_eq!(
            shifted(t, -4_000),
            SystemTime::UNIX_EPOCH + Duration::from_secs(6)
        );
        assert!(shifted(t, i64::MAX) > t);
        assert!(shifted(t, i64::MIN) < t);
    }

    #[test]
    fn a_redirect_names_where_it_pointed_and_is_not_retried() {
        let c = Context {
            location: Some("http://elsewhere:9000/info/k"),
            ..cx("/info/k", 0)
        };
        let h = hint(StatusCode::TEMPORARY_REDIRECT, None, b"", &c).unwrap();
        assert!(h.contains("http://elsewhere:9000/info/k"), "{h}");
        assert_eq!(verdict(&api(307, None), false), Verdict::Fail);
        assert_eq!(verdict(&api(302, None), false), Verdict::Fail);
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
