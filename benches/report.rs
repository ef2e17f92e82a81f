//! `cargo bench --bench report`: `report` over an archive in the real loopback cluster's
//! bucket (dev/ceph/start.sh, then `source /tmp/ceph-dev/env`; without that environment the
//! bench says so and measures nothing): objects per second for list + fetch + aggregate, and
//! the report's peak RSS, measured on the child process.
//!
//! The archive is `CSE_BENCH_OBJECTS` hourly usage windows (20000 under `cargo bench`, 200
//! under `cargo test`) in the records format, each of `CSE_BENCH_USERS` users (4; 11 KB an
//! object) x 2 buckets x 4 categories, put through RGW with 32 requests in flight and deleted
//! again at the end: the dev cluster's OSDs live in 2 GiB of memory. The report's total must
//! equal what was put. `CSE_BENCH_ARGS` adds arguments to `report` (`--concurrency 32`).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ceph_stats_exporter::format::{Compression, Format};
use ceph_stats_exporter::pipeline;
use ceph_stats_exporter::s3::{Endpoint, S3Client};
use ceph_stats_exporter::s3auth::{Addressing, Credentials};
use ceph_stats_exporter::secret::Secret;
use ceph_stats_exporter::snapshot::{Labels, Snapshot, SnapshotData};
use ceph_stats_exporter::synth::Shape;
use ceph_stats_exporter::usage;
use ceph_stats_exporter::window::Window;
use chrono::{DateTime, TimeDelta, Utc};

