//! `report` and `audit`: the archive read back. Against the real cluster (dev/test.sh; marked
//! `#[ignore]`), the sums equal `radosgw-admin usage show` for the same hours, and the audit
//! finds a deleted and a damaged object and repairs the deleted one. Against in-process fakes,
//! what a real server will not do on demand: a 403 on one key, a listing that never ends.

mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::Value;

use support::cluster::*;
use support::exporter::{self as fakes, Outcome};
use support::fake::{answer, Fake, Reply};

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// (user, bucket, category) → [ops, successful_ops, bytes_sent, bytes_received] of `users`,
/// from `radosgw-admin usage show` entries.
fn admin_rows(usage: &Value, users: &[&str]) -> BTreeMap<(String, String, String), [u64; 4]> {
    let mut rows: BTreeMap<_, [u64; 4]> = BTreeMap::new();
    for entry in usage["entries"].as_array().unwrap() {
        for b in entry["buckets"].as_array().unwrap() {
            let owner = b["owner"].as_str().unwrap().to_string();
            if !users.contains(&owner.as_str()) {
                continue;
            }
            for c in b["categories"].as_array().unwrap() {
                let id = (
                    owner.clone(),
                    b["bucket"].as_str().unwrap().to_string(),
                    c["category"].as_str().unwrap().to_string(),
                );
                let sum = rows.entry(id).or_default();
                for (s, v) in sum.iter_mut().zip(counters(c)) {
                    *s += v;
                }
            }
        }
    }
    rows
}

