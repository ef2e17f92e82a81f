//! The optional HTTP listener: `GET /metrics` (Prometheus text) and `GET /healthz` (200 when
//! every job succeeded recently enough, 503 otherwise, with a line per job).
//!
//! It may face anyone who can reach its port, and must never cost the jobs their file
//! descriptors or the daemon its CPU: at most [`MAX_CONNECTIONS`] are open at once (further
//! clients wait in the kernel's accept queue, which holds no descriptor of ours), a client has
//! [`HEADER_TIMEOUT`] to send its request and [`CONNECTION_TIMEOUT`] in all (one request per
//! connection), and a failing `accept` (out of descriptors) backs off with a log line at most
//! every [`ACCEPT_LOG_EVERY`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;

/// Connections served at once; a scrape needs one, a health check one.
pub const MAX_CONNECTIONS: usize = 32;
/// Time to send the request line and headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a connection may take in all.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// A failing `accept` is logged at most this often (with the count in between).
pub const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// `[http]`: where the listener listens, and the health rule's patience.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Unhealthy when a job has not succeeded for this many of its periods.
    pub unhealthy_after: u32,
}

/// What the listener reads at each request.
pub struct Observed {
    pub metrics: Arc<Metrics>,
    pub unhealthy_after: u32,
    /// Refreshes gauges read at scrape time (the spool).
    pub refresh: Box<dyn Fn() + Send + Sync>,
}

/// A listener serving in the background.
pub struct Listener {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Stops accepting and waits until the socket is closed, so that its address can be bound
    /// again at once. Requests being answered finish on their own.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Binds now (so a taken port fails the start), then serves in the background.
pub async fn start(addr: SocketAddr, observed: Observed) -> std::io::Result<Listener> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let observed = Arc::new(observed);
    let task = tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut backoff = AcceptBackoff::default();
        loop {
            // Never closed, so never an error.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    backoff.succeeded();
                    stream
                }
                Err(e) => {
                    let (pause, report) = backoff.failed(Instant::now());
                    if let Some(suppressed) = report {
                        tracing::warn!(
                            suppressed,
                            "http listener cannot accept: {e}; pausing {pause:?}"
                        );
                    }
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            let observed = observed.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let service = hyper::service::service_fn(move |req| {
                    let observed = observed.clone();
                    async move { Ok::<_, Infallible>(answer(&req, &observed)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service);
                match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!("http connection: {e}"),
                    Err(_) => {
                        tracing::debug!("http connection: closed after {CONNECTION_TIMEOUT:?}")
                    }
                }
            });
        }
    });
    Ok(Listener { addr: bound, task })
}

/// Pauses between failed accepts (10 ms doubling to 1 s) and when to log one.
#[derive(Default)]
struct AcceptBackoff {
    failures: u32,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl AcceptBackoff {
    fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// How long to pause, and whether to log now (with the count of failures not logged).
    fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        self.failures = self.failures.saturating_add(1);
        let pause =
            Duration::from_millis(10 << (self.failures - 1).min(7)).min(Duration::from_secs(1));
        let due = self
            .last_log
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_LOG_EVERY);
        if !due {
            self.suppressed += 1;
            return (pause, None);
        }
        self.last_log = Some(now);
        (pause, Some(std::mem::take(&mut self.suppressed)))
    }
}

fn answer(req: &Request<Incoming>, o: &Observed) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = content_type.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => {
            (o.refresh)();
            reply(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                o.metrics.encode(),
            )
        }
        "/healthz" => {
            let (ok, report) = o.metrics.health(chrono::Utc::now(), o.unhealthy_after);
            let status = if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(status, "text/plain; charset=utf-8", report)
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics or /healthz\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_accepts_back_off_and_are_logged_sparingly() {
        let mut b = AcceptBackoff::default();
        let t0 = Instant::now();
        let (pause, log) = b.failed(t0);
        assert_eq!((pause, log), (Duration::from_millis(10), Some(0)));
        let mut pauses = vec![];
        for i in 1..=10 {
            let (pause, log) = b.failed(t0 + Duration::from_millis(i));
            assert_eq!(log, None, "failure {i} logged within {ACCEPT_LOG_EVERY:?}");
            pauses.push(pause.as_millis());
        }
        assert_eq!(pauses, [20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000]);
        // The next log line says how many were not logged.
        let (_, log) = b.failed(t0 + ACCEPT_LOG_EVERY + Duration::from_millis(11));
        assert_eq!(log, Some(10));
        b.succeeded();
        assert_eq!(
            b.failed(t0 + ACCEPT_LOG_EVERY * 3).0,
            Duration::from_millis(10)
        );
    }
}
