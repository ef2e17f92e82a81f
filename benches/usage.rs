//! `cargo bench --bench usage`: throughput and peak memory of the usage path on synthetic RGW
//! answers (parse + aggregate, then the JSON object rendered into its payload with its MD5),
//! the same end to end from a socket (a local HTTP server streaming the answer, the exporter's
//! admin GET, `read_window`, the JSON object rendered and hashed), the idle daemon's memory,
//! and the CPU time of `--once --dry-run` against a local fixture server. Both paths must
//! render the very object worked out from the synthetic counters (same MD5), or the bench fails.
//!
//! Each measurement runs in a fresh child process, so its peak RSS (VmHWM) is its own.
//! Sizes in MB: `CSE_BENCH_MB=10,100,1000` (the default under `cargo bench`; 1 under
//! `cargo test`). The answers have 1000 users x 4 buckets x 8 categories, and as many hours as
//! the size takes. Then one hour of many distinct buckets (10 per user, 6 categories):
//! `CSE_BENCH_BUCKETS=100000,500000` (1000 under `cargo test`), for the memory a bucket costs.
//! Then `watch`'s cost at scale: one poll of a current-hour answer of many buckets (parse, hour
//! totals, the engines' update) and the engines' update alone, `CSE_BENCH_WATCH=50000` (1000
//! under `cargo test`).

use std::io::{BufWriter, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ceph_stats_exporter::format::{self, Format};
use ceph_stats_exporter::jobs::rgw_usage::{self, Settings};
use ceph_stats_exporter::payload::PayloadWriter;
use ceph_stats_exporter::s3::{Addressing, Credentials, Endpoint, S3Client};
use ceph_stats_exporter::secret::Secret;
use ceph_stats_exporter::snapshot::{Snapshot, SnapshotData};
use ceph_stats_exporter::synth::Shape;
use ceph_stats_exporter::usage::{self, UsageReport};
use ceph_stats_exporter::watch::sources::{Data, SourceId, Update};
use ceph_stats_exporter::watch::usage::{hour_figures, UsageTotals};
use ceph_stats_exporter::watch::view::{Model, Setup};
use ceph_stats_exporter::window::Window;
use ceph_stats_exporter::window::WindowLength;

const USERS: usize = 1000;
const BUCKETS: usize = 4;
const CATEGORIES: usize = 8;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--measure-watch") {
        measure_watch(&args[i + 1], args[i + 2].parse().expect("a number"));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--measure") {
        measure(&args[i + 1], shape_from(&args[i + 2..]));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--measure-socket") {
        let port = args[i + 1].parse().expect("a port");
        let size = args[i + 2].parse().expect("a size");
        measure_socket(port, size, shape_from(&args[i + 3..]));
        return;
    }
    println!("machine: {} cores, {}", cores(), cpu_model());
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, unoptimized: there
    // a 1 MB answer checks that every step works without taking minutes.
    let bench = args.iter().any(|a| a == "--bench");
    let list = |var: &str, default: &str| -> Vec<u64> {
        std::env::var(var)
            .unwrap_or_else(|_| default.into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    };
    for mb in list("CSE_BENCH_MB", if bench { "10,100,1000" } else { "1" }) {
        let shape = Shape::sized(mb * 1_000_000, USERS, BUCKETS, CATEGORIES);
        let (bytes, report) = run_child(shape);
        print!(
            "{:>5} MB answer ({bytes} bytes, {} hours): {report}",
            mb, shape.hours
        );
        let socket = socket_child(shape);
        print!("{mb:>5} MB answer, socket to object: {socket}");
        // The object both paths rendered must be the one the counters make.
        let want = format!("(MD5 {})", rendered(shape.report()).content_md5());
        for line in [&report, &socket] {
            assert!(line.contains(&want), "{want} expected: {line}");
        }
    }
    let mut peaks = vec![];
    for n in list(
        "CSE_BENCH_BUCKETS",
        if bench { "100000,500000" } else { "1000" },
    ) {
        let shape = Shape {
            hours: 1,
            ..Shape::sized(0, (n as usize).div_ceil(10), 10, 6)
        };
        let (bytes, report) = run_child(shape);
        print!("{n:>7} buckets, one hour ({bytes} bytes): {report}");
        peaks.push((n, peak_mib(&report)));
    }
    if let [(n0, m0), .., (n1, m1)] = peaks[..] {
        println!(
            "memory per bucket (parse and JSON render, between {n0} and {n1}): {:.0} bytes",
            (m1 - m0) * 1024.0 * 1024.0 / (n1 - n0) as f64
        );
    }
    for n in list("CSE_BENCH_WATCH", if bench { "50000" } else { "1000" }) {
        watch_poll(n as usize);
    }
    idle_daemon();
    once_dry_run();
}

