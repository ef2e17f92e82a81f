//! The optional HTTP listener: `GET /metrics` (Prometheus text) and `GET /healthz` (200 when
//! every job succeeded recently enough, 503 otherwise, with a line per job).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

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
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("http listener: {e}");
                    continue;
                }
            };
            let observed = observed.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let observed = observed.clone();
                    async move { Ok::<_, Infallible>(answer(&req, &observed)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!("http connection: {e}");
                }
            });
        }
    });
    Ok(Listener { addr: bound, task })
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
