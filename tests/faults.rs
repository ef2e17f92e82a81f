//! Error paths a real gateway or mgr will not produce on demand: proxies answering HTML, broken
//! or oddly shaped JSON, admin-API and S3 error answers, hanging and resetting servers, oversized
//! bodies, the all-zero `osd df tree` of a freshly started mgr.
//!
//! Each test runs the real binary (`--once`) against small in-process HTTP/1.1 fakes and checks
//! what an operator would see: the exit code, one log line naming the job, the URL, the status
//! and what to do, no panic, no secret, and nothing uploaded from a failed collection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const ACCESS_KEY: &str = "FAULTSACCESSKEY0001";
/// Searched for in every run's output: it must never be printed.
const SECRET_KEY: &str = "SECRET-must-not-leak-1234";

// ------------------------------------------------------------------ fake HTTP servers

/// One request as the fake received it; header names are lower-cased.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    /// The request target: path and query, as sent.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake does once it has read a request.
#[derive(Clone)]
enum Reply {
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
    /// 200 with a body of zeros without length, until the client hangs up or 512 MiB are sent;
    /// counts the bytes sent.
    Endless(Arc<std::sync::atomic::AtomicU64>),
}

fn answer(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
    Reply::Http {
        status,
        content_type,
        body: body.into(),
        sized: true,
    }
}

fn json(body: impl Into<Vec<u8>>) -> Reply {
    answer(200, "application/json", body)
}