/// One hour of `n` buckets (10 per user, 6 categories), as `watch` reads the current hour.
fn watch_shape(n: usize) -> Shape {
    Shape {
        hours: 1,
        ..Shape::sized(0, n.div_ceil(10), 10, 6)
    }
}

/// `watch`'s polls of an answer of `n` buckets, in a fresh child.
fn watch_poll(n: usize) {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let bytes = watch_shape(n)
        .write(BufWriter::with_capacity(1 << 20, file.as_file()))
        .expect("writing the answer");
    let report = in_child(&[
        "--measure-watch".into(),
        file.path().into(),
        n.to_string().into(),
    ]);
    print!("watch, {n} buckets ({bytes} bytes): {report}");
}

/// In the child: two polls as `watch` makes them (the answer parsed as it streams, summed per
/// bucket, stitched into totals, applied to the user and bucket engines), then the engines'
/// update alone with every counter moved; CPU time of each and the peak RSS.
fn measure_watch(path: &str, n: usize) {
    let shape = watch_shape(n);
    let start = chrono::DateTime::from_timestamp(shape.start_epoch, 0).expect("epoch");
    let window = Window {
        start,
        end: start + chrono::TimeDelta::hours(1),
    };
    let t0 = Instant::now();
    let mut model = Model::new(
        Setup {
            usage_lag: 30.0,
            prometheus_refresh: 15.0,
            notes: Default::default(),
        },
        t0,
    );
    let mut totals = UsageTotals::default();
    let mut read = || {
        let file = std::fs::File::open(path).expect("answer");
        let report = usage::parse_reader(file, window, true, usage::DEFAULT_MAX_BUCKETS)
            .expect("the synthetic answer parses");
        totals.update(vec![(start, hour_figures(report))])
    };
    // A poll as watch makes it: read, then applied.
    let mut poll = |at: Duration, (users, buckets)| {
        model.apply(update(t0 + at, Data::Usage { users, buckets }));
    };
    let cpu = |f: &mut dyn FnMut()| {
        let cpu0 = cpu_seconds();
        f();
        cpu_seconds() - cpu0
    };
    // Five polls, as watch makes them: the peak is that of a watch that has run a while.
    let mut answer = None;
    let mut polls = vec![];
    for i in 1..=5 {
        let read = cpu(&mut || answer = Some(read()));
        let apply = cpu(&mut || poll(Duration::from_secs(5 * i), answer.take().expect("read")));
        polls.push((read, apply));
    }
    let ((read1, apply1), (read5, apply5)) = (polls[0], polls[4]);
    // Every counter moved: the engines' change path for each series.
    let (users, buckets) = read();
    let moved = |v: [f64; 3]| v.map(|x| x + 1000.0);
    let series = users.len() + buckets.len();
    let cpu0 = cpu_seconds();
    model.apply(update(
        t0 + Duration::from_secs(30),
        Data::Usage {
            users: users.into_iter().map(|(k, v)| (k, moved(v))).collect(),
            buckets: buckets.into_iter().map(|(k, v)| (k, moved(v))).collect(),
        },
    ));
    let engines = cpu_seconds() - cpu0;
    assert_eq!(model.buckets.engine.len(), n);
    println!(
        "a poll {:.0} ms CPU (read {:.0} + engines {:.0} ms; the first {:.0} + {:.0} ms); \
         engines' update of {series} series, every counter moved: {:.1} ms CPU; peak RSS over \
         6 polls {:.1} MiB",
        (read5 + apply5) * 1000.0,
        read5 * 1000.0,
        apply5 * 1000.0,
        read1 * 1000.0,
        apply1 * 1000.0,
        engines * 1000.0,
        vm_hwm_kib() as f64 / 1024.0
    );
}

