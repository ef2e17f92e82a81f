//! Error paths a real gateway or mgr will not produce on demand: proxies answering HTML, broken
//! or oddly shaped JSON, admin-API and S3 error answers, hanging and resetting servers, oversized
//! bodies, the all-zero `osd df tree` of a freshly started mgr.
//!
//! Each test runs the real binary (`--once`) against small in-process HTTP/1.1 fakes and checks
//! what an operator would see: the exit code, one log line naming the job, the URL, the status
//! and what to do, no panic, no secret, and nothing uploaded from a failed collection.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use support::exporter::*;
use support::fake::*;
use support::fixtures::fixture;

// ------------------------------------------------------------------ running the exporter

fn assert_contains_all(text: &str, fragments: &[&str]) {
    for f in fragments {
        assert!(text.contains(f), "{f:?} missing from:\n{text}");
    }
}

/// Runs the usage job alone against an admin API answering `reply`. The run must fail with exit
/// code 1 (a job failed, not a config error) and must upload nothing. Returns the outcome and
/// the admin API's `/admin/usage` URL as it appears in errors.
async fn usage_failure(reply: Reply, rgw_extra: &str) -> (Outcome, String) {
    usage_failure_of(reply, rgw_extra, &[]).await
}

/// [`usage_failure`] with more arguments for the run (the window, ...).
async fn usage_failure_of(reply: Reply, rgw_extra: &str, args: &[&str]) -> (Outcome, String) {
    let (rgw, s3) = (Fake::start(reply).await, Fake::bucket().await);
    let out = run(
        &config(&s3, Some(&rgw), None, rgw_extra),
        &[&["--job", "rgw_usage"], args].concat(),
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

/// The window of [`usage_answer_cut_short`]'s records, so that they are parsed, not refused.
const CUT_WINDOW: [&str; 4] = [
    "--from",
    "2026-11-22T17:00:00Z",
    "--to",
    "2026-11-22T20:00:00Z",
];

/// A usage answer of a few megabytes, sent with its full length announced but only its first
/// two thirds: the parse is well under way when the connection ends.
fn usage_answer_cut_short() -> Vec<u8> {
    let mut answer = Vec::new();
    ceph_stats_exporter::synth::Shape {
        hours: 3,
        ..ceph_stats_exporter::synth::Shape::sized(0, 300, 4, 8)
    }
    .write(&mut answer)
    .unwrap();
    let head = format!(
        "HTTP/1.1 200 Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        answer.len()
    );
    answer.truncate(answer.len() * 2 / 3);
    [head.as_bytes(), &answer].concat()
}

#[tokio::test]
async fn usage_answer_cut_mid_body_fails_the_run_as_a_transport_error() {
    let cut = usage_answer_cut_short();
    assert!(cut.len() > 2_000_000, "several chunks and walker blocks");
    let (out, url) = usage_failure_of(
        Reply::Raw(cut),
        "max_response_bytes = 16777216",
        &CUT_WINDOW,
    )
    .await;
    let line = out.failure_of("rgw_usage");
    // What failed is the transfer, not the JSON it left unfinished; and not retried: the whole
    // run is (catch-up), never a report of part of the answer.
    assert_contains_all(line, &[&format!("GET {url}: error decoding response body")]);
    assert!(!line.contains("usage JSON"), "{line}");
}

#[tokio::test]
async fn usage_answer_that_stalls_mid_body_times_out() {
    let (out, url) = usage_failure_of(
        Reply::RawThenHang(usage_answer_cut_short()),
        "timeout = \"2s\"\nmax_response_bytes = 16777216",
        &CUT_WINDOW,
    )
    .await;
    assert_contains_all(
        out.failure_of("rgw_usage"),
        &[&format!("GET {url}: timed out after 2s")],
    );
    assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
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
    use ceph_stats_exporter::payload::Payload;
    use ceph_stats_exporter::s3::Endpoint;
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

/// A usage answer of a few megabytes takes the whole streaming path: the answer handed to the
/// parser chunk by chunk as it arrives, walked a block at a time, the JSON object rendered into a temporary file,
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

#[tokio::test]
async fn a_reload_during_a_multipart_spool_drain_completes_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    let source = capacity_source().await;
    // A first run spools its object: S3 refuses it.
    let down = Fake::start(answer(503, "text/html", HTML_502)).await;
    let spooling = config(&down, None, Some(&source), "");
    assert_eq!(
        run_in(dir.path(), &spooling, &["--job", "pool_df"])
            .await
            .code,
        1
    );

    // The daemon drains it as a multipart upload whose part takes 2 s; SIGHUP comes meanwhile.
    let initiated = "<InitiateMultipartUploadResult><UploadId>u1</UploadId>\
                     </InitiateMultipartUploadResult>";
    let s3 = Fake::script(vec![
        answer(200, "application/xml", initiated),
        Reply::SlowOk(Duration::from_secs(2)),
        answer(200, "application/xml", "<CompleteMultipartUploadResult/>"),
    ])
    .await;
    // Every object goes up in parts; the job itself never fires during the test.
    let cfg = config(&s3, None, Some(&source), "")
        .replace("retries = 0\n", "retries = 0\nmultipart_threshold = 10\n")
        .replace("every = \"10s\"", "schedule = \"0 0 0 1 1 *\"");
    let child = spawn_daemon(dir.path(), &cfg);
    let started = Instant::now();
    while s3.requests().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the drain never began"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(&child, "HUP");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = stop_daemon(child).await;
    let calls: Vec<String> = s3
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(calls.len(), 3, "{calls:?}\n{log}");
    assert!(
        calls[2].starts_with("POST ") && calls[2].ends_with("?uploadId=u1"),
        "{calls:?}"
    );
    assert_contains_all(&log, &["configuration reloaded", "stored from the spool"]);
    let left = std::fs::read_dir(dir.path().join("state/spool"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert_eq!(left, 0, "{log}");
}

#[tokio::test]
async fn two_usage_instances_read_their_own_gateways_keep_their_own_checkpoints_and_labels() {
    let (zone_a, zone_b) = (
        Fake::start(json(EMPTY_USAGE)).await,
        Fake::start(json(EMPTY_USAGE)).await,
    );
    let s3 = Fake::bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[s3]\nendpoint = \"{}\"\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n\
         retries = 0\n\n\
         [jobs.usage_a]\nkind = \"rgw_usage\"\nevery = \"1h\"\nformat = \"json\"\n\
         key = \"a/usage.%Y-%m-%d/%H\"\ncluster = \"main\"\nzone = \"zone-a\"\n\
         rgw = {{ endpoint = \"{}\", access_key = \"AKA\", secret_key = \"{SECRET_KEY}\" }}\n\n\
         [jobs.usage_b]\nkind = \"rgw_usage\"\nevery = \"1h\"\nkey = \"b/usage.%Y-%m-%d/%H\"\n\
         zone = \"zone-b\"\nuid = \"bob\"\nrgw = {{ endpoint = \"{}\" }}\n",
        s3.url, zone_a.url, zone_b.url
    );
    let out = run_in(dir.path(), &cfg, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);

    // Each instance asked its own gateway, with its own key and filter.
    let (a, b) = (zone_a.requests(), zone_b.requests());
    assert_eq!((a.len(), b.len()), (1, 1));
    assert!(a[0]
        .header("authorization")
        .unwrap()
        .starts_with("AWS AKA:"));
    assert!(!a[0].target.contains("uid="), "{}", a[0].target);
    assert!(b[0].target.contains("uid=bob"), "{}", b[0].target);
    assert!(b[0]
        .header("authorization")
        .unwrap()
        .starts_with(&format!("AWS {ACCESS_KEY}:")));

    // Stored under each instance's key, labelled; the JSON body names instance and labels.
    let puts = s3.requests();
    let put = |prefix: &str| {
        puts.iter()
            .find(|p| p.target.starts_with(prefix))
            .unwrap_or_else(|| panic!("nothing under {prefix}"))
    };
    let (pa, pb) = (put("/info/a/usage."), put("/info/b/usage."));
    assert_eq!(pa.header("x-amz-meta-job"), Some("usage_a"));
    assert_eq!(pa.header("x-amz-meta-cluster"), Some("main"));
    assert_eq!(pa.header("x-amz-meta-zone"), Some("zone-a"));
    assert_eq!(pb.header("x-amz-meta-zone"), Some("zone-b"));
    assert_eq!(pb.header("x-amz-meta-cluster"), None);
    let doc: serde_json::Value = serde_json::from_slice(&pa.body).unwrap();
    assert_eq!(
        (&doc["job"], &doc["cluster"], &doc["zone"]),
        (&"usage_a".into(), &"main".into(), &"zone-a".into())
    );

    // Two checkpoints, one per instance.
    for name in ["usage_a", "usage_b"] {
        let state = std::fs::read_to_string(dir.path().join(format!("state/{name}.state.json")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(state.contains("delivered_until"), "{state}");
    }

    // --job picks an instance by its name.
    let out = run_in(dir.path(), &cfg, &["--job", "usage_b"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!((zone_a.requests().len(), zone_b.requests().len()), (1, 2));
    let out = run_in(dir.path(), &cfg, &["--job", "rgw_usage"]).await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("no such enabled job (enabled: usage_a, usage_b)"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn check_reports_an_unreadable_secret_on_its_line_and_goes_on() {
    let s3 = Fake::bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&s3, None, Some(&capacity_source().await), "").replace(
        &format!("secret_key = \"{SECRET_KEY}\""),
        "secret_key = { env = \"CSE_SURELY_UNSET_SECRET\" }",
    );
    std::fs::write(dir.path().join("config.toml"), cfg).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ceph-stats-exporter"))
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .arg("check")
        .env("STATE_DIRECTORY", dir.path().join("state"))
        .env_remove("CSE_SURELY_UNSET_SECRET")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_contains_all(
        &text,
        &[
            "FAIL a secret is readable",
            "s3.secret_key: environment variable CSE_SURELY_UNSET_SECRET is not set",
            "ok   state directory",
            "ok   pool_df: ",
        ],
    );
}