/// The same, from `report --by user,bucket,category --output json`.
fn report_rows(out: &str, users: &[&str]) -> BTreeMap<(String, String, String), [u64; 4]> {
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| users.contains(&r["user"].as_str().unwrap()))
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            ((s("user"), s("bucket"), s("category")), counters(&r))
        })
        .collect()
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn report_sums_what_radosgw_admin_says_and_audit_finds_and_repairs_holes() {
    let _l = lock();
    let tag = Utc::now().format("%H%M%S%f").to_string();
    make_traffic(&tag);
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    let (from, to) = (hour - TimeDelta::hours(2), hour + TimeDelta::hours(1));
    let expected = settled_usage(&fmt(from), &fmt(to));

    // Three hour windows: the first two as json documents, the last as records, so that one
    // period holds two formats, as it does after a configuration change.
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("report");
    let template = format!("{prefix}/usage.%Y-%m-%d/%H/%M/%S");
    let job = |format: &str| usage_job_at("schedule = \"0 5 * * * *\"", &template, format, "");
    let windows: Vec<DateTime<Utc>> = (0..3).map(|h| from + TimeDelta::hours(h)).collect();
    for (i, start) in windows.iter().enumerate() {
        let cfg = config(dir.path(), &job(if i < 2 { "json" } else { "records" }));
        let (s, e) = (
            start.to_rfc3339(),
            (*start + TimeDelta::hours(1)).to_rfc3339(),
        );
        let out = exporter(&cfg, &["--once", "--from", &s, "--to", &e]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let cfg = config(dir.path(), &job("json"));
    let keys = list_keys(&prefix);
    assert_eq!(keys.len(), 3, "{keys:?}");

    let period = [
        "--from".to_string(),
        from.to_rfc3339(),
        "--to".into(),
        to.to_rfc3339(),
    ];
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(period.iter().map(String::as_str));
        exporter(&cfg, &all)
    };
    let users = ["alice", "bob"];
    let out = run(&["report", "--by", "user,bucket,category", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = admin_rows(&expected, &users);
    assert!(want.len() >= 8, "alice's and bob's traffic: {want:?}");
    assert_eq!(report_rows(&stdout(&out), &users), want);

    // By user, alice's totals are radosgw-admin's summary for her.
    let out = run(&[
        "report", "--by", "user", "--user", "alice", "--output", "csv",
    ]);
    let alice = expected["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["user"] == "alice")
        .unwrap();
    let [ops, ok, sent, received] = counters(&alice["total"]);
    assert_eq!(
        stdout(&out),
        format!(
            "user,ops,successful_ops,bytes_sent,bytes_received\r\nalice,{ops},{ok},{sent},{received}\r\n"
        )
    );

    let out = run(&["audit"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("complete: 3 objects read"),
        "{}",
        stdout(&out)
    );

    // A hole and a damaged object.
    let bucket = env("RGW_BUCKET");
    let (deleted, damaged) = (&keys[1], &keys[0]);
    let before = get_object(deleted);
    assert!(s3(None, "DELETE", &format!("/{bucket}/{deleted}"), None)
        .status
        .success());
    let junk = dir.path().join("junk");
    std::fs::write(&junk, "{\n  \"schema_version\": 1, \"kind\": \"usa").unwrap();
    assert!(
        s3(None, "PUT", &format!("/{bucket}/{damaged}"), Some(&junk))
            .status
            .success()
    );

    let out = run(&["audit"]);
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let hole = format!(
        "window {} .. {} has no object",
        windows[1].to_rfc3339(),
        windows[2].to_rfc3339()
    );
    assert!(said.contains(&hole), "{said}");
    assert!(
        said.contains(&format!("FAIL {damaged}: unreadable: not a json body")),
        "{said}"
    );
    // The damaged object's window has no readable object either.
    let unreadable_hole = format!(
        "window {} .. {} has no object",
        windows[0].to_rfc3339(),
        windows[1].to_rfc3339()
    );
    assert!(said.contains(&unreadable_hole), "{said}");
    assert!(said.contains("incomplete: 3 finding(s)"), "{said}");

    // The report names what it skipped, and says its sums are short.
    let out = run(&["report", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(damaged.as_str()), "{}", stderr(&out));
    assert!(stderr(&out).contains("skipped=1"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 window(s) of the period have no object"),
        "{}",
        stderr(&out)
    );

    // --repair reads both hours from RGW again, under the keys they had: the hole and the
    // damaged object's window (it has no readable object either).
    let out = run(&["audit", "--repair"]);
    let said = stdout(&out);
    for key in [deleted, damaged] {
        assert!(
            said.contains(&format!("stored as {key}")),
            "{said}{}",
            stderr(&out)
        );
    }
    assert_eq!(out.status.code(), Some(0), "{said}");
    let after_repair = said.split("auditing again").nth(1).unwrap();
    assert!(after_repair.contains("complete: 3 objects read"), "{said}");
    let restored: Value = serde_json::from_slice(&get_object(deleted)).unwrap();
    let was: Value = serde_json::from_slice(&before).unwrap();
    assert_eq!(restored["window"], was["window"]);
    for user in users {
        assert_eq!(restored["users"][user], was["users"][user], "{user}");
    }
}

#[test]
#[ignore = "needs the loopback cluster: run dev/test.sh"]
fn objects_that_are_not_the_jobs_snapshots_are_named_and_skipped() {
    let _l = lock();
    let dir = tempfile::tempdir().unwrap();
    let prefix = nonce("report-bad");
    let template = format!("{prefix}/usage.%Y-%m-%d/%H/%M/%S");
    let cfg = config(
        dir.path(),
        &usage_job_at("schedule = \"0 5 * * * *\"", &template, "records", ""),
    );
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap() - TimeDelta::hours(1);
    let (s, e) = (hour.to_rfc3339(), (hour + TimeDelta::hours(1)).to_rfc3339());
    let out = exporter(&cfg, &["--once", "--from", &s, "--to", &e]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Under keys of the template, in the period: a web page, a records object cut short, and
    // one of a newer layout.
    let bucket = env("RGW_BUCKET");
    let key = |minute: i64| {
        (hour + TimeDelta::minutes(minute))
            .format(&format!("{prefix}/usage.%Y-%m-%d/%H/%M/%S"))
            .to_string()
    };
    let record = r#"{"schema_version":1,"kind":"usage","job":"rgw_usage","cluster":null,"zone":null,"fire_time":"2026-11-01T01:05:00Z","window_start":"2026-11-01T00:00:00Z","window_end":"2026-11-01T01:00:00Z","owner":"a","bucket":"b","category":"c","ops":1,"successful_ops":1,"bytes_sent":1,"bytes_received":1}"#;
    let bodies = [
        (
            key(10),
            "<html><body>hello</body></html>".to_string(),
            "expected `op: N",
        ),
        (key(20), record[..80].to_string(), "cut short"),
        (
            key(30),
            format!(
                "{}\n",
                record.replace("\"schema_version\":1", "\"schema_version\":7")
            ),
            "schema_version 7",
        ),
    ];
    for (k, body, _) in &bodies {
        let file = dir.path().join("body");
        std::fs::write(&file, body).unwrap();
        assert!(s3(None, "PUT", &format!("/{bucket}/{k}"), Some(&file))
            .status
            .success());
    }
    let out = exporter(
        &cfg,
        &[
            "report",
            "--from",
            &s,
            "--to",
            &(hour + TimeDelta::hours(2)).to_rfc3339(),
            "--output",
            "json",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for (k, _, why) in &bodies {
        let line = err
            .lines()
            .find(|l| l.contains(k.as_str()))
            .unwrap_or_else(|| panic!("{k} not named: {err}"));
        assert!(line.contains(why), "{line}");
    }
    assert!(err.contains("skipped=3"), "{err}");
    assert!(err.contains("objects=4"), "{err}");
    assert!(err.contains("counted=1"), "the good one counts: {err}");
}

/// A listing page of ListObjectsV2 with these keys; `next` makes it truncated.
fn page(keys: &[&str], next: Option<&str>) -> Reply {
    let mut xml = String::from("<?xml version=\"1.0\"?><ListBucketResult>");
    for k in keys {
        xml.push_str(&format!(
            "<Contents><Key>{k}</Key><Size>1</Size></Contents>"
        ));
    }
    match next {
        Some(t) => xml.push_str(&format!(
            "<IsTruncated>true</IsTruncated><NextContinuationToken>{t}</NextContinuationToken>"
        )),
        None => xml.push_str("<IsTruncated>false</IsTruncated>"),
    }
    xml.push_str("</ListBucketResult>");
    answer(200, "application/xml", xml)
}

async fn report_on(s3: &Fake) -> Outcome {
    let rgw = Fake::start(answer(500, "text/plain", "unused")).await;
    let config = fakes::config(s3, Some(&rgw), None, "");
    fakes::run(
        &config,
        &[
            "report",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-11-01T03:00:00Z",
            "--concurrency",
            "1",
            "--output",
            "csv",
        ],
    )
    .await
}

#[tokio::test]
async fn a_403_on_one_key_is_named_and_the_rest_still_counts() {
    // A text body with its metadata, as the exporter stores it.
    let text = |metadata: &str| {
        let body = "op: 3 bytes_received:10 bytes_sent:20";
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nx-amz-meta-job: rgw_usage\r\n\
                 {metadata}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    };
    let s3 = Fake::script(vec![
        page(
            &[
                "usage.2026-11-01/01/05/00",
                "usage.2026-11-01/02/05/00",
                "usage.2026-11-01/03/05/00",
            ],
            None,
        ),
        answer(
            403,
            "application/xml",
            "<Error><Code>AccessDenied</Code></Error>",
        ),
        text(
            "x-amz-meta-window-start: 2026-11-01T01:00:00Z\r\n\
             x-amz-meta-window-end: 2026-11-01T02:00:00Z\r\n",
        ),
        // Copied under another key: its metadata names another fire.
        text(
            "x-amz-meta-fire-time: 2026-11-01T09:05:00Z\r\n\
             x-amz-meta-window-start: 2026-11-01T08:00:00Z\r\n\
             x-amz-meta-window-end: 2026-11-01T09:00:00Z\r\n",
        ),
    ])
    .await;
    let out = report_on(&s3).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let named = |key: &str| {
        out.stderr
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("{key} not named: {}", out.stderr))
            .to_string()
    };
    let denied = named("usage.2026-11-01/01/05/00");
    assert!(
        denied.contains("403") && denied.contains("AccessDenied"),
        "{denied}"
    );
    let moved = named("usage.2026-11-01/03/05/00");
    assert!(
        moved.contains(
            "its key says fire time 2026-11-01T03:05:00+00:00 but its metadata says \
             2026-11-01T09:05:00+00:00"
        ),
        "{moved}"
    );
    assert_eq!(
        out.stdout,
        "ops,successful_ops,bytes_sent,bytes_received\r\n3,,20,10\r\n"
    );
    assert!(out.stderr.contains("skipped=2"), "{}", out.stderr);
}

#[tokio::test]
async fn a_listing_that_does_not_end_is_refused_not_followed() {
    // The same token again.
    let s3 = Fake::start(page(&["usage.2026-11-01/01/05/00"], Some("again"))).await;
    let out = report_on(&s3).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the continuation token \"again\" came back"),
        "{}",
        out.stderr
    );
    assert_eq!(
        s3.requests().len(),
        2,
        "no GET of a listing that is not sane"
    );

    // New tokens, the same keys again.
    let s3 = Fake::script(vec![
        page(&["usage.2026-11-01/01/05/00"], Some("t1")),
        page(&["usage.2026-11-01/01/05/00"], Some("t2")),
    ])
    .await;
    let out = report_on(&s3).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("keys must come in order"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn capacity_reports_growth_per_day_and_the_day_a_root_fills() {
    // Two days of the original text bodies: 1 GiB used more a day, 10 GiB left at the end.
    let gib = 1u64 << 20;
    let body = |stamp: &str, used: u64, avail: u64| {
        format!(
            "{stamp}>default:{} kb {} kb_avail {} kb_used\n",
            used + avail,
            avail,
            used
        )
    };
    let s3 = Fake::script(vec![
        page(
            &["pool.2026-11-01/00/00/00", "pool.2026-11-03/00/00/00"],
            None,
        ),
        answer(
            200,
            "text/plain",
            body("2026/11/01/00:00:00", gib, 12 * gib),
        ),
        answer(
            200,
            "text/plain",
            body("2026/11/03/00:00:00", 3 * gib, 10 * gib),
        ),
    ])
    .await;
    let ceph = Fake::start(answer(500, "text/plain", "unused")).await;
    let config = fakes::config(&s3, None, Some(&ceph), "");
    let out = fakes::run(
        &config,
        &[
            "report",
            "--job",
            "pool_df",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-11-04T00:00:00Z",
            "--concurrency",
            "1",
            "--output",
            "csv",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "job,root,first_at,first_used,last_at,last_used,min_used,max_used,growth_per_day,full_at\r\n\
         pool_df,default,2026-11-01T00:00:00Z,1073741824,2026-11-03T00:00:00Z,3221225472,\
         1073741824,3221225472,1073741824,2026-11-13T00:00:00Z\r\n"
    );
    // Capacity and usage are not summed together.
    let both = fakes::run(
        &config.replace(
            "[jobs.pool_df]",
            "[rgw]\n\n[jobs.rgw_usage]\nevery = \"1h\"\n\n[jobs.pool_df]",
        ),
        &[
            "report",
            "--job",
            "pool_df",
            "--job",
            "rgw_usage",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-11-04T00:00:00Z",
        ],
    )
    .await;
    assert_eq!(both.code, 2, "{}", both.stderr);
    assert!(
        both.stderr.contains("one kind at a time"),
        "{}",
        both.stderr
    );
}