fn update(at: Instant, data: Data) -> Update {
    Update {
        source: SourceId::Usage,
        at,
        time: chrono::Utc::now(),
        result: Ok(data),
    }
}

/// A shape as a child's arguments (see [`shape_from`]).
fn shape_args(shape: Shape) -> [std::ffi::OsString; 4] {
    [
        shape.hours,
        shape.users,
        shape.buckets_per_user,
        shape.categories,
    ]
    .map(|n| n.to_string().into())
}

/// The shape a child was given by [`shape_args`].
fn shape_from(args: &[String]) -> Shape {
    let number = |k: usize| args[k].parse().expect("a number");
    Shape {
        hours: number(0),
        users: number(1),
        buckets_per_user: number(2),
        categories: number(3),
        ..Shape::sized(0, 1, 1, 1)
    }
}

/// Writes an answer of `shape` and measures it in a fresh child; returns its size and the
/// child's report line.
fn run_child(shape: Shape) -> (u64, String) {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let bytes = shape
        .write(BufWriter::with_capacity(1 << 20, file.as_file()))
        .expect("writing the answer");
    let mut args = vec!["--measure".into(), file.path().into()];
    args.extend(shape_args(shape));
    (bytes, in_child(&args))
}

/// Serves an answer of `shape` from a local HTTP server (from memory, generated once: the
/// server's own cost stays out of the figures) to a fresh child that reads it as the exporter
/// does; returns the child's report line.
fn socket_child(shape: Shape) -> String {
    let mut answer = Vec::new();
    shape.write(&mut answer).expect("writing the answer");
    let size = answer.len();
    let port = serve(Arc::new(answer));
    let mut args = vec![
        "--measure-socket".into(),
        port.to_string().into(),
        size.to_string().into(),
    ];
    args.extend(shape_args(shape));
    in_child(&args)
}

/// A local HTTP server on 127.0.0.1 answering every request with `body` (200, sized), from a
/// thread; returns its port.
fn serve(body: Arc<Vec<u8>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            // The request head; these clients send no body.
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    port
}

/// A usage report rendered as the exporter renders it (JSON, into its payload: a temporary
/// file at these sizes), its MD5 taken as it is written.
fn rendered(report: UsageReport) -> ceph_stats_exporter::payload::Payload {
    let window = report.window;
    let snapshot = Snapshot {
        job: "rgw_usage".into(),
        labels: Default::default(),
        fire_time: window.end,
        collected_at: window.end,
        cluster_fsid: None,
        data: SnapshotData::Usage(report),
    };
    let mut body = PayloadWriter::new();
    format::render_to(&snapshot, Format::Json, chrono_tz::Tz::UTC, &mut body)
        .expect("output written");
    body.finish().expect("output written")
}

