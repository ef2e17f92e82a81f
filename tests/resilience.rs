//! Faults injected into the real loopback cluster (run by dev/test.sh, like tests/cluster.rs):
//! RGW stopped under a running daemon, the exporter killed with SIGKILL, the mgr restarted,
//! the exporter down across usage windows, two exporters side by side. What the exporter
//! promises: everything collected arrives, byte for byte, once, in order; no zero capacity is
//! archived; missed usage windows are delivered late with the keys they would have had.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, DurationRound, NaiveDateTime, TimeDelta, Utc};
use serde_json::Value;

use support::cluster::*;

/// `dev/ceph/daemon.sh NAME ACTION` (stop, start, restart one daemon of the cluster).
fn daemon(name: &str, action: &str) {
    run_ok(Command::new(repo().join("dev/ceph/daemon.sh")).args([name, action]));
}

/// Starts RGW again even when a test fails half-way, so later tests find it running.
struct RgwBack;

impl Drop for RgwBack {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("dev/ceph/daemon.sh"))
            .args(["rgw", "start"])
            .output();
    }
}

fn spawn_daemon(config: &Path) -> Child {
    exporter_cmd(config, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the exporter starts")
}

/// SIGTERM, then the daemon's exit status must be 0; returns its log.
fn stop_daemon(child: Child) -> String {
    run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    let log = stderr(&out);
    assert!(out.status.success(), "exit after SIGTERM: {log}");
    assert!(!log.contains("panicked"), "{log}");
    log
}

/// Fast failure and fast draining, so outages show within seconds.
const IMPATIENT_S3: &str = "retries = 0\nconnect_timeout = \"1s\"";
const QUICK_FLUSH: &str = "flush_interval = \"1s\"";

/// Capacity every 5 seconds under `prefix`, failing fast and draining the spool every second.
fn outage_config(dir: &Path, prefix: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &env("RGW_BUCKET"),
        QUICK_FLUSH,
        IMPATIENT_S3,
        &pool_df_job_every(
            "5s",
            &format!("{prefix}/pool.%Y-%m-%d/%H/%M/%S"),
            "text",
            "",
        ),
    )
}

/// The 5-second instants strictly inside (from, to), as keys render them.
fn fires_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<String> {
    let mut t = from.duration_trunc(TimeDelta::seconds(5)).unwrap() + TimeDelta::seconds(5);
    let mut out = Vec::new();
    while t + TimeDelta::seconds(2) < to {
        out.push(t.format("%Y-%m-%d/%H/%M/%S").to_string());
        t += TimeDelta::seconds(5);
    }
    out
}

