//! The transport: sends a built [`Request`] to one endpoint, signed at send time with the
//! endpoint's signer and the (corrected) clock, under its timeouts and response size limit,
//! retried as [`retry`](super::retry) decides; an error answer becomes an [`S3Error`] with its
//! code and hint. The operations (`put_object`, multipart, ...) are thin: a builder from
//! [`request`](super::request), then [`S3Client::send`].

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use prometheus_client::metrics::counter::Counter;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::error::{error_code, hint, Context, S3Error};
use super::request::{Keep, Request, Target};
use super::retry::{verdict, Clock, Verdict};
use super::sign::{self, Signer, Unsigned};
use super::xml::{self, ListPage};
use super::Endpoint;
use crate::chunks::ChunkSender;
use crate::http;
use crate::payload::Payload;

/// The most of an error body that is read; the code is near the start. Also the most of the
/// small XML answers of multipart initiate and complete that is read.
const SMALL_BODY_LIMIT: u64 = 64 * 1024;

/// A signed-request client for one endpoint and one key pair.
pub struct S3Client {
    http: reqwest::Client,
    endpoint: Endpoint,
    signer: Box<dyn Signer>,
    clock: Clock,
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

/// A successful answer's body: in memory, or (large answers) not read yet.
enum Body {
    Memory(Vec<u8>),
    Stream(BodyStream),
}

/// A successful answer whose body is still to be received: [`BodyStream::pump`] hands it to a
/// reader as it arrives. The request is retried as usual until this answer; a failure while
/// the body streams is an error of the pump, and is not retried.
pub struct BodyStream {
    resp: reqwest::Response,
    /// The endpoint's `max_response_bytes`.
    pub limit: u64,
    timeout: Duration,
    op: &'static str,
    /// The URL as errors show it.
    url: String,
}

impl BodyStream {
    /// Receives the body into `to`, chunk by chunk. A failure on the wire (reset, timeout, cut
    /// short) or a body over the limit is an error here, and the reader gets an error too,
    /// never an early end. A reader that stops first (its parse failed) ends the pump without
    /// error: the reader's error is the one that says what went wrong.
    pub async fn pump(self, mut to: ChunkSender) -> Result<(), S3Error> {
        let BodyStream {
            mut resp,
            timeout,
            op,
            url,
            ..
        } = self;
        let http_err = |source| S3Error::Http { op, url, source };
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ok(()),
                Err(e) => {
                    let e = http::classify(e, timeout);
                    to.fail(std::io::Error::other(e.to_string())).await;
                    return Err(http_err(e));
                }
            };
            match to.send(chunk).await {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => return Err(http_err(e)),
            }
        }
    }
}

/// A successful answer.
struct Reply {
    body: Body,
    /// The `ETag` header (multipart uploads list each part's).
    etag: Option<String>,
    /// User metadata (`x-amz-meta-*` headers, names without the prefix).
    metadata: Vec<(String, String)>,
}

/// An object read back, with the metadata it was stored with.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// `x-amz-meta-*` headers, names without the prefix, lower case; values that are not
    /// visible ASCII are left out.
    pub metadata: Vec<(String, String)>,
}

impl Fetched {
    /// The value of metadata `name`, if the object has it.
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
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
            signer: sign::signer(&endpoint.credentials, &endpoint.signing),
            clock: Clock::default(),
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

