//! `watch` against the real loopback cluster (dev/test.sh starts it), used as a person would:
//! in tmux, reading the screen while one user's traffic rises and stops; and its JSON lines
//! against the bytes a traffic generator sent. `#[ignore]`d like every real-cluster test.
//!
//! Usage numbers are cluster-wide and other tests may run alongside: the checks look at this
//! test's own bucket, and at the user's row only for what that bucket already proves.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use support::cluster::*;

/// The dev cluster writes its usage log every second (dev/ceph/start.sh).
const USAGE_LAG: &str = "1s";
const INTERVAL: &str = "2s";
/// A pool only this test writes to (RGW's data pool also gets other tests' traffic), created
/// when missing and left, empty, for the next run.
const POOL: &str = "watch-test";

fn tag() -> String {
    Utc::now().format("%H%M%S%f").to_string()
}

fn watch_config(dir: &Path) -> PathBuf {
    let jobs = format!(
        "{}{}",
        pool_df_job("watch/pool.%Y-%m-%d/%H/%M/%S", "text", ""),
        usage_job("watch/usage.%Y-%m-%d/%H/%M/%S", "text", "")
    );
    config(dir, &jobs)
}

fn create_bucket(bucket: &str) {
    let out = s3(Some(&alice()), "PUT", &format!("/{bucket}"), None);
    assert!(out.status.success(), "create {bucket}: {}", stdout(&out));
}

/// PUTs (and, with `get`, GETs back) one object as alice, `size(elapsed)` bytes each time,
/// for `seconds`; returns the bytes PUT and when the first request began and the last ended.
fn traffic(
    bucket: &str,
    seconds: u64,
    get: bool,
    size: impl Fn(Duration) -> usize,
) -> (u64, Instant, Instant) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let (start, mut sent) = (Instant::now(), 0u64);
    while start.elapsed() < Duration::from_secs(seconds) {
        let n = size(start.elapsed());
        std::fs::write(&body, vec![b'w'; n]).unwrap();
        let key = format!("/{bucket}/object");
        let out = s3(Some(&alice()), "PUT", &key, Some(&body));
        assert!(out.status.success(), "PUT: {}", stdout(&out));
        sent += n as u64;
        if get {
            let out = s3(Some(&alice()), "GET", &key, None);
            assert!(out.status.success(), "GET: {}", stderr(&out));
        }
    }
    (sent, start, Instant::now())
}

fn create_pool() {
    // Both answer 0 when it is done already.
    run_ok(Command::new("ceph").args(["osd", "pool", "create", POOL, "8", "8"]));
    run_ok(Command::new("ceph").args(["osd", "pool", "application", "enable", POOL, "rados"]));
}

/// Writes one RADOS object into [`POOL`] again and again for `seconds`, `size(elapsed)` bytes
/// each time (overwritten: the pool never holds more than one), then removes it.
fn pool_traffic(seconds: u64, size: impl Fn(Duration) -> usize) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        std::fs::write(&body, vec![b'r'; size(start.elapsed())]).unwrap();
        run_ok(
            Command::new("rados")
                .args(["-p", POOL, "put", "object"])
                .arg(&body),
        );
    }
    run_ok(Command::new("rados").args(["-p", POOL, "rm", "object"]));
}

fn delete_bucket(bucket: &str) {
    let _ = s3(Some(&alice()), "DELETE", &format!("/{bucket}/object"), None);
    let _ = s3(Some(&alice()), "DELETE", &format!("/{bucket}"), None);
}

/// A tmux server of the test's own (its own socket), with one 80x24 window.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(dir: &Path, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
        };
        let out = tmux
            .cmd()
            .args(["new-session", "-d", "-s", "watch", "-x", "80", "-y", "24"])
            .arg(command)
            .output()
            .expect("tmux runs (dev/test.sh installs it)");
        assert!(out.status.success(), "tmux: {}", stderr(&out));
        tmux
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        // -u: the pane speaks UTF-8 (arrows, sparklines), whatever the locale of the test.
        cmd.arg("-u").arg("-S").arg(&self.socket);
        cmd
    }

    fn keys(&self, keys: &[&str]) {
        run_ok(self.cmd().args(["send-keys", "-t", "watch"]).args(keys));
        thread::sleep(Duration::from_millis(300));
    }

    fn screen(&self) -> String {
        run_ok(self.cmd().args(["capture-pane", "-p", "-t", "watch"]))
    }

    /// The pane's screen once `ready` holds, within `seconds`.
    fn wait_for(&self, seconds: u64, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "never came:\n{screen}");
            thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