/// An answer with exactly these extra header lines (`Name: value`, no CRLF) and no Date of the
/// fake's own.
fn with_headers(status: u16, headers: &[&str], body: &str) -> Reply {
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
struct Fake {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Fake {
    async fn start(reply: Reply) -> Fake {
        Fake::script(vec![reply]).await
    }

    /// Answers the n-th connection with `replies[n]`, and every later one with the last reply.
    async fn script(replies: Vec<Reply>) -> Fake {
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
    async fn bucket() -> Fake {
        Fake::start(answer(200, "text/plain", "")).await
    }

    fn requests(&self) -> Vec<Request> {
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

// ------------------------------------------------------------------ running the exporter

/// A config writing to `s3`; each job is enabled when it has a source. `rgw_extra` is added to
/// the `[rgw]` table.
fn config(s3: &Fake, usage: Option<&Fake>, pool: Option<&Fake>, rgw_extra: &str) -> String {
    // No retries unless a test asks for them: each case here is about one answer.
    let mut c = format!(
        "[s3]\nendpoint = \"{}\"\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n\
         retries = 0\n",
        s3.url
    );
    if let Some(rgw) = usage {
        c.push_str(&format!(
            "\n[rgw]\nendpoint = \"{}\"\n{rgw_extra}\n\n[jobs.rgw_usage]\nevery = \"1h\"\n",
            rgw.url
        ));
    }
    if let Some(source) = pool {
        c.push_str(&format!(
            "\n[jobs.pool_df]\nevery = \"10s\"\n\n[jobs.pool_df.source]\ntype = \"http\"\n\
             url = \"{}/api/v0.1/osd/df.json?output_method=tree\"\n",
            source.url
        ));
    }
    c
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Outcome {
    /// The log line that reports `job`'s failure.
    fn failure_of(&self, job: &str) -> &str {
        let field = format!("job=\"{job}\"");
        self.stderr
            .lines()
            .find(|l| l.contains("ERROR") && l.contains("failed: ") && l.contains(&field))
            .unwrap_or_else(|| panic!("no failure logged for {job}:\n{}", self.stderr))
    }
}

/// Runs `ceph-stats-exporter --once ARGS` on `config`, and checks what must hold for any run:
/// it ends, does not panic, prints no secret and no colour codes into a pipe.
async fn run(config: &str, args: &[&str]) -> Outcome {
    run_in(tempfile::tempdir().unwrap().path(), config, args).await
}

/// Like [`run`], with the config and the state directory (spool, job state) in `dir`, so that
/// consecutive runs share them.
async fn run_in(dir: &std::path::Path, config: &str, args: &[&str]) -> Outcome {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    let started = Instant::now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ceph-stats-exporter"))
        .arg("--config")
        .arg(&path)
        .arg("--once")
        .args(args)
        // The default log level and plain text lines, whatever the caller's environment says.
        .env_remove("CEPH_STATS_EXPORTER_LOG")
        .env_remove("JOURNAL_STREAM")
        .env("STATE_DIRECTORY", dir.join("state"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the exporter did not finish within 60s")
        .unwrap();
    let out = Outcome {
        code: output
            .status
            .code()
            .expect("the exporter was killed by a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    };
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains("panicked"), "{all}");
    assert!(
        !all.contains(SECRET_KEY),
        "the secret key was printed:\n{all}"
    );
    assert!(
        !out.stderr.contains('\x1b'),
        "escape codes in a pipe:\n{all}"
    );
    out
}

fn assert_contains_all(text: &str, fragments: &[&str]) {
    for f in fragments {
        assert!(text.contains(f), "{f:?} missing from:\n{text}");
    }
}

/// Runs the usage job alone against an admin API answering `reply`. The run must fail with exit
/// code 1 (a job failed, not a config error) and must upload nothing. Returns the outcome and
/// the admin API's `/admin/usage` URL as it appears in errors.
async fn usage_failure(reply: Reply, rgw_extra: &str) -> (Outcome, String) {
    let (rgw, s3) = (Fake::start(reply).await, Fake::bucket().await);
    let out = run(
        &config(&s3, Some(&rgw), None, rgw_extra),
        &["--job", "rgw_usage"],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(rgw.requests().len(), 1, "one GET on the admin API");
    assert!(
        s3.requests().is_empty(),
        "uploaded from a failed collection"
    );
    (out, format!("{}/admin/usage", rgw.url))
}

// ------------------------------------------------------------------ fixtures

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `osd df tree` as the legacy ceph-rest-api serves it: `{"status":"OK","output":<tree>}`.
fn wrapped_tree(name: &str) -> Vec<u8> {
    [&br#"{"status":"OK","output":"#[..], &fixture(name), b"}"].concat()
}

/// A usage answer for any window: nobody did anything.
const EMPTY_USAGE: &str = r#"{"entries":[],"summary":[]}"#;

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n\
                        <body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>\
                        </body>\r\n</html>\r\n";

// ------------------------------------------------------------------ the usage job's source

#[tokio::test]
async fn usage_behind_a_proxy_answering_html_502() {
    let (out, url) = usage_failure(answer(502, "text/html", HTML_502), "").await;
    assert_contains_all(
        out.failure_of("rgw_usage"),
        &[
            &format!("collecting: GET {url}: HTTP 502: "),
            "not an S3 error answer (a proxy in the way?)",
            // The excerpt, with the line breaks blanked out.
            "<html>  <head><title>502 Bad Gateway</title></head>  <body>",
        ],
    );
}

#[tokio::test]
async fn usage_answer_that_is_not_json_says_where_it_broke() {
    for (body, problem) in [
        (
            r#"{"entries":[],"summary":[{"user":"alice","#,
            "at byte 25: the document ends inside this value (truncated?)",
        ),
        (
            r#"{"entries":[],"summary":[]}}"#,
            "at byte 27: expected the end of the document, found `}`",
        ),
    ] {
        let (out, url) = usage_failure(json(body), "").await;
        assert_contains_all(
            out.failure_of("rgw_usage"),
            &[
                // Which answer was bad: the URL it came from.
                &format!(
                    "collecting: answer of {url}: usage JSON is malformed or of an unexpected shape"
                ),
                problem,
            ],
        );
    }
}

#[tokio::test]
async fn usage_answer_of_the_wrong_shape_is_refused_not_read_as_zero() {
    let summary = |ops: &str| {
        format!(
            r#"{{"summary":[{{"user":"alice","categories":[],"total":{{"bytes_sent":1,"bytes_received":2,"ops":{ops},"successful_ops":3}}}}]}}"#
        )
    };
    for (body, problem) in [
        (summary("\"3\""), "invalid type: string \"3\", expected u64"),
        (summary("-3"), "invalid value: integer `-3`, expected u64"),
    ] {
        let (out, _) = usage_failure(json(body), "").await;
        assert_contains_all(
            out.failure_of("rgw_usage"),
            &["usage JSON is malformed or of an unexpected shape", problem],
        );
    }
}

#[tokio::test]
async fn usage_denied_names_the_code_and_the_missing_cap() {
    let body = r#"{"Code":"AccessDenied","Message":"","RequestId":"x","HostId":"y"}"#;
    let (out, url) = usage_failure(answer(403, "application/json", body), "").await;
    assert_contains_all(
        out.failure_of("rgw_usage"),
        &[
            &format!("GET {url}: HTTP 403 AccessDenied: "),
            &format!("user of access key {ACCESS_KEY} lacks the admin cap to read usage"),
            "radosgw-admin caps add --uid=<user> --caps=\"usage=read\"",
        ],
    );
}

#[tokio::test]
async fn usage_server_that_never_answers_times_out() {
    let (out, url) = usage_failure(Reply::Hang, "timeout = \"1s\"").await;
    assert_contains_all(
        out.failure_of("rgw_usage"),
        &[&format!("GET {url}: timed out after 1s")],
    );
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
}

#[tokio::test]
async fn usage_connection_reset_is_a_transport_error() {
    let (out, url) = usage_failure(Reply::Reset, "").await;
    let line = out.failure_of("rgw_usage");
    assert_contains_all(line, &[&format!("GET {url}: error sending request")]);
    assert!(
        line.contains("reset") || line.contains("closed"),
        "does not say the connection went away: {line}"
    );
}

#[tokio::test]
async fn usage_body_over_max_response_bytes_is_refused() {
    let big = format!("{EMPTY_USAGE}{}", " ".repeat(1000));
    // Announced by Content-Length, and discovered while streaming.
    for sized in [true, false] {
        let reply = Reply::Http {
            status: 200,
            content_type: "application/json",
            body: big.clone().into(),
            sized,
        };
        let (out, url) = usage_failure(reply, "max_response_bytes = 100").await;
        assert_contains_all(
            out.failure_of("rgw_usage"),
            &[&format!(
                "GET {url}: response body exceeds the limit of 100 bytes"
            )],
        );
    }
}

// ------------------------------------------------------------------ the S3 sink

#[tokio::test]
async fn a_refused_upload_is_spooled_named_and_delivered_first_by_the_next_run() {
    let no_such_bucket = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message></Message><BucketName>info</BucketName></Error>"#;
    let dir = tempfile::tempdir().unwrap();
    let rgw = Fake::start(json(EMPTY_USAGE)).await;
    let s3 = Fake::start(answer(404, "application/xml", no_such_bucket)).await;
    let out = run_in(
        dir.path(),
        &config(&s3, Some(&rgw), None, ""),
        &["--job", "rgw_usage"],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let puts = s3.requests();
    assert_eq!(puts.len(), 1);
    let key = puts[0].target.strip_prefix("/info/").unwrap().to_string();
    assert!(key.starts_with("usage."), "{key}");
    assert_contains_all(
        &out.stderr,
        &[
            "upload failed, object kept in the spool for later",
            &format!("PUT object {}/info/{key}", s3.url),
            "HTTP 404 NoSuchBucket: the bucket does not exist: create it first",
            "spooled, not yet in S3",
            "1 of 1 jobs failed: rgw_usage",
        ],
    );

    // The bucket exists now: the next run uploads the spooled object, then its own.
    let fixed = Fake::bucket().await;
    std::thread::sleep(Duration::from_millis(1100)); // a later second, so a different key
    let out = run_in(
        dir.path(),
        &config(&fixed, Some(&rgw), None, ""),
        &["--job", "rgw_usage"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let puts = fixed.requests();
    assert_eq!(puts.len(), 2, "{}", out.stderr);
    assert_eq!(puts[0].target, format!("/info/{key}"));
    assert_eq!(
        puts[0].body,
        s3.requests()[0].body,
        "the spooled bytes, unchanged"
    );
    assert_ne!(puts[1].target, puts[0].target);
    assert_contains_all(&out.stderr, &["stored from the spool"]);
    assert!(std::fs::read_dir(dir.path().join("state/spool"))
        .unwrap()
        .all(|e| e.unwrap().file_type().unwrap().is_dir()));
}

// ------------------------------------------------------------------ retries

/// Asks for retries with short backoffs: `config` turns them off by default.
fn with_retries(config: String, retries: u32) -> String {
    config.replacen(
        "retries = 0\n",
        &format!("retries = {retries}\nretry_base = \"20ms\"\nretry_max = \"100ms\"\n"),
        1,
    )
}

#[tokio::test]
async fn transient_failures_are_retried_until_the_upload_lands() {
    let rgw = Fake::script(vec![
        Reply::Reset,
        answer(
            503,
            "application/xml",
            "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code></Error>",
        ),
        json(EMPTY_USAGE),
    ])
    .await;
    let s3 = Fake::script(vec![
        answer(500, "text/html", HTML_502),
        Reply::Reset,
        answer(200, "text/plain", ""),
    ])
    .await;
    let cfg = with_retries(config(&s3, Some(&rgw), None, ""), 3);
    let out = run(&cfg, &["--job", "rgw_usage"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(rgw.requests().len(), 3);
    let puts = s3.requests();
    assert_eq!(puts.len(), 3);
    // Every attempt sends the same object, and each is signed afresh.
    assert!(puts
        .iter()
        .all(|p| p.body == puts[2].body && p.target == puts[2].target));
    assert_contains_all(&out.stderr, &["retry 1/3", "retry 2/3", "SlowDown"]);
}

#[tokio::test]
async fn retries_stop_at_the_limit_and_errors_that_retrying_cannot_fix_fail_at_once() {
    let rgw = Fake::start(answer(502, "text/html", HTML_502)).await;
    let cfg = with_retries(config(&Fake::bucket().await, Some(&rgw), None, ""), 2);
    let out = run(&cfg, &["--job", "rgw_usage"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(rgw.requests().len(), 3, "one attempt and two retries");

    let denied = r#"{"Code":"AccessDenied","Message":"","RequestId":"x","HostId":"y"}"#;
    let rgw = Fake::start(answer(403, "application/json", denied)).await;
    let cfg = with_retries(config(&Fake::bucket().await, Some(&rgw), None, ""), 5);
    let out = run(&cfg, &["--job", "rgw_usage"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(rgw.requests().len(), 1, "AccessDenied is not retried");
}

#[tokio::test]
async fn a_skewed_clock_is_corrected_from_the_servers_date_once() {
    let skewed = "<?xml version=\"1.0\"?><Error><Code>RequestTimeTooSkewed</Code></Error>";
    // The fake's Date header is its own (correct) clock; the exporter's clock is not skewed
    // here, so the corrected signature date stays within a second of the first one.
    let rgw = Fake::script(vec![
        answer(403, "application/xml", skewed),
        json(EMPTY_USAGE),
    ])
    .await;
    let s3 = Fake::bucket().await;
    let out = run(&config(&s3, Some(&rgw), None, ""), &["--job", "rgw_usage"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        rgw.requests().len(),
        2,
        "one corrected retry, even with retries = 0"
    );
    assert_contains_all(&out.stderr, &["the local clock is off", "Fix NTP"]);

    let rgw = Fake::start(answer(403, "application/xml", skewed)).await;
    let out = run(&config(&s3, Some(&rgw), None, ""), &["--job", "rgw_usage"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        rgw.requests().len(),
        2,
        "corrected once, then the error stands"
    );
}

// ------------------------------------------------------------------ the pool_df job

#[tokio::test]
async fn pool_source_answering_html_502_names_the_url() {
    let (source, s3) = (
        Fake::start(answer(502, "text/html", HTML_502)).await,
        Fake::bucket().await,
    );
    let out = run(&config(&s3, None, Some(&source), ""), &["--job", "pool_df"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_contains_all(
        out.failure_of("pool_df"),
        &[
            &format!(
                "collecting: {}/api/v0.1/osd/df.json?output_method=tree: HTTP 502: <html>",
                source.url
            ),
            "502 Bad Gateway",
        ],
    );
    assert!(s3.requests().is_empty());
}

#[tokio::test]
async fn pool_all_zero_tree_after_a_mgr_restart_is_not_archived() {
    let tree = wrapped_tree("ceph-osd-df-tree.right-after-mgr-restart.json");
    let (source, s3) = (Fake::start(json(tree)).await, Fake::bucket().await);
    let out = run(&config(&s3, None, Some(&source), ""), &["--job", "pool_df"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_contains_all(
        out.failure_of("pool_df"),
        &[
            &format!("answer of {}", source.url),
            "every CRUSH root reports kb = 0 (default)",
            "not archiving zeros",
        ],
    );
    assert!(s3.requests().is_empty(), "zeros were uploaded");
}

#[tokio::test]
async fn pool_good_tree_is_uploaded_in_the_original_text_format_signed_and_checksummed() {
    let (source, s3) = (capacity_source().await, Fake::bucket().await);
    let before = Utc::now();
    let out = run(&config(&s3, None, Some(&source), ""), &["--job", "pool_df"]).await;
    let after = Utc::now();
    assert_eq!(out.code, 0, "{}", out.stderr);

    let got = source.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].method.as_str(), got[0].target.as_str()),
        ("GET", "/api/v0.1/osd/df.json?output_method=tree")
    );

    let puts = s3.requests();
    assert_eq!(puts.len(), 1);
    let put = &puts[0];
    assert_eq!(put.method, "PUT");
    let body = String::from_utf8(put.body.clone()).unwrap();
    let (stamp, rest) = body.split_once('>').unwrap();
    assert_eq!(rest, "default:2097152 kb 2095866 kb_avail 1284 kb_used\n");
    // The fire time is "now", truncated to the second; the key is named after it too.
    let fire: DateTime<Utc> = NaiveDateTime::parse_from_str(stamp, "%Y/%m/%d/%H:%M:%S")
        .unwrap_or_else(|e| panic!("{stamp:?}: {e}"))
        .and_utc();
    assert!(
        before.timestamp() <= fire.timestamp() && fire <= after,
        "{fire} not in [{before}, {after}]"
    );
    let key = fire.format("pool.%Y-%m-%d/%H/%M/%S").to_string();
    assert_eq!(put.target, format!("/info/{key}"));
    assert!(
        out.stderr.contains(&format!("key=\"{key}\"")),
        "{}",
        out.stderr
    );

    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&put.body));
    assert_eq!(put.header("content-md5"), Some(md5.as_str()));
    assert_eq!(
        put.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(put.header("x-amz-meta-job"), Some("pool_df"));

    // Recompute the AWS v2 signature from what arrived: it must cover exactly what was sent.
    let mut amz: Vec<_> = put
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-amz-"))
        .map(|(n, v)| format!("{n}:{v}\n"))
        .collect();
    amz.sort();
    let header = |name| put.header(name).unwrap_or_default();
    let string_to_sign = format!(
        "PUT\n{}\n{}\n{}\n{}{}",
        header("content-md5"),
        header("content-type"),
        header("date"),
        amz.concat(),
        put.target
    );
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET_KEY.as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(
        put.header("authorization"),
        Some(format!("AWS {ACCESS_KEY}:{signature}").as_str())
    );
}

#[tokio::test]
async fn signature_v4_signs_the_upload_and_the_admin_get_each_with_the_hash_of_its_body() {
    use sha2::Sha256;
    let (rgw, source, s3) = (
        Fake::start(json(EMPTY_USAGE)).await,
        capacity_source().await,
        Fake::bucket().await,
    );
    // Set in [s3]; [rgw] inherits both.
    let cfg = config(&s3, Some(&rgw), Some(&source), "").replacen(
        "retries = 0\n",
        "retries = 0\nsignature = \"v4\"\nregion = \"zg-test\"\n",
        1,
    );
    let out = run(&cfg, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (gets, puts) = (rgw.requests(), s3.requests());
    assert_eq!(puts.len(), 2, "{puts:?}");
    for req in gets.iter().chain(&puts) {
        let what = format!("{} {}", req.method, req.target);
        let auth = req.header("authorization").unwrap_or_default();
        assert!(
            auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"))
                && auth.contains("/zg-test/s3/aws4_request, SignedHeaders=")
                && auth.contains("x-amz-content-sha256;x-amz-date"),
            "{what}: {auth}"
        );
        // The payload signed is the one that arrived.
        let sha256: String = Sha256::digest(&req.body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            req.header("x-amz-content-sha256"),
            Some(sha256.as_str()),
            "{what}"
        );
        assert!(
            req.header("x-amz-date").is_some() && req.header("date").is_none(),
            "{what}"
        );
    }
    assert!(
        gets[0].target.starts_with("/admin/usage?"),
        "{}",
        gets[0].target
    );
    assert!(puts.iter().all(|p| p.method == "PUT" && !p.body.is_empty()));
}

#[tokio::test]
async fn key_time_zone_names_the_object_and_stamps_its_lines_in_that_zone_metadata_stays_utc() {
    let (source, s3) = (capacity_source().await, Fake::bucket().await);
    let cfg = config(&s3, None, Some(&source), "").replace(
        "every = \"10s\"\n",
        "every = \"10s\"\nkey_time_zone = \"Asia/Shanghai\"\n",
    );
    let out = run(&cfg, &["--job", "pool_df"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let puts = s3.requests();
    assert_eq!(puts.len(), 1);
    let stamp = puts[0].header("x-amz-meta-fire-time").unwrap_or_default();
    assert!(stamp.ends_with("+00:00"), "metadata stays UTC: {stamp:?}");
    let fire: DateTime<Utc> = DateTime::parse_from_rfc3339(stamp)
        .unwrap_or_else(|e| panic!("{stamp:?}: {e}"))
        .with_timezone(&Utc);
    // China Standard Time: UTC+8, no DST.
    let local = fire + chrono::TimeDelta::hours(8);
    assert_eq!(
        puts[0].target,
        local.format("/info/pool.%Y-%m-%d/%H/%M/%S").to_string()
    );
    assert_eq!(
        String::from_utf8(puts[0].body.clone()).unwrap(),
        local
            .format("%Y/%m/%d/%H:%M:%S>default:2097152 kb 2095866 kb_avail 1284 kb_used\n")
            .to_string()
    );
}

// ------------------------------------------------------------------ both jobs

#[tokio::test]
async fn a_failing_job_does_not_stop_the_other() {
    let rgw = Fake::start(json("garbage")).await;
    let source = capacity_source().await;
    let s3 = Fake::bucket().await;
    let out = run(&config(&s3, Some(&rgw), Some(&source), ""), &[]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_contains_all(
        out.failure_of("rgw_usage"),
        &[
            "usage JSON is malformed",
            "at byte 0: expected an object, found `g`",
        ],
    );
    assert_contains_all(&out.stderr, &["1 of 2 jobs failed: rgw_usage"]);
    let puts = s3.requests();
    assert_eq!(puts.len(), 1, "exactly the pool object");
    assert!(
        puts[0].target.starts_with("/info/pool."),
        "{}",
        puts[0].target
    );
    assert!(puts[0]
        .body
        .ends_with(b">default:2097152 kb 2095866 kb_avail 1284 kb_used\n"));
}

#[tokio::test]
async fn dry_run_prints_keys_and_bodies_and_uploads_nothing() {
    let rgw = Fake::start(json(EMPTY_USAGE)).await;
    let source = capacity_source().await;
    let s3 = Fake::bucket().await;
    let out = run(&config(&s3, Some(&rgw), Some(&source), ""), &["--dry-run"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_contains_all(
        &out.stdout,
        &[
            "=== pool.",
            "(text/plain; charset=utf-8, ",
            // Each object ends in exactly one newline: the capacity body's own, and one
            // printed after the usage body, which has none.
            ">default:2097152 kb 2095866 kb_avail 1284 kb_used\n=== usage.",
            "\nop: 0 bytes_received:0 bytes_sent:0\n",
        ],
    );
    assert!(out.stdout.ends_with(" bytes_sent:0\n"), "{:?}", out.stdout);
    assert!(s3.requests().is_empty(), "a dry run reached S3");
}

#[tokio::test]
async fn capacity_fires_missed_between_runs_are_counted() {
    let (source, s3) = (capacity_source().await, Fake::bucket().await);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&s3, None, Some(&source), "").replace("every = \"10s\"", "every = \"1s\"");
    let first = run_in(dir.path(), &cfg, &["--job", "pool_df"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(!first.stderr.contains("missed"), "{}", first.stderr);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let second = run_in(dir.path(), &cfg, &["--job", "pool_df"]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    // Fires at 1 s steps between the two runs' whole seconds: 2 or 3 of them, never taken.
    let line = second
        .stderr
        .lines()
        .find(|l| l.contains("scheduled snapshots that never ran"))
        .unwrap_or_else(|| panic!("{}", second.stderr));
    assert!(
        line.contains("missed=2") || line.contains("missed=3"),
        "{line}"
    );
}

// ------------------------------------------------------------------ the daemon's listener

/// A Ceph source answering the captured `osd df tree`.
async fn capacity_source() -> Fake {
    Fake::start(json(wrapped_tree("ceph-osd-df-tree.json"))).await
}

/// A port free right now on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the daemon on `config`, written into `dir` (which also holds its state).
fn spawn_daemon(dir: &std::path::Path, config: &str) -> tokio::process::Child {
    std::fs::write(dir.join("config.toml"), config).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ceph-stats-exporter"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .env("STATE_DIRECTORY", dir.join("state"))
        .env_remove("CEPH_STATS_EXPORTER_LOG")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap()
        .success());
}

/// SIGTERM; the daemon must exit 0 within 30 s. Returns its log.
async fn stop_daemon(child: tokio::process::Child) -> String {
    signal(&child, "TERM");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the daemon stops after SIGTERM")
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(
        !log.contains("panicked") && !log.contains(SECRET_KEY),
        "{log}"
    );
    log
}

/// Runs the daemon on `config` for `secs`, reading `/healthz` and `/metrics` at the end;
/// returns (health status, health body, metrics, daemon log).
async fn daemon_and_listener(config: &str, secs: u64) -> (u16, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!("[http]\nlisten = \"127.0.0.1:{port}\"\nunhealthy_after = 2\n\n{config}");
    let child = spawn_daemon(dir.path(), &config);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let base = format!("http://127.0.0.1:{port}");
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    let status = health.status().as_u16();
    let health = health.text().await.unwrap();
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let log = stop_daemon(child).await;
    assert!(!metrics.contains(SECRET_KEY));
    (status, health, metrics, log)
}

#[tokio::test]
async fn sighup_applies_a_good_config_and_refuses_a_bad_one() {
    let (source, s3) = (capacity_source().await, Fake::bucket().await);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&s3, None, Some(&source), "").replace("every = \"10s\"", "every = \"1s\"");
    let child = spawn_daemon(dir.path(), &cfg);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // A new state directory is ignored (with a warning): the spool stays where it is.
    let elsewhere = dir.path().join("elsewhere");
    let reloaded = cfg.replace(
        "every = \"1s\"",
        "every = \"1s\"\nkey = \"reloaded/pool.%Y-%m-%d/%H/%M/%S\"",
    ) + &format!("\n[exporter]\nstate_dir = \"{}\"\n", elsewhere.display());
    std::fs::write(dir.path().join("config.toml"), &reloaded).unwrap();
    signal(&child, "HUP");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    std::fs::write(
        dir.path().join("config.toml"),
        reloaded.replace("every = \"1s\"", "every = \"7m\""),
    )
    .unwrap();
    signal(&child, "HUP");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let log = stop_daemon(child).await;

    let keys: Vec<String> = s3.requests().iter().map(|r| r.target.clone()).collect();
    let first_reloaded = keys
        .iter()
        .position(|k| k.starts_with("/info/reloaded/"))
        .unwrap_or_else(|| panic!("{keys:?}\n{log}"));
    assert!(first_reloaded >= 1, "{keys:?}");
    // Once reloaded, every key uses the new template, through the refused second reload.
    assert!(
        keys[first_reloaded..]
            .iter()
            .all(|k| k.starts_with("/info/reloaded/")),
        "{keys:?}"
    );
    assert!(keys.len() - first_reloaded >= 4, "{keys:?}\n{log}");
    assert_contains_all(
        &log,
        &[
            "configuration reloaded",
            "reload refused, the running configuration stays",
            "jobs.pool_df.every: interval 7m",
            "exporter.state_dir changes take effect at the next start",
        ],
    );
    assert!(!elsewhere.exists(), "the reload moved the state directory");
}

#[tokio::test]
async fn the_daemon_reports_health_and_metrics() {
    let (source, s3) = (capacity_source().await, Fake::bucket().await);
    let cfg = config(&s3, None, Some(&source), "").replace("every = \"10s\"", "every = \"1s\"");
    let (status, health, metrics, log) = daemon_and_listener(&cfg, 3).await;
    assert_eq!(status, 200, "{health}\n{log}");
    assert!(health.contains("pool_df: ok, last success"), "{health}");
    let stored = s3.requests().len();
    assert!(stored >= 2, "{log}");
    assert_contains_all(
        &metrics,
        &[
            "ceph_stats_exporter_runs_total{job=\"pool_df\"}",
            "ceph_stats_exporter_objects_stored_total{job=\"pool_df\"}",
            "ceph_stats_exporter_stored_bytes_total{job=\"pool_df\"}",
            "ceph_stats_exporter_last_success_timestamp_seconds{job=\"pool_df\"}",
            "ceph_stats_exporter_spool_objects 0",
            "ceph_stats_exporter_request_retries_total{client=\"s3\"} 0",
        ],
    );
}

#[tokio::test]
async fn a_job_that_keeps_failing_turns_health_red_and_is_counted() {
    let (source, s3) = (
        Fake::start(answer(502, "text/html", HTML_502)).await,
        Fake::bucket().await,
    );
    let cfg = config(&s3, None, Some(&source), "").replace("every = \"10s\"", "every = \"1s\"");
    let (status, health, metrics, _) = daemon_and_listener(&cfg, 4).await;
    assert_eq!(status, 503, "{health}");
    assert!(
        health.contains("pool_df: UNHEALTHY, no success for"),
        "{health}"
    );
    assert!(
        metrics.contains(
            "ceph_stats_exporter_run_failures_total{job=\"pool_df\",reason=\"ceph_source\"}"
        ),
        "{metrics}"
    );
    assert!(s3.requests().is_empty());
}

#[tokio::test]
async fn a_failed_multipart_upload_is_aborted() {
    let initiated = "<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>info</Bucket>\
                     <Key>k</Key><UploadId>2~upload-id</UploadId></InitiateMultipartUploadResult>";
    let s3 = Fake::script(vec![
        answer(200, "application/xml", initiated),
        answer(500, "text/html", HTML_502),
        answer(204, "text/plain", ""),
    ])
    .await;
    let source = capacity_source().await;
    // Every object goes up in parts here.
    let cfg = config(&s3, None, Some(&source), "")
        .replace("retries = 0\n", "retries = 0\nmultipart_threshold = 10\n");
    let out = run(&cfg, &["--job", "pool_df"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let calls: Vec<(String, String)> = s3
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.target.clone()))
        .collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(
        calls[0].0 == "POST" && calls[0].1.ends_with("?uploads"),
        "{calls:?}"
    );
    assert!(
        calls[1].0 == "PUT" && calls[1].1.ends_with("?partNumber=1&uploadId=2%7Eupload-id"),
        "{calls:?}"
    );
    assert!(
        calls[2].0 == "DELETE" && calls[2].1.ends_with("?uploadId=2%7Eupload-id"),
        "{calls:?}"
    );
    // Collected, so spooled rather than lost.
    assert_contains_all(
        &out.stderr,
        &["PUT part", "HTTP 500", "spooled, not yet in S3"],
    );
}

#[tokio::test]
async fn a_multipart_upload_whose_parts_changed_on_disk_is_aborted_not_completed() {
    use ceph_stats_exporter::config::Endpoint;
    use ceph_stats_exporter::payload::Payload;
    use ceph_stats_exporter::s3::S3Client;
    use ceph_stats_exporter::s3auth::{Addressing, Credentials};
    use ceph_stats_exporter::secret::Secret;
    use std::io::{Seek, SeekFrom, Write};

    let initiated = "<InitiateMultipartUploadResult><UploadId>u1</UploadId>\
                     </InitiateMultipartUploadResult>";
    let s3 = Fake::script(vec![
        answer(200, "application/xml", initiated),
        answer(200, "text/plain", ""),
    ])
    .await;
    // A rendered object in its file, then damaged in place after its MD5 was taken.
    let body = b"0123456789abcdefghij";
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(body).unwrap();
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(body));
    let payload = Payload::from_file_region(file.try_clone().unwrap(), 0, 20, &md5)
        .unwrap()
        .unwrap();
    file.seek(SeekFrom::Start(15)).unwrap();
    file.write_all(b"X").unwrap();

    let client = S3Client::new(&Endpoint {
        url: s3.url.parse().unwrap(),
        credentials: Credentials {
            access_key: ACCESS_KEY.into(),
            secret_key: Secret::new(SECRET_KEY),
        },
        addressing: Addressing::Path,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        max_response_bytes: 1 << 20,
        retry: Default::default(),
        signing: Default::default(),
    })
    .unwrap();
    let err = client
        .put_object_multipart("info", "k", &payload, 8, "text/plain", &[])
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("do not hash to the object as rendered"),
        "{err}"
    );
    let calls: Vec<String> = s3
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        calls,
        [
            "POST /info/k?uploads",
            "PUT /info/k?partNumber=1&uploadId=u1",
            "PUT /info/k?partNumber=2&uploadId=u1",
            "PUT /info/k?partNumber=3&uploadId=u1",
            "DELETE /info/k?uploadId=u1",
        ]
    );
}

/// A usage answer of a few megabytes takes the whole streaming path: the answer spilled to a
/// temporary file, walked a block at a time, the JSON object rendered into a temporary file,
/// printed by `--dry-run` in chunks and uploaded from the file, with the MD5 taken as written.
#[tokio::test]
async fn a_large_usage_answer_streams_through_to_the_same_object_printed_and_uploaded() {
    use ceph_stats_exporter::synth::Shape;
    let shape = Shape {
        hours: 3,
        ..Shape::sized(0, 300, 4, 8)
    };
    let mut answer = Vec::new();
    shape.write(&mut answer).unwrap();
    assert!(answer.len() > 3_000_000, "{}", answer.len());
    let (rgw, s3) = (Fake::start(json(answer)).await, Fake::bucket().await);
    let cfg = config(&s3, Some(&rgw), None, "max_response_bytes = 16777216")
        .replace("every = \"1h\"\n", "every = \"1h\"\nformat = \"json\"\n");
    let window = [
        "--from",
        "2026-11-22T17:00:00Z",
        "--to",
        "2026-11-22T20:00:00Z",
    ];

    let printed = run(&cfg, &[&["--dry-run"][..], &window].concat()).await;
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    let (head, body) = printed.stdout.split_once('\n').unwrap();
    assert!(
        head.starts_with("=== usage.2026-11-22/20/00/00 (application/json, "),
        "{head}"
    );
    let doc: serde_json::Value = serde_json::from_str(body).unwrap();
    let total: ceph_stats_exporter::usage::Counters =
        serde_json::from_value(doc["total"].clone()).unwrap();
    assert_eq!(total, shape.total());
    assert_eq!(doc["buckets"].as_array().unwrap().len(), 300 * 4);
    assert!(body.len() > 256 * 1024, "small enough to stay in memory");
    assert!(head.contains(&format!(", {} bytes)", body.len())), "{head}");

    let stored = run(&cfg, &window).await;
    assert_eq!(stored.code, 0, "{}", stored.stderr);
    let puts = s3.requests();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].body, body.as_bytes());
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(body));
    assert_eq!(puts[0].header("content-md5"), Some(md5.as_str()));
}

/// Whether the listener on `port` answers `/healthz` (with any status).
async fn listening(port: u16) -> bool {
    reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_ok()
}

/// Waits up to 10 s for `listening(port)` to be `want`.
async fn await_listening(port: u16, want: bool) -> bool {
    for _ in 0..100 {
        if listening(port).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn sighup_moves_the_listener_and_keeps_it_when_the_new_port_is_taken() {
    let (source, s3) = (capacity_source().await, Fake::bucket().await);
    let dir = tempfile::tempdir().unwrap();
    let base = config(&s3, None, Some(&source), "");
    let on = |port: u16| format!("[http]\nlisten = \"127.0.0.1:{port}\"\n\n{base}");
    let (first, second) = (free_port(), free_port());
    let child = spawn_daemon(dir.path(), &on(first));
    assert!(await_listening(first, true).await, "no listener on {first}");

    std::fs::write(dir.path().join("config.toml"), on(second)).unwrap();
    signal(&child, "HUP");
    assert!(
        await_listening(second, true).await,
        "no listener on {second}"
    );
    assert!(!listening(first).await, "the old listener still answers");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    std::fs::write(dir.path().join("config.toml"), on(taken_port)).unwrap();
    signal(&child, "HUP");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(listening(second).await, "a failed move lost the listener");
    let log = stop_daemon(child).await;
    assert_contains_all(
        &log,
        &[
            &format!("http.listen 127.0.0.1:{taken_port}"),
            "[http] stays as it was",
        ],
    );
}

// ------------------------------------------------------------------ hostile peers

#[tokio::test]
async fn a_redirected_put_is_not_followed_and_its_object_is_spooled() {
    let elsewhere = Fake::bucket().await;
    let location = format!("{}/stolen/object", elsewhere.url);
    let s3 = Fake::start(with_headers(307, &[&format!("Location: {location}")], "")).await;
    let source = capacity_source().await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &config(&s3, None, Some(&source), ""),
        &["--job", "pool_df"],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(s3.requests().len(), 1, "a 3xx is not retried");
    assert!(
        elsewhere.requests().is_empty(),
        "the body went to the Location"
    );
    assert_contains_all(
        &out.stderr,
        &[
            "HTTP 307",
            &format!("redirected to {location}"),
            "object kept in the spool",
        ],
    );
    let spooled = std::fs::read_dir(dir.path().join("state/spool")).unwrap();
    assert_eq!(
        spooled
            .filter(|e| e.as_ref().unwrap().path().is_file())
            .count(),
        1
    );
}

#[tokio::test]
async fn a_redirected_admin_get_is_not_followed() {
    let elsewhere = Fake::start(json(EMPTY_USAGE)).await;
    let location = format!("{}/admin/usage", elsewhere.url);
    let (out, _) = usage_failure(
        with_headers(302, &[&format!("Location: {location}")], ""),
        "",
    )
    .await;
    assert!(elsewhere.requests().is_empty());
    assert_contains_all(
        out.failure_of("rgw_usage"),
        &["HTTP 302", &format!("redirected to {location}")],
    );
}

const TIME_SKEWED: &str = "<?xml version=\"1.0\"?><Error><Code>RequestTimeTooSkewed</Code></Error>";

#[tokio::test]
async fn a_server_date_in_year_9999_is_refused_not_stored_and_nothing_panics() {
    let year_9999 = "Date: Fri, 31 Dec 9999 23:59:59 GMT";
    let (out, _) = usage_failure(with_headers(403, &[year_9999], TIME_SKEWED), "").await;
    assert_contains_all(
        out.failure_of("rgw_usage"),
        &["clock correction is refused", "9999", "fix NTP"],
    );

    // The same answer to an upload: the object is spooled, and the run counted as failed.
    let s3 = Fake::start(with_headers(403, &[year_9999], TIME_SKEWED)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &config(&s3, None, Some(&capacity_source().await), ""),
        &["--job", "pool_df"],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(s3.requests().len(), 1, "no second, corrected attempt");
    assert_contains_all(&out.stderr, &["object kept in the spool", "9999"]);
}

#[tokio::test]
async fn a_black_holed_s3_delays_uploads_but_every_capacity_fire_is_collected() {
    let (source, s3) = (capacity_source().await, Fake::start(Reply::Hang).await);
    let dir = tempfile::tempdir().unwrap();
    // Each upload hangs for two timeouts and a backoff (~2.5 s) while fires come every second.
    let cfg = config(&s3, None, Some(&source), "")
        .replace("every = \"10s\"", "every = \"1s\"")
        .replacen(
            "retries = 0\n",
            "retries = 1\nretry_base = \"500ms\"\ntimeout = \"1s\"\n",
            1,
        );
    let child = spawn_daemon(dir.path(), &cfg);
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let log = stop_daemon(child).await;
    let collected = source.requests().len();
    assert!(
        collected >= 5,
        "only {collected} of ~6 fires collected:\n{log}"
    );
    assert!(!log.contains("previous run still going"), "{log}");
    // Nothing reached S3, so every snapshot collected waits in the spool.
    let spooled = std::fs::read_dir(dir.path().join("state/spool"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert_eq!(spooled, collected, "{log}");
}

#[tokio::test]
async fn the_body_of_a_put_answer_is_not_read() {
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let s3 = Fake::start(Reply::Endless(sent.clone())).await;
    let out = run(
        &config(&s3, None, Some(&capacity_source().await), ""),
        &["--job", "pool_df"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Once the client hangs up, the fake's writes fail after what socket buffers hold.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < 32 << 20, "{sent} bytes of the answer were taken in");
}

#[tokio::test]
async fn a_checkpoint_in_the_future_is_said_loudly() {
    let (rgw, s3) = (Fake::start(json(EMPTY_USAGE)).await, Fake::bucket().await);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(
        dir.path().join("state/rgw_usage.state.json"),
        r#"{"last_fire":null,"delivered_until":"2099-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &config(&s3, Some(&rgw), None, ""),
        &["--job", "rgw_usage"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| {
            l.contains("ERROR") && l.contains("checkpoint of delivered windows is in the future")
        })
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert_contains_all(line, &["2099-01-01", "NOT caught up", "--from/--to"]);
}

#[tokio::test]
async fn names_from_an_answer_cannot_forge_a_log_line() {
    let forged = "2026-12-01T00:00:00.000000Z  INFO stored job=\"pool_df\"";
    let row = format!(
        r#"{{"user":"evil\n{}\r\u001b[2K","categories":[],"total":{{"bytes_sent":0,"bytes_received":0,"ops":0,"successful_ops":0}}}}"#,
        forged.replace('"', "\\\"")
    );
    let answer = format!(r#"{{"entries":[],"summary":[{row},{row}]}}"#);
    let (out, _) = usage_failure(json(answer), "").await;
    let failure = out.failure_of("rgw_usage");
    assert!(failure.contains("appears twice"), "{failure}");
    assert!(failure.contains(r"evil\n2026-12-01"), "{failure}");
    for line in out.stderr.lines() {
        assert!(
            !line.starts_with("2026-12-01T00:00:00"),
            "forged line:\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains('\r'), "{}", out.stderr);
}

#[tokio::test]
async fn idle_clients_cannot_take_the_daemons_descriptors_or_its_log() {
    let (source, s3) = (capacity_source().await, Fake::bucket().await);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n\n{}",
        config(&s3, None, Some(&source), "").replace("every = \"10s\"", "every = \"1s\"")
    );
    std::fs::write(dir.path().join("config.toml"), cfg).unwrap();
    // A low open-files limit, so that exhausting it takes a few dozen connections.
    let child = tokio::process::Command::new("sh")
        .args(["-c", "ulimit -n 64 && exec \"$0\" --config \"$1\""])
        .arg(env!("CARGO_BIN_EXE_ceph-stats-exporter"))
        .arg(dir.path().join("config.toml"))
        .env("STATE_DIRECTORY", dir.path().join("state"))
        .env_remove("CEPH_STATS_EXPORTER_LOG")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert!(await_listening(port, true).await);

    // 150 clients connect and say nothing.
    let mut idle = Vec::new();
    for _ in 0..150 {
        idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    let before = s3.requests().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = s3.requests().len() - before;
    assert!(
        during >= 2,
        "the jobs stopped storing while clients idled ({during})"
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", child.id().unwrap()))
        .unwrap()
        .count();
    assert!(fds < 64, "{fds} descriptors open");

    // Gone clients free their places at once; a silent one is closed after the header timeout.
    drop(idle);
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(
        listening(port).await,
        "health does not answer after the flood"
    );
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(8), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a silent client is still connected: {closed:?}"
    );

    let log = stop_daemon(child).await;
    let complaints = log
        .lines()
        .filter(|l| l.contains("cannot accept") || l.contains("Too many open files"))
        .count();
    assert!(complaints <= 2, "{complaints} lines:\n{log}");
}