/// Checks a capacity object against the original text format and its own key's fire time.
fn assert_capacity_body(key: &str, body: &[u8]) {
    let body = std::str::from_utf8(body).unwrap_or_else(|_| panic!("{key}: not UTF-8"));
    let stamp = key.rsplit_once("pool.").unwrap().1;
    let fire = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d/%H/%M/%S").unwrap();
    let roots = ceph_roots();
    assert_eq!(body.lines().count(), roots.len(), "{key}: {body}");
    assert!(
        body.ends_with(" kb_used\n"),
        "{key}: every line ends in a newline: {body:?}"
    );
    for (line, (name, ..)) in body.lines().zip(&roots) {
        let rest = line
            .strip_prefix(&format!("{}>{name}:", fire.format("%Y/%m/%d/%H:%M:%S")))
            .unwrap_or_else(|| panic!("{key}: {line}"));
        let nums: Vec<u64> = rest
            .split(' ')
            .step_by(2)
            .map(|n| n.parse().unwrap_or_else(|_| panic!("{key}: {line}")))
            .collect();
        assert_eq!(nums.len(), 3, "{key}: {line}");
        assert!(nums[0] > 0 && nums[1] + nums[2] <= nums[0], "{key}: {line}");
        assert!(rest.ends_with(" kb_used"), "{key}: {line}");
    }
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn an_rgw_outage_under_the_daemon_loses_nothing_and_keeps_the_order() {
    let _l = lock();
    let _rgw_back = RgwBack;
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("outage");
    let cfg = outage_config(dir.path(), &prefix);
    let started = Utc::now();
    let child = spawn_daemon(&cfg);
    std::thread::sleep(Duration::from_secs(7));
    daemon("rgw", "stop");
    std::thread::sleep(Duration::from_secs(16));
    daemon("rgw", "start");
    std::thread::sleep(Duration::from_secs(8));
    let log = stop_daemon(child);
    let stopped = Utc::now();

    assert!(log.contains("spooled, not yet in S3"), "{log}");
    assert!(log.contains("stored from the spool"), "{log}");
    let keys = list_keys(&format!("{prefix}/pool."));
    let want: Vec<String> = fires_between(started, stopped)
        .into_iter()
        .map(|f| format!("{prefix}/pool.{f}"))
        .collect();
    for w in &want {
        assert!(keys.contains(w), "no object for {w}\nkeys: {keys:?}\n{log}");
    }
    assert!(keys.len() <= want.len() + 1, "{keys:?}");
    for key in &keys {
        assert_capacity_body(key, &get_object(key));
    }
    // Uploaded in collection order: LastModified never goes back as the keys' times go on.
    let listing = stdout(&s3(
        None,
        "GET",
        &format!("/{}?prefix={prefix}/", env("RGW_BUCKET")),
        None,
    ));
    let modified: Vec<&str> = listing
        .split("<LastModified>")
        .skip(1)
        .filter_map(|s| s.split("</LastModified>").next())
        .collect();
    assert_eq!(modified.len(), keys.len());
    assert!(modified.windows(2).all(|w| w[0] <= w[1]), "{modified:?}");
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn a_sigkilled_exporter_loses_no_collected_snapshot() {
    let _l = lock();
    let _rgw_back = RgwBack;
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("kill9");
    let cfg = outage_config(dir.path(), &prefix);
    daemon("rgw", "stop");
    let mut child = spawn_daemon(&cfg);
    std::thread::sleep(Duration::from_secs(13));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let spool = state_dir(&cfg).join("spool");
    let spooled = std::fs::read_dir(&spool)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "obj")
        })
        .count();
    assert!(spooled >= 2, "{spooled} objects spooled");

    daemon("rgw", "start");
    let out = exporter(&cfg, &["--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).matches("stored from the spool").count(),
        spooled
    );
    let keys = list_keys(&format!("{prefix}/pool."));
    assert_eq!(keys.len(), spooled + 1, "{keys:?}");
    for key in &keys {
        assert_capacity_body(key, &get_object(key));
    }
    let left = std::fs::read_dir(&spool)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert_eq!(left, 0);
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn a_mgr_restart_never_archives_zero_capacity() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("mgr");
    let cfg = config(
        dir.path(),
        &pool_df_job(&format!("{prefix}/pool.%Y-%m-%dT%H%M%S"), "json", "")
            .replace("timeout = \"20s\"", "timeout = \"4s\""),
    );
    daemon("mgr", "restart");
    let mut failures = Vec::new();
    for _ in 0..12 {
        let out = exporter(&cfg, &["--once"]);
        if !out.status.success() {
            failures.push(stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for f in &failures {
        assert!(
            f.contains("kb = 0") || f.contains("did not finish") || f.contains("failed ("),
            "an unexpected failure: {f}"
        );
    }
    let keys = list_keys(&prefix);
    assert!(
        !keys.is_empty(),
        "no snapshot after the mgr came back: {failures:?}"
    );
    for key in &keys {
        let doc: Value = serde_json::from_slice(&get_object(key)).unwrap();
        for root in doc["roots"].as_array().unwrap() {
            assert!(root["kb"].as_u64().unwrap() > 0, "{key}: {root}");
        }
    }
}

/// A job's state file saying that every window up to `until` was delivered.
fn write_checkpoint(state: &Path, job: &str, until: DateTime<Utc>) {
    std::fs::create_dir_all(state).unwrap();
    let text = format!(
        "{{\"last_fire\":null,\"delivered_until\":\"{}\"}}",
        until.to_rfc3339()
    );
    std::fs::write(state.join(format!("{job}.state.json")), text).unwrap();
}

fn utc_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap()
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn missed_usage_windows_are_delivered_late_once_with_their_own_keys() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("catchup");
    let cfg = config(
        dir.path(),
        &usage_job_at(
            "schedule = \"0 5 * * * *\"",
            &format!("{prefix}/usage.%Y-%m-%d/%H/%M/%S"),
            "json",
            "settle = \"1m\"",
        ),
    );
    // The exporter last delivered the window ending three hours before the current one.
    let now = Utc::now();
    let current_end = utc_hour(now - TimeDelta::minutes(1));
    let until = current_end - TimeDelta::hours(3);
    let state = state_dir(&cfg);
    write_checkpoint(&state, "rgw_usage", until);

    let out = exporter(&cfg, &["--once"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("catching up missed windows"), "{log}");

    // The two missed windows, under the keys their 5-past-the-hour fires would have had.
    for h in 0..2 {
        let start = until + TimeDelta::hours(h);
        let end = start + TimeDelta::hours(1);
        let key = format!(
            "{prefix}/usage.{}",
            (end + TimeDelta::minutes(5)).format("%Y-%m-%d/%H/%M/%S")
        );
        let doc: Value = serde_json::from_slice(&get_object(&key)).unwrap();
        assert_eq!(
            doc["window"]["start"],
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
        let truth = settled_usage(&fmt(start), &fmt(end));
        for s in truth["summary"].as_array().unwrap() {
            let user = s["user"].as_str().unwrap();
            assert_eq!(
                counters(&doc["users"][user]["total"]),
                counters(&s["total"]),
                "{key} {user}"
            );
        }
        assert_eq!(
            doc["users"].as_object().unwrap().len(),
            truth["summary"].as_array().unwrap().len()
        );
    }
    // And the current window under this run's own key: three objects in all.
    assert_eq!(list_keys(&prefix).len(), 3, "{:?}", list_keys(&prefix));
    let saved: Value =
        serde_json::from_slice(&std::fs::read(state.join("rgw_usage.state.json")).unwrap())
            .unwrap();
    assert_eq!(
        saved["delivered_until"],
        current_end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );

    // A second run finds nothing missed: each window was delivered exactly once.
    std::thread::sleep(Duration::from_millis(1100));
    let out = exporter(&cfg, &["--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("catching up"), "{}", stderr(&out));
    assert_eq!(list_keys(&prefix).len(), 4);
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn two_exporters_side_by_side_leave_one_object_per_fire() {
    let _l = lock();
    let prefix = nonce("pair");
    let jobs = format!(
        "{}{}",
        pool_df_job_every(
            "5s",
            &format!("{prefix}/pool.%Y-%m-%d/%H/%M/%S"),
            "text",
            ""
        ),
        usage_job_at(
            "every = \"5s\"",
            &format!("{prefix}/usage.%Y-%m-%d/%H/%M/%S"),
            "json",
            ""
        )
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (cfg_a, cfg_b) = (config(a.path(), &jobs), config(b.path(), &jobs));
    let started = Utc::now();
    let (one, two) = (spawn_daemon(&cfg_a), spawn_daemon(&cfg_b));
    std::thread::sleep(Duration::from_secs(17));
    let logs = [stop_daemon(one), stop_daemon(two)];
    let stopped = Utc::now();
    for log in &logs {
        assert!(!log.contains("ERROR"), "{log}");
    }
    let fires = fires_between(started, stopped);
    for job in ["pool", "usage"] {
        let keys = list_keys(&format!("{prefix}/{job}."));
        for f in &fires {
            assert!(
                keys.contains(&format!("{prefix}/{job}.{f}")),
                "{job} {f}: {keys:?}"
            );
        }
        assert!(keys.len() <= fires.len() + 1, "{job}: {keys:?}");
        // Each instance stored every fire: both wrote each key.
        for log in &logs {
            let stored = log
                .lines()
                .filter(|l| l.contains("stored") && l.contains(&format!("/{job}.")))
                .count();
            assert!(
                stored >= fires.len(),
                "{job}: {stored} < {}\n{log}",
                fires.len()
            );
        }
    }
    // A settled window does not change, and usage objects hold nothing run-specific but their
    // fire time: whichever instance wrote a key last, objects of one window agree.
    let mut by_window: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for key in list_keys(&format!("{prefix}/usage.")) {
        let mut doc: Value = serde_json::from_slice(&get_object(&key)).unwrap();
        doc.as_object_mut().unwrap().remove("fire_time");
        by_window
            .entry(doc["window"].to_string())
            .or_default()
            .push(doc);
    }
    for (window, docs) in by_window {
        assert!(docs.windows(2).all(|w| w[0] == w[1]), "{window}: {docs:?}");
    }
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn two_usage_instances_catch_up_independently_each_for_its_user() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("instances");
    let instance = |name: &str, uid: &str| {
        format!(
            "[jobs.{name}]\nkind = \"rgw_usage\"\nschedule = \"0 5 * * * *\"\nformat = \"json\"\n\
             key = \"{prefix}/{name}/usage.%Y-%m-%d/%H/%M/%S\"\nuid = \"{uid}\"\nzone = \"default\"\n"
        )
    };
    let jobs = format!(
        "{}\n{}",
        instance("usage_alice", "alice"),
        instance("usage_bob", "bob")
    );
    let cfg = config(dir.path(), &jobs);
    // alice's instance last delivered three windows ago, bob's two: two and one are missed.
    let current_end = utc_hour(Utc::now() - TimeDelta::minutes(1));
    let state = state_dir(&cfg);
    for (name, behind) in [("usage_alice", 3), ("usage_bob", 2)] {
        write_checkpoint(&state, name, current_end - TimeDelta::hours(behind));
    }

    // RGW's numbers for the three windows, settled before the exporter reads them: this
    // test's own requests must not land between the two reads.
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let truths: std::collections::BTreeMap<String, Value> = (1..=3)
        .map(|h| {
            let start = current_end - TimeDelta::hours(h);
            let end = start + TimeDelta::hours(1);
            let key = start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            (key, settled_usage(&fmt(start), &fmt(end)))
        })
        .collect();

    let out = exporter(&cfg, &["--once"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    for (name, user, objects) in [("usage_alice", "alice", 3), ("usage_bob", "bob", 2)] {
        let keys = list_keys(&format!("{prefix}/{name}/"));
        assert_eq!(keys.len(), objects, "{name}: {keys:?}\n{log}");
        for key in keys {
            let doc: Value = serde_json::from_slice(&get_object(&key)).unwrap();
            assert_eq!(
                (&doc["job"], &doc["zone"]),
                (&name.into(), &"default".into())
            );
            let truth = &truths[doc["window"]["start"].as_str().unwrap()];
            let theirs: Vec<&Value> = truth["summary"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["user"] == user)
                .collect();
            // Only this instance's user, with RGW's own numbers.
            let users = doc["users"].as_object().unwrap();
            assert!(users.keys().all(|u| u == user), "{key}: {users:?}");
            assert_eq!(users.len(), theirs.len(), "{key}");
            for s in theirs {
                assert_eq!(
                    counters(&doc["users"][user]["total"]),
                    counters(&s["total"]),
                    "{key}"
                );
            }
        }
        let saved: Value = serde_json::from_slice(
            &std::fs::read(state.join(format!("{name}.state.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            saved["delivered_until"],
            current_end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "{name}"
        );
    }
}