const IN_FLIGHT: usize = 32;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (Ok(endpoint), Ok(bucket)) = (std::env::var("RGW_ENDPOINT"), std::env::var("RGW_BUCKET"))
    else {
        println!("report bench: no cluster environment (source /tmp/ceph-dev/env): skipped");
        return;
    };
    let objects: usize = std::env::var("CSE_BENCH_OBJECTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if bench { 20_000 } else { 200 });
    let key = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let s3 = Endpoint {
        url: endpoint.parse().expect("RGW_ENDPOINT"),
        credentials: Credentials {
            access_key: key("EXPORTER_ACCESS_KEY"),
            secret_key: Secret::new(key("EXPORTER_SECRET_KEY")),
        },
        addressing: Addressing::Path,
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
        max_response_bytes: 1 << 20,
        retry: Default::default(),
        signing: Default::default(),
    };
    let users: usize = std::env::var("CSE_BENCH_USERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4);
    let prefix = format!("bench-report-{objects}x{users}");
    let shape = Shape {
        hours: 1,
        ..Shape::sized(0, users, 2, 4)
    };
    let first = DateTime::from_timestamp(shape.start_epoch, 0).expect("epoch");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = Arc::new(S3Client::new(&s3).expect("client"));
    let size = runtime.block_on(seed(&client, &bucket, &prefix, shape, first, objects));

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[s3]\nendpoint = \"{endpoint}\"\nbucket = \"{bucket}\"\n\
             access_key = {{ env = \"EXPORTER_ACCESS_KEY\" }}\n\
             secret_key = {{ env = \"EXPORTER_SECRET_KEY\" }}\n\
             [jobs.rgw_usage]\nschedule = \"0 5 * * * *\"\nformat = \"records\"\n\
             key = \"{prefix}/usage.%Y-%m-%d/%H/%M/%S\"\n"
        ),
    )
    .expect("config");
    let to = first + TimeDelta::hours(objects as i64);
    // Reaped by wait4 below, which gives its resource usage too.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(env!("CARGO_BIN_EXE_ceph-stats-exporter"))
        .arg("--config")
        .arg(&config)
        .args(["report", "--output", "json"])
        .args(
            std::env::var("CSE_BENCH_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .arg("--from")
        .arg(first.to_rfc3339())
        .arg("--to")
        .arg(to.to_rfc3339())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("report");
    let started = Instant::now();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let reading = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let logging = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let (status, rusage) = wait4(child.id());
    let wall = started.elapsed().as_secs_f64();
    let (rows, log) = (
        reading.join().unwrap_or_default(),
        logging.join().unwrap_or_default(),
    );
    runtime.block_on(remove(&client, &bucket, &prefix, first, objects));
    assert_eq!(status, 0, "report failed: {log}");
    let got: serde_json::Value = serde_json::from_str(rows.trim()).expect("one row");
    let want = shape.total();
    for (name, each) in [
        ("ops", want.ops),
        ("successful_ops", want.successful_ops),
        ("bytes_sent", want.bytes_sent),
        ("bytes_received", want.bytes_received),
    ] {
        assert_eq!(
            got[name].as_u64(),
            Some(each * objects as u64),
            "{name}: {log}"
        );
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    println!(
        "report, {objects} records objects of {size} bytes: {:.0} objects/s (list + fetch + \
         aggregate, {wall:.2} s wall, {:.2} s CPU), peak RSS {:.1} MiB",
        objects as f64 / wall,
        tv(rusage.ru_utime) + tv(rusage.ru_stime),
        rusage.ru_maxrss as f64 / 1024.0
    );
}

/// The key of the `h`-th hour's object: named by its fire, 5 minutes past the window's end.
fn key(prefix: &str, first: DateTime<Utc>, h: usize) -> String {
    let fire = first + TimeDelta::hours(h as i64 + 1) + TimeDelta::minutes(5);
    format!("{prefix}/{}", fire.format("usage.%Y-%m-%d/%H/%M/%S"))
}

/// Puts `objects` hourly windows under `prefix`; returns the size of one object.
async fn seed(
    client: &Arc<S3Client>,
    bucket: &str,
    prefix: &str,
    shape: Shape,
    first: DateTime<Utc>,
    objects: usize,
) -> usize {
    let mut answer = Vec::new();
    shape.write(&mut answer).expect("answer");
    let hour = |h: usize| Window {
        start: first + TimeDelta::hours(h as i64),
        end: first + TimeDelta::hours(h as i64 + 1),
    };
    let report = usage::parse(&answer, hour(0), true).expect("synthetic answer");
    let object = |h: usize| {
        let window = hour(h);
        let fire = window.end + TimeDelta::minutes(5);
        let snapshot = Snapshot {
            job: "rgw_usage".into(),
            labels: Labels::default(),
            fire_time: fire,
            collected_at: fire,
            cluster_fsid: None,
            data: SnapshotData::Usage(usage::UsageReport {
                window,
                ..report.clone()
            }),
        };
        let key = key(prefix, first, h);
        pipeline::to_object(
            &snapshot,
            key,
            Format::Records,
            Compression::None,
            chrono_tz::UTC,
        )
        .expect("render")
    };
    let size = object(0).body.len() as usize;
    let started = Instant::now();
    in_flight(objects, |h| {
        let (client, bucket, o) = (client.clone(), bucket.to_string(), object(h));
        async move {
            let put = client.put_object(&bucket, &o.key, &o.body, &o.content_type, &o.metadata);
            put.await.map_err(|e| format!("{}: {e}", o.key))
        }
    })
    .await;
    println!(
        "report bench: put {objects} objects in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    size
}

/// Deletes what [`seed`] put.
async fn remove(
    client: &Arc<S3Client>,
    bucket: &str,
    prefix: &str,
    first: DateTime<Utc>,
    objects: usize,
) {
    in_flight(objects, |h| {
        let (client, bucket, key) = (client.clone(), bucket.to_string(), key(prefix, first, h));
        async move {
            let delete = client.delete_object(&bucket, &key);
            delete.await.map_err(|e| format!("{key}: {e}"))
        }
    })
    .await;
}

/// Runs `request(0..n)`, [`IN_FLIGHT`] at a time; panics on the first failure.
async fn in_flight<F>(n: usize, request: impl Fn(usize) -> F)
where
    F: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let mut next = 0;
    let mut tasks = tokio::task::JoinSet::new();
    while next < n || !tasks.is_empty() {
        while next < n && tasks.len() < IN_FLIGHT {
            tasks.spawn(request(next));
            next += 1;
        }
        if let Some(done) = tasks.join_next().await {
            done.expect("request task").expect("request");
        }
    }
}

/// Waits for the child `pid`: its exit code and resource usage (peak RSS included).
fn wait4(pid: u32) -> (i32, libc::rusage) {
    let mut status = 0;
    // SAFETY: wait4 only writes the status and the struct it is given.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut rusage) };
    assert_eq!(waited, pid as i32, "wait4");
    (libc::WEXITSTATUS(status), rusage)
}