/// A row of a pane: its rates (as numbers) and its trend cell.
#[derive(Debug)]
struct Row {
    rates: Vec<f64>,
    trend: String,
}

/// The row whose name is `name` on `screen`, with `n` rate columns.
fn row(screen: &str, name: &str, n: usize) -> Option<Row> {
    let line = screen
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))?;
    let cells: Vec<&str> = line.split_whitespace().collect();
    Some(Row {
        rates: cells.get(1..=n)?.iter().map(|c| rate_value(c)).collect(),
        trend: cells.get(n + 1)?.to_string(),
    })
}

/// `1.43Mi`, `12.5k`, `0` as a number.
fn rate_value(cell: &str) -> f64 {
    let split = cell
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(cell.len());
    let (number, prefix) = cell.split_at(split);
    let scale = match prefix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "k" => 1e3,
        "M" => 1e6,
        other => panic!("unknown prefix {other:?} in {cell:?}"),
    };
    number.parse::<f64>().expect("a rate") * scale
}

/// What one watched row did: rose with traffic, then fell, then went idle.
#[derive(Debug, Default)]
struct Seen {
    rose: bool,
    peak: f64,
    fell: bool,
    idle: bool,
}

impl Seen {
    /// During the traffic: non-zero rates and ↑. The screen is logged when first seen.
    fn during(&mut self, screen: &str, name: &str, n: usize, main: usize) {
        if let Some(r) = row(screen, name, n) {
            self.peak = self.peak.max(r.rates[main]);
            if !self.rose && r.trend == "↑" && r.rates.iter().any(|x| *x > 0.0) {
                self.rose = true;
                eprintln!("{name} rose:\n{screen}");
            }
        }
    }

    /// After it: ↓ with a rate below the peak, then idle.
    fn after(&mut self, screen: &str, name: &str, n: usize, main: usize) {
        if let Some(r) = row(screen, name, n) {
            if !self.fell && r.trend == "↓" && r.rates[main] < self.peak {
                self.fell = true;
                eprintln!("{name} fell:\n{screen}");
            }
            if self.fell && !self.idle && r.trend == "idle" && r.rates.iter().all(|x| *x == 0.0) {
                self.idle = true;
                eprintln!("{name} went idle:\n{screen}");
            }
        }
    }
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn watch_in_tmux_shows_a_users_traffic_rise_fall_and_go_idle() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = watch_config(dir.path());
    let bucket = format!("watch-{}", tag());
    create_bucket(&bucket);
    create_pool();
    let command = format!(
        "STATE_DIRECTORY={state} {exe} --config {cfg} watch --interval {INTERVAL} \
         --usage-lag {USAGE_LAG}; echo exited=$?; sleep 60",
        state = state_dir(&cfg).display(),
        exe = env!("CARGO_BIN_EXE_ceph-stats-exporter"),
        cfg = cfg.display(),
    );
    let tmux = Tmux::start(dir.path(), &command);
    tmux.wait_for(30, |s| s.contains(" 1 Pools ") && s.contains("updated"));
    // The buckets pane, filtered to this test's bucket as a person would type it.
    tmux.keys(&["4", "/"]);
    tmux.keys(&[&bucket, "Enter"]);
    let bucket_row = format!("alice/{bucket}");
    tmux.wait_for(30, |s| s.contains(&bucket_row) && s.contains("1 matching"));

