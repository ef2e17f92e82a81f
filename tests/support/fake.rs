//! Small in-process HTTP/1.1 servers standing in for RGW, its admin API, the mgr and S3: each
//! records the requests it reads and gives the answers it was scripted with, including the ways
//! a real server fails (hangs, resets, endless bodies, raw bytes).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request as the fake received it; header names are lower-cased.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target: path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake does once it has read a request.
#[derive(Clone)]
pub enum Reply {
    /// A complete answer. Without `sized` there is no Content-Length: the body ends when the
    /// connection does, so the client can only enforce its size limit while streaming.
    Http {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
        sized: bool,
    },
    /// Keeps the connection open and never answers.
    Hang,
    /// Resets the connection (RST, not FIN) instead of answering.
    Reset,
    /// These bytes, as they are: status line, headers and body.
    Raw(Vec<u8>),
    /// These bytes, as they are, then nothing more on a connection kept open.
    RawThenHang(Vec<u8>),
    /// 200 with a body of zeros without length, until the client hangs up or 512 MiB are sent;
    /// counts the bytes sent.
    Endless(Arc<std::sync::atomic::AtomicU64>),
    /// An empty 200 after this long.
    SlowOk(Duration),
}

pub fn answer(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
    Reply::Http {
        status,
        content_type,
        body: body.into(),
        sized: true,
    }
}

pub fn json(body: impl Into<Vec<u8>>) -> Reply {
    answer(200, "application/json", body)
}

/// An answer with exactly these extra header lines (`Name: value`, no CRLF) and no Date of the
/// fake's own.
pub fn with_headers(status: u16, headers: &[&str], body: &str) -> Reply {
    let mut head = format!("HTTP/1.1 {status} Fake\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    Reply::Raw(head.into_bytes())
}

/// An HTTP server on 127.0.0.1 that records every request it reads and gives each the same
/// reply.
pub struct Fake {
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Fake {
    pub async fn start(reply: Reply) -> Fake {
        Fake::script(vec![reply]).await
    }

    /// Answers the n-th connection with `replies[n]`, and every later one with the last reply.
    pub async fn script(replies: Vec<Reply>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        tokio::spawn(async move {
            for n in 0.. {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let reply = replies[n.min(replies.len() - 1)].clone();
                tokio::spawn(serve(stream, reply, log.clone()));
            }
        });
        Fake { url, requests }
    }

    /// An S3 endpoint that stores whatever it is sent.
    pub async fn bucket() -> Fake {
        Fake::start(answer(200, "text/plain", "")).await
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(mut stream: TcpStream, reply: Reply, log: Arc<Mutex<Vec<Request>>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    // Recorded before answering, so it is there once the exporter has exited.
    log.lock().unwrap().push(request);
    match reply {
        Reply::Http {
            status,
            content_type,
            body,
            sized,
        } => {
            // Clients ignore the reason phrase; one closed connection per request keeps the
            // fake simple.
            let mut head = format!(
                "HTTP/1.1 {status} Fake\r\nContent-Type: {content_type}\r\nConnection: close\r\n\
                 Date: {}\r\n",
                httpdate::fmt_http_date(std::time::SystemTime::now())
            );
            if sized {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            head.push_str("\r\n");
            // The client may hang up early (a body over its limit): that is not our error.
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.shutdown().await;
        }
        Reply::Hang => std::future::pending().await,
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::RawThenHang(bytes) => {
            let _ = stream.write_all(&bytes).await;
            std::future::pending().await
        }
        Reply::SlowOk(delay) => {
            tokio::time::sleep(delay).await;
            let head = "HTTP/1.1 200 Fake\r\nConnection: close\r\nETag: \"slow\"\r\n\
                        Content-Length: 0\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Reply::Endless(sent) => {
            let head =
                "HTTP/1.1 200 Fake\r\nContent-Type: application/xml\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let chunk = vec![0u8; 1 << 16];
            for _ in 0..(512 << 20) / chunk.len() {
                if stream.write_all(&chunk).await.is_err() {
                    break;
                }
                sent.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            let _ = stream.shutdown().await;
        }
        Reply::Reset => {
            // Dropped with a zero linger, the socket sends RST.
            let _ = stream.set_zero_linger();
        }
    }
}

/// Reads a request line, headers and a Content-Length body; `None` if the client went away.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.ok()?;
        match line.trim_end().split_once(':') {
            Some((name, value)) => {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()))
            }
            None => break,
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap_or(0));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}
