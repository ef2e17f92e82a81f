//! Helpers shared by the tests against the real loopback cluster (tests/cluster.rs,
//! tests/resilience.rs): its environment, an independent S3 client (dev/s3v2.sh), configs, and
//! the truth according to `ceph` and `radosgw-admin`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

/// Usage numbers are cluster-wide: tests that read or make traffic must not interleave.
static CLUSTER: Mutex<()> = Mutex::new(());

pub fn lock() -> std::sync::MutexGuard<'static, ()> {
    CLUSTER.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run these tests through dev/test.sh (it starts the cluster)")
    })
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A prefix no other run has used, so tests can list exactly their own objects.
pub fn nonce(test: &str) -> String {
    format!("it-{test}-{}", Utc::now().format("%Y%m%dT%H%M%S%.6f"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command and returns its stdout, failing the test with its stderr if it fails.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", stderr(&out));
    stdout(&out)
}

/// A user of the dev cluster, as dev/test.sh creates them.
pub struct User {
    pub access: &'static str,
    pub secret: String,
}

pub fn alice() -> User {
    User {
        access: "ALICEACCESSKEY000001",
        secret: "alice-secret-key-for-tests-only".into(),
    }
}

pub fn bob() -> User {
    User {
        access: "BOBACCESSKEY00000001",
        secret: "bob-secret-key-for-tests-only".into(),
    }
}

/// One request through the independent client; `path` as sent (percent-encoded). Without a
/// user, the exporter's own keys.
pub fn s3(user: Option<&User>, method: &str, path: &str, body: Option<&Path>) -> Output {
    s3_cmd(user, method, path, body)
        .output()
        .expect("dev/s3v2.sh runs")
}

/// [`s3`] as a command, to send elsewhere (`RGW_ENDPOINT`) before it runs.
pub fn s3_cmd(user: Option<&User>, method: &str, path: &str, body: Option<&Path>) -> Command {
    let mut cmd = Command::new(repo().join("dev/s3v2.sh"));
    cmd.args([method, path]);
    if let Some(b) = body {
        cmd.arg(b);
    }
    if let Some(user) = user {
        cmd.env("S3V2_ACCESS", user.access)
            .env("S3V2_SECRET", &user.secret);
    }
    cmd
}

pub fn get_object(key_path: &str) -> Vec<u8> {
    let out = s3(
        None,
        "GET",
        &format!("/{}/{key_path}", env("RGW_BUCKET")),
        None,
    );
    assert!(out.status.success(), "GET {key_path}: {}", stdout(&out));
    out.stdout
}

/// Keys in the bucket under a prefix, in order.
pub fn list_keys(prefix: &str) -> Vec<String> {
    let out = s3(
        None,
        "GET",
        &format!("/{}?prefix={prefix}&max-keys=1000", env("RGW_BUCKET")),
        None,
    );
    assert!(out.status.success(), "list: {}", stdout(&out));
    let xml = stdout(&out);
    xml.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// A config for the dev cluster; `jobs` is appended verbatim.
pub fn config(dir: &Path, jobs: &str) -> PathBuf {
    write_config(dir, &env("RGW_BUCKET"), "", "", jobs)
}

pub fn config_with_bucket(dir: &Path, bucket: &str, jobs: &str) -> PathBuf {
    write_config(dir, bucket, "", "", jobs)
}

/// A config for the dev cluster: extra keys for `[exporter]` and `[s3]`, then `jobs` verbatim.
pub fn write_config(dir: &Path, bucket: &str, exporter: &str, s3: &str, jobs: &str) -> PathBuf {
    let text = format!(
        r#"
[exporter]
{exporter}

[s3]
endpoint = "{endpoint}"
bucket = "{bucket}"
access_key = {{ env = "EXPORTER_ACCESS_KEY" }}
secret_key = {{ env = "EXPORTER_SECRET_KEY" }}
timeout = "20s"
{s3}

{jobs}
"#,
        endpoint = env("RGW_ENDPOINT"),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn pool_df_job(key: &str, format: &str, extra: &str) -> String {
    pool_df_job_every("10s", key, format, extra)
}

pub fn pool_df_job_every(every: &str, key: &str, format: &str, extra: &str) -> String {
    format!(
        r#"
[jobs.pool_df]
every = "{every}"
key = "{key}"
format = "{format}"
{extra}
[jobs.pool_df.source]
type = "command"
conf = "{conf}"
timeout = "20s"
"#,
        conf = env("CEPH_CONF")
    )
}

pub fn usage_job(key: &str, format: &str, extra: &str) -> String {
    usage_job_at("every = \"10s\"", key, format, extra)
}

/// `when` is the schedule line: `every = "..."` or `schedule = "..."`.
pub fn usage_job_at(when: &str, key: &str, format: &str, extra: &str) -> String {
    format!(
        r#"
[jobs.rgw_usage]
{when}
key = "{key}"
format = "{format}"
{extra}
"#
    )
}

pub fn exporter(config: &Path, args: &[&str]) -> Output {
    exporter_cmd(config, args)
        .output()
        .expect("the exporter binary runs")
}

/// The exporter on `config`, keeping its state (spool, job state) beside the config file.
pub fn exporter_cmd(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ceph-stats-exporter"));
    cmd.arg("--config").arg(config).args(args);
    cmd.env("STATE_DIRECTORY", state_dir(config));
    cmd
}

pub fn state_dir(config: &Path) -> PathBuf {
    config
        .parent()
        .expect("config in a directory")
        .join("state")
}

pub fn ceph_json(args: &[&str]) -> Value {
    let out = run_ok(Command::new("ceph").args(args).args(["-f", "json"]));
    serde_json::from_str(&out).expect("ceph prints JSON")
}

/// (name, kb, kb_avail, kb_used) of every CRUSH root, as `ceph osd df tree` says now.
pub fn ceph_roots() -> Vec<(String, u64, u64, u64)> {
    let tree = ceph_json(&["osd", "df", "tree"]);
    tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "root")
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["kb"].as_u64().unwrap(),
                n["kb_avail"].as_u64().unwrap(),
                n["kb_used"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// S3 traffic as alice and bob: buckets, puts, gets, a list, a delete and a 404.
pub fn make_traffic(tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    let big = dir.path().join("big");
    std::fs::write(&small, b"hello usage log").unwrap();
    std::fs::write(&big, vec![7u8; 300 * 1024]).unwrap();
    for (user, name) in [(alice(), "alice"), (bob(), "bob")] {
        let bucket = format!("/{name}-{tag}");
        let ok =
            |o: Output, what: &str| assert!(o.status.success(), "{name} {what}: {}", stdout(&o));
        ok(s3(Some(&user), "PUT", &bucket, None), "create bucket");
        ok(
            s3(Some(&user), "PUT", &format!("{bucket}/a.txt"), Some(&small)),
            "put a",
        );
        ok(
            s3(
                Some(&user),
                "PUT",
                &format!("{bucket}/dir/b%20c.bin"),
                Some(&big),
            ),
            "put b",
        );
        ok(
            s3(Some(&user), "GET", &format!("{bucket}/a.txt"), None),
            "get a",
        );
        ok(s3(Some(&user), "GET", &bucket, None), "list");
        ok(
            s3(Some(&user), "DELETE", &format!("{bucket}/a.txt"), None),
            "delete a",
        );
        assert!(!s3(Some(&user), "GET", &format!("{bucket}/missing"), None)
            .status
            .success());
    }
}

/// `radosgw-admin usage show` for a window, once RGW has flushed (two equal reads in a row).
pub fn settled_usage(start: &str, end: &str) -> Value {
    settled(|| {
        ceph_like_json(Command::new("radosgw-admin").args([
            "usage",
            "show",
            &format!("--start-date={start}"),
            &format!("--end-date={end}"),
            "--show-log-entries=true",
        ]))
    })
}

/// What `read` returns once two reads 2.5 s apart agree (RGW has flushed its usage log).
pub fn settled(read: impl Fn() -> Value) -> Value {
    let mut last = read();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        std::thread::sleep(Duration::from_millis(2500));
        let now = read();
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "usage log never settled");
        last = now;
    }
}

pub fn ceph_like_json(cmd: &mut Command) -> Value {
    serde_json::from_str(&run_ok(cmd)).expect("JSON")
}

pub fn counters(v: &Value) -> [u64; 4] {
    ["ops", "successful_ops", "bytes_sent", "bytes_received"].map(|k| v[k].as_u64().unwrap())
}
