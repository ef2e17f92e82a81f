//! Tests against the two-zone cluster: a second start.sh cluster made multisite by
//! dev/ceph/zones.sh (zone-a and zone-b, a gateway and a usage log each), which dev/test.sh
//! starts beside the single-site one and names in `ZONES_ENV` (its env file). `#[ignore]`d like
//! the other cluster tests; dev/test.sh passes `--include-ignored`.

mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::Value;

use support::cluster::{alice, counters, lock, nonce, stderr, stdout};
use support::zones::Zones;

fn instances(z: &Zones) -> Vec<(&'static str, &str, &str)> {
    let [(za, a), (zb, b)] = z.zones();
    vec![("usage_zone_a", za, a), ("usage_zone_b", zb, b)]
}

/// Totals of a `radosgw-admin usage show` answer, by user and in all.
fn admin_totals(v: &Value) -> (BTreeMap<String, [u64; 4]>, [u64; 4]) {
    let mut users = BTreeMap::new();
    let mut all = [0u64; 4];
    for s in v["summary"].as_array().expect("a summary") {
        let t = counters(&s["total"]);
        users.insert(s["user"].as_str().unwrap().to_string(), t);
        for (sum, n) in all.iter_mut().zip(t) {
            *sum += n;
        }
    }
    (users, all)
}

