//! Trimming the usage log, against the real RGW of the two-zone cluster (zone-a; see
//! tests/zones.rs for how dev/test.sh starts it). `#[ignore]`d like the other cluster tests.
//!
//! History hours old is made with gateways of zone-a whose clocks run 3 and 1 hours behind
//! (dev/ceph/past-rgw.sh, libfaketime): RGW logs a request under its own clock's hour, so traffic
//! sent through them now lands 3 and 1 hours back. The exporter and radosgw-admin run on the real
//! clock. Each case has its own user and an instance limited to that `uid`, so trims touch
//! nobody else's log.

mod support;

use std::path::Path;
use std::process::Output;

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};
use serde_json::Value;

use support::cluster::{counters, lock, nonce, state_dir, stderr, stdout, User};
use support::zones::Zones;

/// The users of the cases: their traffic, their instance (`trim_<case>`), their usage log.
const CASES: [(&str, &str); 5] = [
    ("ok", "TRIMOKACCESSKEY00001"),
    ("gone", "TRIMGONEACCESSKEY001"),
    ("alt", "TRIMALTACCESSKEY0001"),
    ("nocap", "TRIMNOCAPACCESSKEY01"),
    ("hand", "TRIMHANDACCESSKEY001"),
];
/// An admin user with `usage=read` only: the `nocap` instance's keys.
const READER: (&str, &str) = ("TRIMREADERACCESSKEY1", "trim-reader-secret-for-tests-only");

fn user(case: &str) -> User {
    let access = CASES.iter().find(|(c, _)| *c == case).unwrap().1;
    User {
        access,
        secret: format!("trim-{case}-secret-for-tests-only"),
    }
}