    // 25 s of PUTs and GETs as alice, and of writes into the test's pool, each growing from
    // 256 KiB to 3 MiB.
    let growing = |t: Duration| (256 << 10) + (t.as_millis() as usize * (2816 << 10) / 25_000);
    let generator = {
        let bucket = bucket.clone();
        thread::spawn(move || traffic(&bucket, 25, true, growing))
    };
    let pool_generator = thread::spawn(move || pool_traffic(25, growing));
    let (mut user, mut own, mut pool) = (Seen::default(), Seen::default(), Seen::default());
    let look = |key: &str| {
        tmux.keys(&[key]);
        tmux.screen()
    };
    while !generator.is_finished() {
        user.during(&look("3"), "alice", 3, 2);
        own.during(&look("4"), &bucket_row, 3, 2);
        pool.during(&look("1"), POOL, 5, 1);
    }
    let (sent, ..) = generator.join().unwrap();
    pool_generator.join().unwrap();
    let screens = format!("{}\n{}", look("4"), look("3"));
    assert!(sent > 0);
    assert!(own.rose, "the bucket's row never rose: {own:?}\n{screens}");
    assert!(user.rose, "the user's row never rose: {user:?}\n{screens}");
    assert!(
        pool.rose,
        "the data pool's row never rose: {pool:?}\n{}",
        look("1")
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    while !(own.idle && user.idle && pool.idle) && Instant::now() < deadline {
        own.after(&look("4"), &bucket_row, 3, 2);
        user.after(&look("3"), "alice", 3, 2);
        pool.after(&look("1"), POOL, 5, 1);
    }
    assert!(own.fell && own.idle, "bucket: {own:?}\n{}", look("4"));
    assert!(user.fell && user.idle, "user: {user:?}\n{}", look("3"));
    assert!(pool.fell && pool.idle, "pool: {pool:?}\n{}", look("1"));

    // q quits, and the terminal is the shell's again (the view's screen is gone).
    tmux.keys(&["q"]);
    let screen = tmux.wait_for(10, |s| s.contains("exited="));
    assert!(screen.contains("exited=0"), "{screen}");
    assert!(
        !screen.contains("1 Pools"),
        "the view was left on screen:\n{screen}"
    );
    delete_bucket(&bucket);
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn jsonl_rates_of_a_bucket_add_up_to_the_bytes_sent() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = watch_config(dir.path());
    let bucket = format!("watch-j-{}", tag());
    create_bucket(&bucket);
    let mut child = exporter_cmd(
        &cfg,
        &[
            "watch",
            "--output",
            "jsonl",
            "--interval",
            INTERVAL,
            "--usage-lag",
            USAGE_LAG,
            "--count",
            "20",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("watch runs");
    let lines = {
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .map(|l| serde_json::from_str::<Value>(&l.unwrap()).expect("a JSON line"))
                .collect::<Vec<_>>()
        })
    };
    // Two polls first, so the bucket is known before its traffic starts.
    thread::sleep(Duration::from_secs(4));
    let started = Utc::now();
    let (sent, from, to) = traffic(&bucket, 20, false, |_| 512 << 10);
    let ended = Utc::now();
    let status = child.wait().unwrap();
    let lines = lines.join().unwrap();
    assert!(status.success());

    // (seconds since the traffic began, bytes received per second) at each poll of the bucket.
    let series = |pane: &str, name: (&str, &str)| -> Vec<(f64, f64)> {
        lines
            .iter()
            .filter(|l| l["pane"] == pane && l[name.0] == name.1)
            .map(|l| {
                let time: chrono::DateTime<Utc> = l["time"].as_str().unwrap().parse().unwrap();
                let at = (time - started).as_seconds_f64();
                (at, l["bytes_received_per_sec"].as_f64().unwrap())
            })
            .collect()
    };
    let own = series("buckets", ("bucket", &bucket));
    let user = series("users", ("user", "alice"));
    assert!(own.len() >= 15, "{own:?}");
    // Each rate holds from its poll back to the previous one.
    let integral = |s: &[(f64, f64)]| {
        s.windows(2)
            .map(|w| w[1].1 * (w[1].0 - w[0].0))
            .sum::<f64>()
    };
    let seconds = (to - from).as_secs_f64();
    let rate = sent as f64 / seconds;
    let (lag, interval) = (1.0, 2.0);
    // Each change's rate times its poll's gap is that change: the sum is every write, all of
    // them in by the last poll (8 polls after the traffic), give or take one write.
    let tolerance = rate * lag;
    let got = integral(&own);
    assert!(
        (got - sent as f64).abs() <= tolerance,
        "rates x gaps {got:.0} bytes, sent {sent} (+/- {tolerance:.0}): {own:?}"
    );
    // While the traffic flowed (from a write and a poll after it began until it ended), the
    // rate shown is the generator's bytes over its time, within that much traffic spread over
    // the polls averaged.
    let during: Vec<f64> = own
        .iter()
        .filter(|(at, _)| *at > lag + interval && *at <= (ended - started).as_seconds_f64())
        .map(|(_, r)| *r)
        .collect();
    assert!(during.len() >= 6, "{own:?}");
    let mean = during.iter().sum::<f64>() / during.len() as f64;
    let tolerance = rate * (lag + interval) / (during.len() as f64 * interval);
    assert!(
        (mean - rate).abs() <= tolerance,
        "mean {mean:.0} B/s while sending {rate:.0} B/s (+/- {tolerance:.0}): {own:?}"
    );
    // The user's row has this bucket's traffic, and whatever else alice did meanwhile.
    assert!(integral(&user) >= got * 0.99, "{user:?}");
    delete_bucket(&bucket);
}