#[test]
#[ignore = "needs the two-zone cluster: run dev/test.sh"]
fn each_zone_is_archived_by_its_own_instance_and_equals_that_zones_log() {
    let _l = lock();
    let z = Zones::load();
    let tag = Utc::now().format("%H%M%S%f").to_string();
    let dir = tempfile::tempdir().unwrap();
    let (small, big) = (dir.path().join("small"), dir.path().join("big"));
    std::fs::write(&small, b"zone a traffic").unwrap();
    std::fs::write(&big, vec![9u8; 200 * 1024]).unwrap();
    let [(_, a), (_, b)] = z.zones();
    // Alice's traffic goes to one zone or the other; each zone's log holds only its own.
    let (bucket_a, bucket_b) = (format!("/alice-za-{tag}"), format!("/alice-zb-{tag}"));
    z.ok(&alice(), a, "PUT", &bucket_a, None);
    z.ok(&alice(), a, "PUT", &format!("{bucket_a}/o"), Some(&small));
    z.ok(&alice(), a, "GET", &format!("{bucket_a}/o"), None);
    z.ok(&alice(), b, "PUT", &bucket_b, None);
    z.ok(&alice(), b, "PUT", &format!("{bucket_b}/o"), Some(&big));
    z.ok(&alice(), b, "GET", &format!("{bucket_b}/o"), None);
    z.ok(&alice(), b, "GET", &format!("{bucket_b}/o"), None);

    // Two hours around now, so traffic that crossed an hour boundary is inside.
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    let (from, to) = (hour - TimeDelta::hours(1), hour + TimeDelta::hours(1));
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    // Before the exporter runs: its own uploads (to zone-a) come after its reads.
    let expected: Vec<Value> = z
        .zones()
        .iter()
        .map(|(zone, _)| z.usage(zone, &fmt(from), &fmt(to)))
        .collect();

    let prefix = nonce("zones");
    let cfg = z.config(dir.path(), &prefix, &instances(&z));
    // One instance at a time: zone-a's own upload must not land before zone-a's read.
    for (job, _, _) in instances(&z) {
        let out = z.exporter(
            &cfg,
            &[
                "--once",
                "--job",
                job,
                "--from",
                &from.to_rfc3339(),
                "--to",
                &to.to_rfc3339(),
            ],
        );
        assert!(out.status.success(), "{job}: {}", stderr(&out));
    }

    let key = |zone: &str| format!("{prefix}/{zone}/usage.{}", to.format("%Y-%m-%d/%H"));
    for ((zone, _), want) in z.zones().iter().zip(&expected) {
        let doc: Value = serde_json::from_slice(&z.get_object(&key(zone))).unwrap();
        let (users, all) = admin_totals(want);
        assert_eq!(counters(&doc["total"]), all, "{zone}: the sum of its log");
        for (user, t) in &users {
            assert_eq!(counters(&doc["users"][user]["total"]), *t, "{zone}: {user}");
        }
        assert_eq!(
            doc["users"].as_object().unwrap().len(),
            users.len(),
            "{zone}"
        );
        // Alice's buckets appear in the log of the zone that served them, and only there.
        let buckets: Vec<&str> = doc["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["owner"] == "alice")
            .map(|b| b["bucket"].as_str().unwrap())
            .collect();
        let (mine, other) = if *zone == z.get("RGW_ZONE_A") {
            (&bucket_a[1..], &bucket_b[1..])
        } else {
            (&bucket_b[1..], &bucket_a[1..])
        };
        assert!(
            buckets.contains(&mine) && !buckets.contains(&other),
            "{zone}: {buckets:?}"
        );
    }
    let doc_b: Value = serde_json::from_slice(&z.get_object(&key(z.get("RGW_ZONE_B")))).unwrap();
    let put = doc_b["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["bucket"] == bucket_b[1..])
        .unwrap()["categories"]["put_obj"]
        .clone();
    assert_eq!(put["bytes_received"], 200 * 1024, "{put}");

    // `report` sums both zones' archives, and splits them by zone.
    let period = ["--from", &from.to_rfc3339(), "--to", &to.to_rfc3339()];
    let report = |by: &[&str]| {
        let out = z.exporter(
            &cfg,
            &[&["report", "--output", "json"][..], by, &period].concat(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let by_zone = report(&["--by", "zone"]);
    let mut sum = [0u64; 4];
    for ((zone, _), want) in z.zones().iter().zip(&expected) {
        let row = by_zone
            .iter()
            .find(|r| r["zone"] == *zone)
            .unwrap_or_else(|| panic!("{zone} missing from {by_zone:?}"));
        let all = admin_totals(want).1;
        assert_eq!(counters(row), all, "{zone}");
        for (s, n) in sum.iter_mut().zip(all) {
            *s += n;
        }
    }
    assert_eq!(by_zone.len(), 2, "{by_zone:?}");
    assert_eq!(counters(&report(&[])[0]), sum, "both zones together");
}

#[test]
#[ignore = "needs the two-zone cluster: run dev/test.sh"]
fn check_warns_about_a_zone_no_instance_reads_and_passes_when_both_are_read() {
    let _l = lock();
    let z = Zones::load();
    let dir = tempfile::tempdir().unwrap();
    let what = "rgw_usage instances read every zone's usage log";

    let one = z.config(dir.path(), "chk", &instances(&z)[..1]);
    let out = z.exporter(&one, &["check"]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "a warning does not fail check:\n{text}"
    );
    let warned = format!(
        "warn {what}\n     zone {} of zonegroup {} is read by no rgw_usage instance",
        z.get("RGW_ZONE_B"),
        z.get("RGW_ZONEGROUP")
    );
    assert!(text.contains(&warned), "missing {warned:?} in\n{text}");
    assert!(text.contains(z.get("RGW_ENDPOINT_B")), "{text}");
    assert!(text.contains("checks passed (1 warning)"), "{text}");

    let both = z.config(dir.path(), "chk", &instances(&z));
    let out = z.exporter(&both, &["check"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    // One line names each zone with the instance that reads it, in the period's order.
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("ok   {what}: ")))
        .unwrap_or_else(|| panic!("no passing zones line in\n{text}"));
    for (zone, job) in [
        ("RGW_ZONE_A", "usage_zone_a"),
        ("RGW_ZONE_B", "usage_zone_b"),
    ] {
        let read = format!("{}/{} by {job}", z.get("RGW_ZONEGROUP"), z.get(zone));
        assert!(line.contains(&read), "missing {read:?} in {line}");
    }
    assert!(!text.contains("warn "), "{text}");
}
