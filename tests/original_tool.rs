//! The `text` capacity object, key and body, byte for byte against the original tool's
//! formatting logic (`tests/original_tool.py`, run with python3) on real captured trees, in
//! several time zones, including instants on both sides of a fall-back hour.

use std::path::{Path, PathBuf};
use std::process::Command;

use ceph_stats_exporter::config::{Config, JobConfig};
use ceph_stats_exporter::format::{Compression, Format};
use ceph_stats_exporter::osd_df;
use ceph_stats_exporter::pipeline::to_object;
use ceph_stats_exporter::snapshot::{Snapshot, SnapshotData};
use chrono::{DateTime, Utc};

const TREES: &[&str] = &["ceph-osd-df-tree.json", "ceph-osd-df-tree.second-root.json"];
const ZONES: &[&str] = &[
    "UTC",
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
];
const FIRES: &[&str] = &[
    "2026-11-22T13:05:00Z",
    // Summer time, and a local date that is already the next day east of UTC.
    "2026-07-01T23:59:50Z",
    // Berlin's fall-back: both are 02:30 local there.
    "2026-10-25T00:30:00Z",
    "2026-10-25T01:30:00Z",
    "2026-12-31T16:00:00Z",
];

fn path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// The key and body the original would have written at each of `fires` on a server in `zone`.
fn original(tree: &Path, zone: &str, fires: &[DateTime<Utc>]) -> Vec<(String, Vec<u8>)> {
    let out = Command::new("python3")
        .arg(path("tests/original_tool.py"))
        .arg(tree)
        .args(fires.iter().map(|f| f.timestamp().to_string()))
        .env("TZ", zone)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for this test: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects: Vec<_> = out
        .stdout
        .strip_suffix(b"\0")
        .expect("NUL-terminated objects")
        .split(|&b| b == 0)
        .map(|object| {
            let newline = object.iter().position(|&b| b == b'\n').expect("a key");
            let key = String::from_utf8(object[..newline].to_vec()).expect("UTF-8");
            (key, object[newline + 1..].to_vec())
        })
        .collect();
    assert_eq!(objects.len(), fires.len());
    objects
}

/// The pool_df job configured with the default key and `key_time_zone = zone`.
fn job(zone: &str) -> JobConfig {
    let config = format!(
        "[s3]\nendpoint = \"http://127.0.0.1:8000\"\naccess_key = \"AK\"\nsecret_key = \"SK\"\n\
         [jobs.pool_df]\nevery = \"10s\"\nkey_time_zone = \"{zone}\"\n\
         key_time_zone_ambiguous = \"accept\"\n"
    );
    let config = Config::from_toml(Path::new("test.toml"), &config).expect("valid config");
    let job = config.job("pool_df").expect("pool_df is enabled").clone();
    assert_eq!(job.common.format, Format::Text);
    job
}

/// The key and body the exporter writes for the same answer and fire time.
fn exporter(job: &JobConfig, tree: &Path, fire: DateTime<Utc>) -> (String, Vec<u8>) {
    let answer = std::fs::read(tree).expect("fixture");
    let snapshot = Snapshot {
        job: "pool_df".into(),
        labels: Default::default(),
        fire_time: fire,
        collected_at: fire,
        cluster_fsid: None,
        data: SnapshotData::Capacity(osd_df::parse(&answer).expect("a good tree")),
    };
    let key = job.common.key.render(fire);
    let object = to_object(
        &snapshot,
        key.clone(),
        Format::Text,
        Compression::None,
        job.common.key.zone(),
    )
    .expect("rendered");
    let body = object.body.read_range(0, object.body.len()).expect("body");
    (key, body.to_vec())
}

#[test]
fn text_capacity_objects_are_the_originals_byte_for_byte() {
    let fires: Vec<_> = FIRES.iter().map(|f| utc(f)).collect();
    for zone in ZONES {
        let job = job(zone);
        for tree in TREES {
            let tree = path(&format!("tests/fixtures/{tree}"));
            let originals = original(&tree, zone, &fires);
            for (&fire, (want_key, want_body)) in fires.iter().zip(originals) {
                let (key, body) = exporter(&job, &tree, fire);
                assert_eq!(key, want_key, "{} in {zone} at {fire}", tree.display());
                assert_eq!(
                    String::from_utf8_lossy(&body),
                    String::from_utf8_lossy(&want_body),
                    "{} in {zone} at {fire}",
                    tree.display()
                );
                assert_eq!(body, want_body);
            }
        }
    }
}

/// The comparison above means something only if python applied the zone: one case spelled out.
#[test]
fn the_original_runs_in_the_zone_it_is_given() {
    let tree = path("tests/fixtures/ceph-osd-df-tree.second-root.json");
    let (key, body) = original(&tree, "Asia/Shanghai", &[utc("2026-11-22T13:05:00Z")]).remove(0);
    assert_eq!(key, "pool.2026-11-22/21/05/00");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "2026/11/22/21:05:00>archive:1048576 kb 1047428 kb_avail 1147 kb_used\n\
         2026/11/22/21:05:00>default:2097152 kb 2095771 kb_avail 1379 kb_used\n"
    );
}
