//! Tests against the real loopback Ceph cluster with RGW (dev/ceph/start.sh), run by
//! `dev/test.sh`, which starts the cluster, exports its environment and adds the users alice
//! and bob. Each test is `#[ignore]`d so that a bare `cargo test` on a machine without the
//! cluster runs the rest; dev/test.sh passes `--include-ignored`.
//!
//! The exporter's objects are read back with dev/s3v2.sh (curl + openssl), a client that shares
//! no code with the exporter, and compared with what `ceph osd df tree` and
//! `radosgw-admin usage show` say.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use ceph_stats_exporter::payload::{Payload, PayloadWriter};
use ceph_stats_exporter::s3::S3Client;
use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Timelike, Utc};
use serde_json::Value;

use support::cluster::*;

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn capacity_snapshot_equals_ceph_osd_df_tree() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("capacity");
    let cfg = config(
        dir.path(),
        &pool_df_job(&format!("{prefix}/pool.%Y-%m-%d/%H/%M/%S"), "text", ""),
    );
    // Capacity moves while objects are written; compare only when ceph said the same thing
    // just before and just after the exporter read it.
    for attempt in 1..=5 {
        let before = ceph_roots();
        let out = exporter(&cfg, &["--once"]);
        let after = ceph_roots();
        assert!(out.status.success(), "{}", stderr(&out));
        if before != after {
            eprintln!("attempt {attempt}: capacity changed during the run, trying again");
            std::thread::sleep(Duration::from_secs(3));
            continue;
        }
        let keys = list_keys(&prefix);
        let key = keys.last().expect("the object was written");
        let body = String::from_utf8(get_object(key)).unwrap();
        // The body's lines carry the key's fire time in the original tool's layout.
        let stamp = key.rsplit_once("pool.").unwrap().1;
        let fire = chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d/%H/%M/%S").unwrap();
        let expected: Vec<String> = before
            .iter()
            .map(|(name, kb, avail, used)| {
                format!(
                    "{}>{name}:{kb} kb {avail} kb_avail {used} kb_used\n",
                    fire.format("%Y/%m/%d/%H:%M:%S")
                )
            })
            .collect();
        assert_eq!(body, expected.concat());
        return;
    }
    panic!("capacity never stood still for one run in 5 attempts");
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn capacity_json_with_osds_and_fsid() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("capjson");
    let cfg = write_config(
        dir.path(),
        &env("RGW_BUCKET"),
        &format!("cluster_fsid = \"{}\"", env("CEPH_FSID")),
        "",
        &pool_df_job(
            &format!("{prefix}/pool.%Y%m%dT%H%M%S"),
            "json",
            "detail = \"osds\"",
        ),
    );
    let out = exporter(&cfg, &["--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = list_keys(&prefix).pop().expect("written");
    let doc: Value = serde_json::from_slice(&get_object(&key)).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["kind"], "capacity");
    assert_eq!(doc["cluster_fsid"], env("CEPH_FSID").as_str());
    let roots: Vec<_> = doc["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    let ceph: Vec<_> = ceph_roots().into_iter().map(|r| Value::from(r.0)).collect();
    assert_eq!(roots, ceph);
    let osds = ceph_json(&["osd", "ls"]).as_array().unwrap().len();
    assert_eq!(doc["osds"].as_array().unwrap().len(), osds);
    assert_eq!(doc["hosts"].as_array().unwrap().len(), 1);
    // The key's time and the document's fire time are the same instant.
    let fire: DateTime<Utc> = doc["fire_time"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        fire.format("%Y%m%dT%H%M%S").to_string(),
        key.rsplit_once("pool.").unwrap().1
    );
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn usage_snapshot_equals_radosgw_admin_usage_show() {
    let _l = lock();
    let tag = Utc::now().format("%H%M%S%f").to_string();
    make_traffic(&tag);
    // Two hours around now, so traffic that crossed an hour boundary is still inside.
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    let (from, to) = (hour - TimeDelta::hours(1), hour + TimeDelta::hours(1));
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let expected = settled_usage(&fmt(from), &fmt(to));

    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("usage");
    let cfg = config(
        dir.path(),
        &usage_job(&format!("{prefix}/usage.%Y-%m-%d/%H/%M/%S"), "json", ""),
    );
    let window = [
        "--once",
        "--from",
        &from.to_rfc3339(),
        "--to",
        &to.to_rfc3339(),
    ];
    let out = exporter(&cfg, &window);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not complete yet"),
        "{}",
        stderr(&out)
    );
    // The object is named after --to.
    let keys = list_keys(&prefix);
    assert_eq!(
        keys,
        [format!("{prefix}/usage.{}", to.format("%Y-%m-%d/%H/%M/%S"))]
    );
    let doc: Value = serde_json::from_slice(&get_object(&keys[0])).unwrap();
    assert_eq!(
        doc["window"]["start"],
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );

    // Per user: exactly radosgw-admin's summary.
    let mut total = [0u64; 4];
    let summary = expected["summary"].as_array().unwrap();
    assert!(
        summary.iter().any(|s| s["user"] == "alice") && summary.iter().any(|s| s["user"] == "bob")
    );
    for s in summary {
        let user = s["user"].as_str().unwrap();
        let want = counters(&s["total"]);
        assert_eq!(counters(&doc["users"][user]["total"]), want, "user {user}");
        for (i, n) in want.iter().enumerate() {
            total[i] += n;
        }
    }
    assert_eq!(doc["users"].as_object().unwrap().len(), summary.len());
    assert_eq!(counters(&doc["total"]), total);

    // Per bucket and category: radosgw-admin's entries, summed over hours.
    let mut want_buckets = std::collections::BTreeMap::new();
    for e in expected["entries"].as_array().unwrap() {
        for b in e["buckets"].as_array().unwrap() {
            for c in b["categories"].as_array().unwrap() {
                let k = (
                    b["owner"].as_str().unwrap().to_string(),
                    b["bucket"].as_str().unwrap().to_string(),
                    c["category"].as_str().unwrap().to_string(),
                );
                let slot = want_buckets.entry(k).or_insert([0u64; 4]);
                for (i, n) in counters(c).iter().enumerate() {
                    slot[i] += n;
                }
            }
        }
    }
    let mut got_buckets = std::collections::BTreeMap::new();
    for b in doc["buckets"].as_array().unwrap() {
        for (cat, c) in b["categories"].as_object().unwrap() {
            let k = (
                b["owner"].as_str().unwrap().to_string(),
                b["bucket"].as_str().unwrap().to_string(),
                cat.clone(),
            );
            got_buckets.insert(k, counters(c));
        }
    }
    assert_eq!(got_buckets, want_buckets);
    let alice_bucket = format!("alice-{tag}");
    let put = &got_buckets[&("alice".to_string(), alice_bucket, "put_obj".to_string())];
    assert_eq!(put[3], 15 + 300 * 1024, "alice's put_obj bytes_received");

    // The text format of the same window: the original tool's line, with the same totals.
    // This test's own reads (as the exporter user) are in the log by now: settle first, then
    // run, and read nothing in between.
    let again = settled_usage(&fmt(from), &fmt(to));
    let cfg = config(
        dir.path(),
        &usage_job(&format!("{prefix}/text.%Y-%m-%d/%H/%M/%S"), "text", ""),
    );
    let out = exporter(&cfg, &window);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = list_keys(&format!("{prefix}/text.")).pop().unwrap();
    let mut t = [0u64; 4];
    for s in again["summary"].as_array().unwrap() {
        for (i, n) in counters(&s["total"]).iter().enumerate() {
            t[i] += n;
        }
    }
    assert_eq!(
        String::from_utf8(get_object(&key)).unwrap(),
        format!("op: {} bytes_received:{} bytes_sent:{}", t[0], t[3], t[2])
    );
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn daemon_writes_one_object_per_fire_and_stops_cleanly() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("daemon");
    let cfg = config(
        dir.path(),
        &format!(
            "{}{}",
            pool_df_job(&format!("{prefix}/pool.%Y-%m-%d/%H/%M/%S"), "text", ""),
            usage_job(&format!("{prefix}/usage.%Y-%m-%d/%H/%M/%S"), "text", "")
        ),
    );
    let started = Utc::now();
    let child = exporter_cmd(&cfg, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(36));
    run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let stopped = Utc::now();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit after SIGTERM: {}", stderr(&out));
    let log = stderr(&out);
    assert!(!log.contains("ERROR") && !log.contains("WARN"), "{log}");

    // Every 10-second instant strictly inside the run has exactly one object per job.
    let mut want = Vec::new();
    let mut t = started.duration_trunc(TimeDelta::seconds(10)).unwrap() + TimeDelta::seconds(10);
    while t + TimeDelta::seconds(2) < stopped {
        want.push(t.format("%Y-%m-%d/%H/%M/%S").to_string());
        t += TimeDelta::seconds(10);
    }
    assert!(want.len() >= 3, "{want:?}");
    for job in ["pool", "usage"] {
        let keys = list_keys(&format!("{prefix}/{job}."));
        let stamps: Vec<_> = keys
            .iter()
            .map(|k| {
                k.strip_prefix(&format!("{prefix}/{job}."))
                    .unwrap()
                    .to_string()
            })
            .collect();
        for w in &want {
            assert!(
                stamps.contains(w),
                "{job}: no object for fire {w}: {stamps:?}"
            );
        }
        // Nothing outside the 10-second grid, and no fire before start or after stop.
        for s in &stamps {
            assert!(s.ends_with('0'), "{job}: off-grid key {s}");
        }
        assert!(
            stamps.len() <= want.len() + 1,
            "{job}: {stamps:?} vs {want:?}"
        );
        let log_lines = log
            .lines()
            .filter(|l| l.contains("stored") && l.contains(&format!("/{job}.")))
            .count();
        assert_eq!(
            log_lines,
            stamps.len(),
            "{job}: one 'stored' line per object\n{log}"
        );
    }
}

/// The exporter's endpoint on the dev cluster, for library-level tests.
fn exporter_endpoint() -> ceph_stats_exporter::s3::Endpoint {
    use ceph_stats_exporter::s3auth::Credentials;
    ceph_stats_exporter::s3::Endpoint {
        url: env("RGW_ENDPOINT").parse().unwrap(),
        credentials: Credentials {
            access_key: env("EXPORTER_ACCESS_KEY"),
            secret_key: ceph_stats_exporter::secret::Secret::new(env("EXPORTER_SECRET_KEY")),
        },
        addressing: ceph_stats_exporter::s3auth::Addressing::Path,
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(20),
        max_response_bytes: 1 << 20,
        retry: Default::default(),
        signing: Default::default(),
    }
}

/// A runtime for the library-level tests, which call the async client.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Uploads 12 MiB in 5 MiB parts (three parts, the last one short; bytes that vary), written
/// as an object is rendered (through a payload writer, which spills to a file), and checks that
/// the object reads back whole and that no upload is left in progress.
fn assert_multipart_lands_whole(rt: &tokio::runtime::Runtime, client: &S3Client, key: &str) {
    let body: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let meta = [("job".to_string(), "rgw_usage".to_string())];
    let mut payload = PayloadWriter::new();
    payload.write_all(&body).unwrap();
    let payload = payload.finish().unwrap();
    rt.block_on(client.put_object_multipart(
        &env("RGW_BUCKET"),
        key,
        &payload,
        5 << 20,
        "application/json",
        &meta,
    ))
    .unwrap_or_else(|e| panic!("{key}: {e}"));
    assert!(get_object(key) == body, "the object read back differs");
    let uploads = stdout(&s3(
        None,
        "GET",
        &format!("/{}?uploads", env("RGW_BUCKET")),
        None,
    ));
    assert!(!uploads.contains(key), "{uploads}");
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn multipart_uploads_land_whole_on_real_rgw() {
    let _l = lock();
    let client = S3Client::new(&exporter_endpoint()).unwrap();
    let key = format!("{}/big.json", nonce("multipart"));
    assert_multipart_lands_whole(&runtime(), &client, &key);

    // The exporter goes multipart above its threshold (here: always), and the object is whole.
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("mpexp");
    let cfg = write_config(
        dir.path(),
        &env("RGW_BUCKET"),
        "",
        "multipart_threshold = 1",
        &usage_job(&format!("{prefix}/usage.%Y%m%dT%H%M%S"), "json", ""),
    );
    let out = exporter(&cfg, &["--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = list_keys(&prefix).pop().expect("written");
    let doc: Value = serde_json::from_slice(&get_object(&key)).unwrap();
    assert_eq!(doc["kind"], "usage");
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn signer_handles_awkward_keys_against_real_rgw() {
    use ceph_stats_exporter::s3auth::encode_key;
    use ceph_stats_exporter::secret::Secret;

    let _l = lock();
    let endpoint = exporter_endpoint();
    let client = S3Client::new(&endpoint).unwrap();
    let prefix = nonce("keys");
    let rt = runtime();
    for (i, name) in [
        "space key.txt",
        "plus+sign",
        "percent%25literal%",
        "tilde~and_under-dash.dot",
        "non-ascii/é ü 日本",
        "semi;colon,comma=eq&amp@at!bang'quote(paren)*star",
    ]
    .iter()
    .enumerate()
    {
        let key = format!("{prefix}/{name}");
        let body = format!("object {i}").into_bytes();
        let meta = [("note".to_string(), format!("  folded \t value {i} "))];
        let payload = Payload::from(body.clone());
        rt.block_on(client.put_object(&env("RGW_BUCKET"), &key, &payload, "text/plain", &meta))
            .unwrap_or_else(|e| panic!("PUT {key:?}: {e}"));
        assert_eq!(get_object(&encode_key(&key)), body, "{key:?}");
    }
    let names = list_keys(&prefix);
    assert_eq!(names.len(), 6, "{names:?}");

    // A wrong secret is refused by RGW itself.
    let mut wrong = endpoint.clone();
    wrong.credentials.secret_key = Secret::new("not-the-secret");
    let err = rt
        .block_on(S3Client::new(&wrong).unwrap().put_object(
            &env("RGW_BUCKET"),
            "x",
            &Payload::from(vec![]),
            "text/plain",
            &[],
        ))
        .unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"), "{err}");
}

/// Runs `--once` with a broken piece of config and returns (exit code, stderr).
fn run_once_with(jobs: &str, env_over: &[(&str, &str)], wrapper: Option<&[&str]>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), jobs);
    let mut cmd = match wrapper {
        Some(w) => {
            let mut c = Command::new(w[0]);
            c.args(&w[1..])
                .arg(env!("CARGO_BIN_EXE_ceph-stats-exporter"))
                .arg("--config")
                .arg(&cfg)
                .arg("--once")
                .env("STATE_DIRECTORY", state_dir(&cfg));
            c
        }
        None => exporter_cmd(&cfg, &["--once"]),
    };
    for (k, v) in env_over {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !err.contains(&env("EXPORTER_SECRET_KEY")),
        "secret in log: {err}"
    );
    (out.status.code().unwrap_or(-1), err)
}

type FailureCase<'a> = (
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    Option<&'a [&'a str]>,
    Vec<&'a str>,
);

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn real_rgw_errors_are_reported_with_code_and_remedy() {
    let _l = lock();
    let usage = usage_job("err/usage.%Y%m%d%H%M%S", "text", "");
    // (what, jobs, environment overrides, command wrapper, what stderr must say)
    let cases: Vec<FailureCase> = vec![
        (
            "wrong secret",
            usage.clone(),
            vec![("EXPORTER_SECRET_KEY", "wrong-secret")],
            None,
            vec!["HTTP 403 SignatureDoesNotMatch", "/admin/usage"],
        ),
        (
            "unknown access key",
            usage.clone(),
            vec![("EXPORTER_ACCESS_KEY", "NOSUCHACCESSKEY00000")],
            None,
            vec!["InvalidAccessKeyId", "NOSUCHACCESSKEY00000"],
        ),
        (
            "user without usage caps",
            format!(
                "[rgw]\naccess_key = \"{}\"\nsecret_key = \"{}\"\n{usage}",
                alice().access,
                alice().secret
            ),
            vec![],
            None,
            vec!["AccessDenied", "usage=read"],
        ),
    ];
    for (what, jobs, env_over, wrapper, want) in cases {
        let (code, err) = run_once_with(&jobs, &env_over, wrapper);
        assert_eq!(code, 1, "{what}: {err}");
        for w in want {
            assert!(err.contains(w), "{what}: missing {w:?} in\n{err}");
        }
    }

    // A clock 20 minutes behind: RGW refuses the first signature; the exporter learns the
    // server's time from its Date header, signs again, succeeds, and says so.
    let (code, err) = run_once_with(&usage, &[], Some(&["faketime", "-f", "-20m"]));
    assert_eq!(code, 0, "{err}");
    for w in ["the local clock is off", "Fix NTP"] {
        assert!(err.contains(w), "clock: missing {w:?} in\n{err}");
    }
    let offset: i64 = err
        .split("offset_ms=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset_ms in\n{err}"));
    assert!((offset - 1_200_000).abs() < 2_000, "offset {offset} ms");

    // A missing bucket: collection works, the PUT is refused and the key is named.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with_bucket(dir.path(), "no-such-bucket-for-tests", &usage);
    let out = exporter(&cfg, &["--once"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("NoSuchBucket") && err.contains("no-such-bucket-for-tests"),
        "{err}"
    );
    // Collected, so not lost: kept in the spool for when the bucket exists.
    assert!(err.contains("spooled, not yet in S3"), "{err}");
    let spooled = std::fs::read_dir(state_dir(&cfg).join("spool"))
        .unwrap()
        .count();
    assert_eq!(spooled, 1);
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn a_broken_ceph_source_fails_its_job_only() {
    let _l = lock();
    let jobs = format!(
        "{}{}",
        pool_df_job("err/pool.%Y%m%d%H%M%S", "text", "")
            .replace(&env("CEPH_CONF"), "/nonexistent/ceph.conf"),
        usage_job("err-ok/usage.%Y%m%d%H%M%S", "text", "")
    );
    let (code, err) = run_once_with(&jobs, &[], None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("pool_df") && err.contains("/nonexistent/ceph.conf"),
        "{err}"
    );
    assert!(err.contains("1 of 2 jobs failed: pool_df"), "{err}");
    assert!(!list_keys("err-ok/usage.").is_empty());
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn check_verifies_everything_and_names_what_fails() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let jobs = format!(
        "{}{}",
        pool_df_job("chk/pool.%Y%m%d%H%M%S", "text", ""),
        usage_job("chk/usage.%Y%m%d%H%M%S", "text", "")
    );
    let good = config(dir.path(), &jobs);
    let out = exporter(&good, &["check"]);
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    for want in [
        "ok   s3: clocks agree",
        "ok   bucket info: a probe object can be written and deleted",
        "ok   pool_df: `ceph osd df tree` answers: CRUSH roots default",
        "ok   rgw_usage: access key EXPORTERACCESSKEY0001 may read the usage log",
        // The exporter may not read the period (no zone=read cap here): a warning, no failure.
        "warn rgw_usage instances read every zone's usage log",
        "zone=read",
        "all 9 checks passed (1 warning)",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // The probe object was deleted again.
    assert!(list_keys(".ceph-stats-exporter-check/").is_empty());

    // Alice may write her own buckets but has no admin caps; the bucket does not exist.
    let bad = write_config(
        dir.path(),
        "no-such-bucket-for-check",
        "",
        "",
        &format!(
            "[rgw]\naccess_key = \"{}\"\nsecret_key = \"{}\"\n{}",
            alice().access,
            alice().secret,
            usage_job("chk/usage.%Y%m%d%H%M%S", "text", "")
        ),
    );
    let out = exporter(&bad, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    for want in [
        "FAIL bucket no-such-bucket-for-check",
        "NoSuchBucket",
        "FAIL rgw_usage: access key ALICEACCESSKEY000001 may read the usage log",
        "usage=read",
        "2 of 11 checks failed (1 warning)",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn restful_source_verifies_the_mgr_certificate_by_default() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let job = |ca: &str| {
        format!(
            "[jobs.pool_df]\nevery = \"10s\"\nformat = \"json\"\n\n[jobs.pool_df.source]\n\
             type = \"restful\"\nurl = \"{}\"\nuser = \"{}\"\nkey = {{ env = \"CEPH_MGR_RESTFUL_KEY\" }}\n{ca}",
            env("CEPH_MGR_RESTFUL_URL"),
            env("CEPH_MGR_RESTFUL_USER")
        )
    };
    // With the mgr's certificate as the CA: verified, and the same roots as the CLI reports.
    let cfg = config(
        dir.path(),
        &job(&format!("ca_file = \"{}\"", env("CEPH_MGR_RESTFUL_CA"))),
    );
    let out = exporter(&cfg, &["--once", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let doc: Value = serde_json::from_str(text.split_once('\n').unwrap().1).unwrap();
    let roots: Vec<_> = doc["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    let ceph: Vec<_> = ceph_roots().into_iter().map(|r| Value::from(r.0)).collect();
    assert_eq!(roots, ceph);
    assert!(doc["roots"][0]["kb"].as_u64().unwrap() > 0);

    // Without it, the self-signed certificate is refused: verification is on by default.
    let cfg = config(dir.path(), &job(""));
    let out = exporter(&cfg, &["--once", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn duckdb_reads_a_records_archive_as_it_is_and_sums_what_radosgw_admin_says() {
    let _l = lock();
    let tag = Utc::now().format("%H%M%S%f").to_string();
    make_traffic(&tag);
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let (from, to) = (hour - TimeDelta::hours(1), hour + TimeDelta::hours(1));
    let expected = settled_usage(&fmt(from), &fmt(to));

    // Two one-hour windows, archived gzipped under Hive-style keys.
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("records");
    let cfg = config(
        dir.path(),
        &usage_job_at(
            "schedule = \"0 5 * * * *\"",
            &format!("{prefix}/usage/date=%Y-%m-%d/hour=%H/usage.jsonl.gz"),
            "records",
            "compression = \"gzip\"",
        ),
    );
    for start in [from, hour] {
        let (s, e) = (
            start.to_rfc3339(),
            (start + TimeDelta::hours(1)).to_rfc3339(),
        );
        let out = exporter(&cfg, &["--once", "--from", &s, "--to", &e]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    // The archive copied as it is into a local directory, then queried with no loader.
    let local = tempfile::tempdir().unwrap();
    let keys = list_keys(&prefix);
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in &keys {
        let path = local.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, get_object(key)).unwrap();
    }
    let out = Command::new("python3")
        .arg(repo().join("tests/duckdb_usage.py"))
        .arg(local.path().join(&prefix))
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "duckdb: {}", stderr(&out));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    // An hour's object with no records adds no rows, and keys are named by the fire time, which
    // for --from/--to is the window's end: the partitions DuckDB sees are the hours after those
    // radosgw-admin has entries for (a fresh cluster has none in the earlier hour).
    let mut hours: Vec<Value> = expected["entries"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["buckets"].as_array().unwrap())
        .map(|b| {
            let t = b["time"].as_str().unwrap();
            let start = NaiveDate::parse_from_str(&t[..10], "%Y-%m-%d")
                .unwrap()
                .and_hms_opt(t[11..13].parse().unwrap(), 0, 0)
                .unwrap()
                .and_utc();
            let fire = start + TimeDelta::hours(1);
            serde_json::json!([fire.format("%Y-%m-%d").to_string(), fire.hour()])
        })
        .collect();
    hours.sort_by_key(|h| h.to_string());
    hours.dedup();
    assert!(!hours.is_empty(), "no usage entries in {expected}");
    assert_eq!(got["partitions"], Value::Array(hours), "{got}");
    // The users who made traffic (the exporter's own requests keep coming in meanwhile).
    for user in ["alice", "bob"] {
        let s = expected["summary"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["user"] == user)
            .unwrap_or_else(|| panic!("no usage of {user}"));
        let want: Vec<u64> = counters(&s["total"]).to_vec();
        let sums: Vec<u64> = got["owners"][user]
            .as_array()
            .unwrap_or_else(|| panic!("{user} missing from {got}"))
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(sums, want, "{user}");
    }
}

/// The exporter's endpoint on the dev cluster, signing with v4 for `region`.
fn v4_endpoint(region: &str) -> ceph_stats_exporter::s3::Endpoint {
    use ceph_stats_exporter::s3::{SignatureVersion, Signing};
    ceph_stats_exporter::s3::Endpoint {
        signing: Signing {
            version: SignatureVersion::V4,
            region: region.into(),
        },
        ..exporter_endpoint()
    }
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn v4_puts_and_multipart_uploads_are_accepted_by_real_rgw() {
    use ceph_stats_exporter::s3auth::encode_key;
    let _l = lock();
    let rt = runtime();
    let prefix = nonce("v4");
    // RGW 16.2 signs with the region the request names: the default, and the zonegroup's name.
    for region in ["us-east-1", "default"] {
        let client = S3Client::new(&v4_endpoint(region)).unwrap();
        for (i, name) in ["plain.txt", "space key+plus%25~tilde", "non-ascii/é ü 日本"]
            .iter()
            .enumerate()
        {
            let key = format!("{prefix}/{region}/{name}");
            let body = format!("v4 object {i} for {region}").into_bytes();
            // Runs of spaces are signed collapsed, as RGW reads them. (A tab next to a space is
            // not: aws-sigv4 collapses spaces only, RGW and botocore any white space.)
            let meta = [("note".to_string(), format!("  folded   value\t{i} "))];
            rt.block_on(client.put_object(
                &env("RGW_BUCKET"),
                &key,
                &Payload::from(body.clone()),
                "text/plain",
                &meta,
            ))
            .unwrap_or_else(|e| panic!("v4 PUT {key:?} ({region}): {e}"));
            assert_eq!(get_object(&encode_key(&key)), body, "{key:?}");
        }
    }

    // Three parts, each signed with its payload's hash.
    let client = S3Client::new(&v4_endpoint("us-east-1")).unwrap();
    assert_multipart_lands_whole(&rt, &client, &format!("{prefix}/big.json"));

    // A wrong secret is refused by RGW itself, with the remedy.
    let mut wrong = v4_endpoint("us-east-1");
    wrong.credentials.secret_key = ceph_stats_exporter::secret::Secret::new("not-the-secret");
    let err = rt
        .block_on(S3Client::new(&wrong).unwrap().put_object(
            &env("RGW_BUCKET"),
            &format!("{prefix}/refused"),
            &Payload::from(b"x".to_vec()),
            "text/plain",
            &[],
        ))
        .unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"), "{err}");
    assert!(
        err.to_string()
            .contains("the secret key does not match access key"),
        "{err}"
    );
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn the_exporter_signing_v4_reads_usage_and_uploads_in_parts() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("v4exp");
    // [rgw] inherits signature and region from [s3]; every object goes up in parts.
    let cfg = write_config(
        dir.path(),
        &env("RGW_BUCKET"),
        "",
        "signature = \"v4\"\nregion = \"default\"\nmultipart_threshold = 1\n\
         multipart_part_size = 5242880",
        &format!(
            "{}{}",
            usage_job(&format!("{prefix}/usage.%Y%m%dT%H%M%S"), "json", ""),
            pool_df_job(&format!("{prefix}/pool.%Y%m%dT%H%M%S"), "json", "")
        ),
    );
    let out = exporter(&cfg, &["--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let keys = list_keys(&prefix);
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in keys {
        let doc: Value = serde_json::from_slice(&get_object(&key)).unwrap();
        assert_eq!(doc["schema_version"], 1, "{key}");
    }

    // A wrong secret: the admin GET, signed v4, is refused with the code and the remedy.
    let cfg = write_config(
        dir.path(),
        &env("RGW_BUCKET"),
        "",
        "signature = \"v4\"",
        &usage_job(&format!("{prefix}/refused.%Y%m%dT%H%M%S"), "json", ""),
    );
    let out = exporter_cmd(&cfg, &["--once"])
        .env("EXPORTER_SECRET_KEY", "wrong-secret")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "/admin/usage",
        "HTTP 403 SignatureDoesNotMatch",
        "the secret key does not match access key",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    assert!(!err.contains(&env("EXPORTER_SECRET_KEY")), "secret in log");
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn list_and_get_read_back_awkward_keys_page_by_page_signed_v2_and_v4() {
    let _l = lock();
    let rt = runtime();
    let bucket = env("RGW_BUCKET");
    let prefix = nonce("list");
    let names = ["a plain", "b+plus %25 ~", "c/é 日本", "d&amp;<x>"];
    let writer = S3Client::new(&exporter_endpoint()).unwrap();
    for name in names {
        let key = format!("{prefix}/{name}");
        let payload = Payload::from(key.clone().into_bytes());
        rt.block_on(writer.put_object(&bucket, &key, &payload, "text/plain", &[]))
            .unwrap_or_else(|e| panic!("PUT {key:?}: {e}"));
    }
    for endpoint in [exporter_endpoint(), v4_endpoint("us-east-1")] {
        let client = S3Client::new(&endpoint).unwrap();
        let (mut listed, mut next, mut pages) = (Vec::new(), None, 0);
        loop {
            let page = rt
                .block_on(client.list_objects(&bucket, &format!("{prefix}/"), next.as_deref(), 3))
                .unwrap_or_else(|e| panic!("list ({:?}): {e}", endpoint.signing));
            pages += 1;
            listed.extend(page.objects);
            next = page.next;
            if next.is_none() {
                break;
            }
        }
        assert_eq!(pages, 2, "{:?}", endpoint.signing);
        let keys: Vec<String> = names.iter().map(|n| format!("{prefix}/{n}")).collect();
        assert_eq!(
            listed.iter().map(|o| o.key.clone()).collect::<Vec<_>>(),
            keys
        );
        for (object, key) in listed.iter().zip(&keys) {
            assert_eq!(object.size, key.len() as u64);
            let body = rt
                .block_on(client.get_object(&bucket, key))
                .unwrap_or_else(|e| panic!("GET {key:?} ({:?}): {e}", endpoint.signing));
            assert_eq!(body, key.as_bytes());
        }
    }
}