fn ensure_users(z: &Zones) {
    let exists = |uid: &str| {
        z.admin(&["user", "info", &format!("--uid={uid}")])
            .status
            .success()
    };
    let create = |uid: &str, access: &str, secret: &str| {
        if !exists(uid) {
            let out = z.admin(&[
                "user",
                "create",
                &format!("--uid={uid}"),
                &format!("--display-name={uid}"),
                &format!("--access-key={access}"),
                &format!("--secret-key={secret}"),
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
    };
    for (case, access) in CASES {
        create(&format!("trim-{case}"), access, &user(case).secret);
    }
    create("trim-reader", READER.0, READER.1);
    let caps = z.admin(&["caps", "add", "--uid=trim-reader", "--caps=usage=read"]);
    assert!(caps.status.success(), "{}", stderr(&caps));
}

fn usage_show(z: &Zones, extra: &[&str], from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let (from, to) = (
        format!("--start-date={}", fmt(from)),
        format!("--end-date={}", fmt(to)),
    );
    let mut args = vec!["usage", "show", "--show-log-entries=true", &from, &to];
    args.extend(extra);
    let out = z.admin(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Whether `uid` has entries in zone-a's usage log in the hour starting at `hour`. (RGW sums a
/// bucket's hours into one entry when a read spans several, so each hour is read alone.)
fn logged(z: &Zones, uid: &str, hour: DateTime<Utc>) -> bool {
    let v = usage_show(
        z,
        &[&format!("--uid={uid}")],
        hour,
        hour + TimeDelta::hours(1),
    );
    !v["entries"].as_array().unwrap().is_empty()
}

fn jobs(prefix: &str, trim_after: &str) -> String {
    CASES
        .iter()
        .map(|(case, _)| {
            let keys = if *case == "nocap" {
                format!(
                    "rgw = {{ access_key = \"{}\", secret_key = \"{}\" }}\n",
                    READER.0, READER.1
                )
            } else {
                String::new()
            };
            format!(
                "\n[jobs.trim_{case}]\nkind = \"rgw_usage\"\nevery = \"1h\"\nformat = \"json\"\n\
                 key = \"{prefix}/{case}/usage.%Y-%m-%d/%H/%M/%S\"\nuid = \"trim-{case}\"\n\
                 trim_after = \"{trim_after}\"\n{keys}"
            )
        })
        .collect()
}

fn run(z: &Zones, cfg: &Path, args: &[&str]) -> Output {
    let out = z.exporter(cfg, args);
    assert!(
        out.status.success(),
        "{args:?}: the run fails\n{}",
        stderr(&out)
    );
    out
}

#[test]
#[ignore = "needs the two-zone cluster: run dev/test.sh"]
fn only_windows_verified_archived_are_trimmed() {
    let _l = lock();
    let z = Zones::load();
    ensure_users(&z);
    // The traffic must stay in the hours it was sent for: not too close to an hour's end.
    if Utc::now().minute() >= 56 {
        let next = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap() + TimeDelta::hours(1);
        std::thread::sleep(
            (next - Utc::now() + TimeDelta::seconds(5))
                .to_std()
                .unwrap(),
        );
    }
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    let h = |n: i64| hour + TimeDelta::hours(n);
    let (past3, past1) = (z.past_gateway(3, 8), z.past_gateway(1, 9));
    let now_gw = z.get("RGW_ENDPOINT").to_string();
    let tag = Utc::now().format("%H%M%S%f").to_string();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    std::fs::write(&body, vec![5u8; 4096]).unwrap();
    for (case, _) in CASES {
        let (u, bucket) = (user(case), format!("/trim-{case}-{tag}"));
        z.ok_behind(&u, &past3, 3, "PUT", &bucket, None);
        z.ok_behind(&u, &past3, 3, "PUT", &format!("{bucket}/o"), Some(&body));
        z.ok_behind(&u, &past1, 1, "GET", &format!("{bucket}/o"), None);
        z.ok(&u, &now_gw, "GET", &format!("{bucket}/o"), None);
    }
    // Once RGW has flushed, the traffic is in hours h-3, h-1 and h.
    support::cluster::settled(|| usage_show(&z, &[], h(-5), h(1)));
    let logged = |case: &str, n: i64| logged(&z, &format!("trim-{case}"), h(n));
    for (case, _) in CASES {
        for n in [-3, -1, 0] {
            assert!(logged(case, n), "{case}: nothing logged in hour {}", h(n));
        }
    }

    // The jobs have archived up to four hours ago; the first run catches up from there.
    let prefix = nonce("trim");
    let cfg = z.write_config(dir.path(), &jobs(&prefix, "1000d"));
    let state = state_dir(&cfg);
    std::fs::create_dir_all(&state).unwrap();
    for (case, _) in CASES {
        let seeded = format!("{{\"delivered_until\": \"{}\"}}", h(-4).to_rfc3339());
        std::fs::write(state.join(format!("trim_{case}.state.json")), seeded).unwrap();
    }
    run(&z, &cfg, &["--once"]);
    // The window [h-3, h-2) is asked for by the fire at h-1 and named after it.
    let key = |case: &str| {
        format!(
            "{prefix}/{case}/usage.{}",
            h(-1).format("%Y-%m-%d/%H/%M/%S")
        )
    };
    let archived: Value = serde_json::from_slice(&z.get_object(&key("alt"))).unwrap();
    assert_eq!(
        archived["window"]["start"],
        h(-3).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    // What RGW logged for the window, as radosgw-admin reads it (earlier runs add to the hour).
    let truth = |case: &str| {
        let uid = format!("--uid=trim-{case}");
        let v = usage_show(&z, &[&uid], h(-3), h(-2));
        counters(&v["summary"][0]["total"])
    };
    let alt_truth = truth("alt");
    assert!(alt_truth[3] >= 4096, "{alt_truth:?}");
    assert_eq!(counters(&archived["users"]["trim-alt"]["total"]), alt_truth);
    for (case, _) in CASES {
        assert!(logged(case, -3), "trim_after 1000d trims nothing: {case}");
    }

    // gone: its object is deleted; alt: its object is changed; hand: its hour is trimmed by hand.
    let bucket = z.get("RGW_BUCKET");
    let a = z.get("RGW_ENDPOINT");
    let del = z.request(
        None,
        a,
        0,
        "DELETE",
        &format!("/{bucket}/{}", key("gone")),
        None,
    );
    assert!(del.status.success(), "{}", stdout(&del));
    let forged = dir.path().join("forged");
    std::fs::write(&forged, b"{\"not\": \"what was read\"}").unwrap();
    let put = z.request(
        None,
        a,
        0,
        "PUT",
        &format!("/{bucket}/{}", key("alt")),
        Some(&forged),
    );
    assert!(put.status.success(), "{}", stdout(&put));
    let hand_archive = z.get_object(&key("hand"));
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let by_hand = z.admin(&[
        "usage",
        "trim",
        "--uid=trim-hand",
        &format!("--start-date={}", fmt(h(-3))),
        &format!("--end-date={}", fmt(h(-2))),
    ]);
    assert!(by_hand.status.success(), "{}", stderr(&by_hand));
    assert!(!logged("hand", -3));

    // A dry run says what it would trim, and trims nothing.
    let cfg = z.write_config(dir.path(), &jobs(&prefix, "2h"));
    let out = run(&z, &cfg, &["--once", "--dry-run"]);
    let log = stderr(&out);
    assert!(log.contains("dry run: would trim"), "{log}");
    assert!(logged("ok", -3), "the dry run trimmed");

    // The real run: windows that ended 2 hours ago, behind the checkpoint, verified.
    let out = run(&z, &cfg, &["--once"]);
    let log = stderr(&out);
    // ok: [h-3, h-2) trimmed; [h-1, h) (archived, but only 1 hour old) and now stay.
    assert!(!logged("ok", -3), "{log}");
    assert!(logged("ok", -1) && logged("ok", 0), "{log}");
    // gone: not archived, so not trimmed.
    assert!(logged("gone", -3), "{log}");
    assert!(log.contains("is not in the bucket"), "{log}");
    // alt: differs, so archived again and not trimmed.
    assert!(logged("alt", -3), "{log}");
    assert!(log.contains("trimming REFUSED"), "{log}");
    assert_eq!(
        serde_json::from_slice::<Value>(&z.get_object(&key("alt"))).unwrap(),
        archived,
        "re-archived as read"
    );
    // hand: the log is empty for the window, its object is not: kept as it was.
    assert!(log.contains("trimmed already"), "{log}");
    assert_eq!(z.get_object(&key("hand")), hand_archive);
    // nocap: refused with the remedy; its archive is there all the same.
    assert!(logged("nocap", -3), "{log}");
    assert!(log.contains("usage=write"), "{log}");
    let nocap: Value = serde_json::from_slice(&z.get_object(&key("nocap"))).unwrap();
    assert_eq!(
        counters(&nocap["users"]["trim-nocap"]["total"]),
        truth("nocap")
    );

    // The next fire verifies alt again, now equal, and trims it; gone stays untrimmed.
    run(&z, &cfg, &["--once"]);
    assert!(!logged("alt", -3) && logged("alt", -1));
    assert!(logged("gone", -3));

    // check names the missing cap of the nocap instance's keys.
    let out = z.exporter(&cfg, &["check"]);
    let text = stdout(&out);
    for want in [
        "ok   trim_ok: access key EXPORTERACCESSKEY0001 may trim the usage log",
        &format!(
            "FAIL trim_nocap: access key {} may trim the usage log",
            READER.0
        ),
        "--caps=\"usage=write\"",
        // Instances limited to one uid read part of a zone's log: they do not count as its reader.
        "(5 instance(s) limited to one uid were not counted",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}