/// In the child: the exporter's path from the socket to the object (the signed admin GET,
/// `read_window` parsing the answer as it streams in, the JSON object rendered and hashed) on
/// the runtime the daemon runs; CPU time of all its threads, wall time, peak RSS.
fn measure_socket(port: u16, size: u64, shape: Shape) {
    let endpoint = Endpoint {
        url: format!("http://127.0.0.1:{port}/").parse().expect("URL"),
        credentials: Credentials {
            access_key: "A".into(),
            secret_key: Secret::new("S"),
        },
        addressing: Addressing::Path,
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(600),
        max_response_bytes: size,
        retry: Default::default(),
        signing: Default::default(),
    };
    let settings = Settings {
        window: WindowLength::Hours(1),
        time_zone: chrono_tz::Tz::UTC,
        settle: Duration::ZERO,
        catch_up_limit: 1,
        show_entries: true,
        max_buckets: usage::DEFAULT_MAX_BUCKETS,
        uid: None,
        rgw: endpoint.clone(),
        trim: None,
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let admin = S3Client::new(&endpoint).expect("client");
    let report = runtime
        .block_on(rgw_usage::read_window(&admin, &settings, shape.window()))
        .expect("the synthetic answer is read");
    let body = rendered(report);
    let md5 = body.content_md5();
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let mb = size as f64 / 1e6;
    println!(
        "{cpu:.2} s CPU = {:.0} MB/s ({wall:.2} s wall = {:.0} MB/s); peak RSS {:.1} MiB; \
         object {} KiB (MD5 {md5})",
        mb / cpu,
        mb / wall,
        vm_hwm_kib() as f64 / 1024.0,
        body.len() / 1024
    );
}

/// Runs this bench again with `args`, in a fresh process; returns what it printed.
fn in_child(args: &[std::ffi::OsString]) -> String {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .args(args)
        .output()
        .expect("the measuring child runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The MiB figure after "peak RSS" in a child's report.
fn peak_mib(report: &str) -> f64 {
    report
        .split("peak RSS ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the report gives a peak RSS")
}

/// In the child: parse, aggregate, render, hash; report time, throughput and peak RSS.
fn measure(path: &str, shape: Shape) {
    let size = std::fs::metadata(path).expect("answer").len();
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let file = std::fs::File::open(path).expect("answer");
    let report = usage::parse_reader(file, shape.window(), true, usize::MAX)
        .expect("the synthetic answer parses");
    let parsed = cpu_seconds() - cpu0;
    let body = rendered(report);
    let md5 = body.content_md5();
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let mb = size as f64 / 1e6;
    println!(
        "parse + aggregate {:.2} s CPU = {:.0} MB/s; with the JSON object rendered and hashed \
         {:.2} s CPU = {:.0} MB/s ({:.2} s wall); peak RSS {:.1} MiB; object {} KiB (MD5 {md5})",
        parsed,
        mb / parsed,
        cpu,
        mb / cpu,
        wall,
        vm_hwm_kib() as f64 / 1024.0,
        body.len() / 1024
    );
}

/// The daemon with nothing due: its resident memory after start-up.
fn idle_daemon() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[s3]\nendpoint = \"http://127.0.0.1:9\"\naccess_key = \"A\"\nsecret_key = \"S\"\n\
         [jobs.pool_df]\nschedule = \"0 0 0 1 1 *\"\n",
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ceph-stats-exporter"))
        .arg("--config")
        .arg(&config)
        .env("STATE_DIRECTORY", dir.path().join("state"))
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon");
    std::thread::sleep(Duration::from_secs(3));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let running = child.try_wait().map(|s| s.is_none()).unwrap_or(false);
    let _ = child.kill();
    let _ = child.wait();
    assert!(running, "the idle daemon exited");
    let rss = status_kib(&status, "VmRSS:");
    println!("idle daemon: RSS {:.1} MiB", rss as f64 / 1024.0);
}

/// `--once --dry-run` of the usage job against a local server answering a captured answer:
/// the child's CPU time (user + system), which excludes waiting on the network.
fn once_dry_run() {
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/admin-usage-all.json"
    ))
    .expect("fixture");
    let port = serve(Arc::new(fixture));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[s3]\nendpoint = \"http://127.0.0.1:{port}\"\naccess_key = \"A\"\nsecret_key = \"S\"\n\
             [jobs.rgw_usage]\nschedule = \"0 5 * * * *\"\n"
        ),
    )
    .expect("config");
    let mut best = f64::MAX;
    for _ in 0..5 {
        let before = children_cpu_seconds();
        let out = Command::new(env!("CARGO_BIN_EXE_ceph-stats-exporter"))
            .args([
                "--once",
                "--dry-run",
                "--from",
                "2026-11-22T17:00:00Z",
                "--to",
                "2026-11-22T18:00:00Z",
                "--config",
            ])
            .arg(&config)
            .output()
            .expect("--once");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        best = best.min(children_cpu_seconds() - before);
    }
    println!(
        "--once --dry-run (usage job, local fixture server): {:.1} ms CPU (best of 5)",
        best * 1000.0
    );
}

fn rusage_seconds(who: i32) -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_SELF)
}

fn children_cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_CHILDREN)
}

fn status_kib(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn vm_hwm_kib() -> u64 {
    status_kib(
        &std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
        "VmHWM:",
    )
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(|| "unknown CPU".into(), |m| m.trim().to_string())
}