    fn target(&self) -> Target<'_> {
        Target {
            base_path: self.endpoint.url.path().trim_end_matches('/'),
            addressing: self.endpoint.addressing,
        }
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
        let bytes = read_body(body, 0, body.len(), key).await?;
        let md5 = body.content_md5();
        let req = self
            .target()
            .put_object(bucket, key, bytes, md5, content_type, metadata);
        self.send(&req).await.map(drop)
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
        let target = self.target();
        let initiate = target.initiate_multipart(bucket, key, content_type, metadata);
        let initiated = self.send(&initiate).await?;
        let upload_id = match &initiated.body {
            Body::Memory(answer) => xml::field(answer, "UploadId"),
            Body::Stream(_) => None,
        }
        .ok_or_else(|| S3Error::Request {
            what: format!("multipart upload of {key}"),
            reason: "the initiate answer has no UploadId".into(),
        })?;
        let upload = async {
            let mut etags = Vec::new();
            let mut whole = Md5::new();
            let part_size = part_size.max(1);
            for (i, offset) in (0..body.len().max(1))
                .step_by(part_size as usize)
                .enumerate()
            {
                let chunk = read_body(body, offset, part_size, key).await?;
                whole.update(&chunk);
                let part = target.upload_part(bucket, key, &upload_id, i + 1, chunk);
                etags.push(self.send(&part).await?.etag.unwrap_or_default());
            }
            if <[u8; 16]>::from(whole.finalize()) != body.md5() {
                return Err(S3Error::Request {
                    what: format!("multipart upload of {key}"),
                    reason: "the parts read back do not hash to the object as rendered \
                             (temporary file damaged?)"
                        .into(),
                });
            }
            let complete = target.complete_multipart(bucket, key, &upload_id, &etags);
            let done = self.send(&complete).await?;
            // S3 may answer 200 and still report an error in the body.
            match &done.body {
                Body::Memory(answer) if xml::field(answer, "Code").is_some() => Err(S3Error::Api {
                    op: complete.op,
                    url: format!(
                        "{}{}",
                        self.endpoint.url.origin().ascii_serialization(),
                        complete.path
                    ),
                    status: 200,
                    code: xml::field(answer, "Code"),
                    hint: None,
                }),
                _ => Ok(()),
            }
        }
        .await;
        if upload.is_err() {
            let abort = target.abort_multipart(bucket, key, &upload_id);
            if let Err(e) = self.send(&abort).await {
                tracing::warn!("could not abort the multipart upload of {key}: {e}");
            }
        }
        upload
    }

    /// DELETE one object (`check` removes its probe with it).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        let req = self.target().delete_object(bucket, key);
        self.send(&req).await.map(drop)
    }

    /// GET of a whole object, up to the endpoint's `max_response_bytes`.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, S3Error> {
        Ok(self.get_object_with_metadata(bucket, key).await?.body)
    }

    /// [`Self::get_object`], with the object's user metadata.
    pub async fn get_object_with_metadata(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Fetched, S3Error> {
        let req = self.target().get_object(bucket, key);
        let reply = self.send(&req).await?;
        Ok(Fetched {
            body: body_bytes(reply.body, key)?,
            metadata: reply.metadata,
        })
    }

    /// One page of the keys under `prefix` (ListObjectsV2): pass the page's `next` back as
    /// `continuation` for the following one.
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u32,
    ) -> Result<ListPage, S3Error> {
        let req = self
            .target()
            .list_objects(bucket, prefix, continuation, max_keys);
        let answer = self.send_for_bytes(&req, bucket).await?;
        xml::list_page(&answer).map_err(|reason| S3Error::Request {
            what: format!("the listing of bucket {bucket} under {prefix:?}"),
            reason,
        })
    }

    /// A signed GET on the admin API (`/admin/usage`, ...); returns the body.
    pub async fn admin_get(
        &self,
        resource: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<u8>, S3Error> {
        let req = self.target().admin_get(resource, query, false);
        self.send_for_bytes(&req, resource).await
    }

    /// Trims the usage log of a window (of one user when `uid` is given): see
    /// [`Target::trim_usage`](super::request::Target::trim_usage).
    pub async fn trim_usage(
        &self,
        start: &str,
        end: &str,
        uid: Option<&str>,
    ) -> Result<(), S3Error> {
        let req = self.target().trim_usage(start, end, uid);
        self.send(&req).await.map(drop)
    }

    /// Sends a request whose answer is kept in memory, and returns that answer's bytes.
    async fn send_for_bytes(&self, req: &Request, what: &str) -> Result<Vec<u8>, S3Error> {
        body_bytes(self.send(req).await?.body, what)
    }

    /// Like [`Self::admin_get`], with the body still to be received: for answers too large to
    /// hold (the usage log of a big cluster), parsed as they stream in.
    pub async fn admin_get_stream(
        &self,
        resource: &str,
        query: &[(&str, &str)],
    ) -> Result<BodyStream, S3Error> {
        let req = self.target().admin_get(resource, query, true);
        match self.send(&req).await?.body {
            Body::Stream(stream) => Ok(stream),
            Body::Memory(_) => Err(S3Error::Request {
                what: format!("the answer of {resource}"),
                reason: "read into memory, not streamed".into(),
            }),
        }
    }

    fn url_for(&self, req: &Request) -> Result<Url, S3Error> {
        let mut url = self.endpoint.url.clone();
        if let Some(bucket) = &req.vhost_bucket {
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
    async fn send(&self, req: &Request) -> Result<Reply, S3Error> {
        let policy = &self.endpoint.retry;
        let mut clock_fixed = false;
        let mut attempt = 0;
        loop {
            let (err, server_date, sent_at) = match self.send_once(req).await {
                Ok(body) => return Ok(body),
                Err(failure) => failure,
            };
            match verdict(&err, clock_fixed) {
                Verdict::Fail => return Err(err),
                Verdict::FixClock => {
                    let Some(server) = server_date else {
                        return Err(err);
                    };
                    let offset = self.clock.correct(sent_at, server).map_err(|reason| {
                        S3Error::ClockRefused {
                            op: req.op,
                            url: err.url().to_string(),
                            reason: format!("{reason}; the answer was: {err}"),
                        }
                    })?;
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

    /// One attempt. A failure carries the server's `Date` (for the clock) and the signing time.
    async fn send_once(
        &self,
        req: &Request,
    ) -> Result<Reply, (S3Error, Option<SystemTime>, SystemTime)> {
        let sent_at = self.clock.now();
        let fail = |e: S3Error| (e, None, sent_at);
        let url = self.url_for(req).map_err(fail)?;
        // What the server sees must be what was signed: sign the URL as it will be sent.
        let shown = format!("{}{}", url.origin().ascii_serialization(), url.path());
        let unsigned = Unsigned {
            method: req.method.as_str(),
            url: &url,
            headers: &req.headers,
            body: &req.body,
            virtual_host_bucket: req.vhost_bucket.as_deref(),
        };
        let signed = self.signer.sign(&unsigned, sent_at).map_err(|e| {
            fail(S3Error::Request {
                what: format!("the signature of {} {shown}", req.op),
                reason: e.to_string(),
            })
        })?;
        let mut map = HeaderMap::new();
        for (name, value) in req.headers.iter().chain(&signed) {
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
            let metadata = user_metadata(resp.headers());
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
                Keep::Stream => {
                    http::refuse_announced_over(&resp, limit).map_err(http_err)?;
                    Body::Stream(BodyStream {
                        resp,
                        limit,
                        timeout,
                        op: req.op,
                        url: shown.clone(),
                    })
                }
            };
            return Ok(Reply {
                body,
                etag,
                metadata,
            });
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
                op: req.op,
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

/// An answer's bytes, kept in memory; an answer left to stream is not one.
fn body_bytes(body: Body, what: &str) -> Result<Vec<u8>, S3Error> {
    match body {
        Body::Memory(body) => Ok(body),
        Body::Stream(_) => Err(S3Error::Request {
            what: format!("the answer of {what}"),
            reason: "asked to be streamed, not kept".into(),
        }),
    }
}

/// The user metadata among `headers`.
fn user_metadata(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("x-amz-meta-")?;
            Some((name.to_string(), value.to_str().ok()?.to_string()))
        })
        .collect()
}

/// A range of an object's payload, read off the async runtime when it lives in a file.
async fn read_body(body: &Payload, offset: u64, len: u64, key: &str) -> Result<Bytes, S3Error> {
    let payload = body.clone();
    tokio::task::spawn_blocking(move || payload.read_range(offset, len))
        .await
        .map_err(std::io::Error::other)
        .and_then(|read| read)
        .map_err(|source| S3Error::Local {
            what: format!("object {key}: reading its rendered bytes back"),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A client for an address nothing listens on: any request sent fails as a transport error.
    fn nowhere() -> S3Client {
        S3Client::new(&Endpoint {
            url: "http://127.0.0.1:9".parse().unwrap(),
            credentials: sign::Credentials {
                access_key: "AK".into(),
                secret_key: crate::secret::Secret::new("SK"),
            },
            addressing: super::super::Addressing::Path,
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_response_bytes: 1 << 20,
            signing: Default::default(),
            retry: super::super::retry::RetryPolicy {
                retries: 0,
                ..Default::default()
            },
        })
        .unwrap()
    }

    #[test]
    fn the_url_keeps_empty_segments_and_resolves_dot_ones() {
        let client = nowhere();
        let path = |key| {
            let req = client.target().get_object("info", key);
            client.url_for(&req).unwrap().path().to_string()
        };
        // Signed and sent as named: RGW stores these keys as they are.
        assert_eq!(path("a//b"), "/info/a//b");
        assert_eq!(path("/x"), "/info//x");
        // Resolved: another key than the one named, which is why key templates may not render
        // such a segment (keys.rs).
        assert_eq!(path("a/./b"), "/info/a/b");
        assert_eq!(path("a/../b"), "/info/b");
    }

    #[tokio::test]
    async fn an_object_that_cannot_be_read_back_is_a_local_error_and_nothing_is_sent() {
        let body = b"rendered to a temporary file";
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(body).unwrap();
        let md5 = super::super::request::content_md5(body);
        let payload = Payload::from_file_region(file.try_clone().unwrap(), 0, 28, &md5)
            .unwrap()
            .unwrap();
        // The temporary file loses its bytes under the payload (a disk error, say).
        file.set_len(0).unwrap();
        let err = nowhere()
            .put_object("info", "k", &payload, "text/plain", &[])
            .await
            .unwrap_err();
        assert!(matches!(err, S3Error::Local { .. }), "{err:?}");
        assert_eq!(verdict(&err, false), Verdict::Fail);
        let text = err.to_string();
        assert!(
            text.contains("object k") && text.contains("local disk"),
            "{text}"
        );
    }
}
