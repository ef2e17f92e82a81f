//! The `records` format: newline-delimited JSON, one flat, self-contained record per line, so
//! that query engines (DuckDB, Trino, Spark, Athena) read an archive as it is, with no loader.
//!
//! Usage gives one record per (window, owner, bucket, category); capacity one per (fire, CRUSH
//! node) at the job's `detail` (roots, then hosts, then OSDs). Every record starts with the same
//! fields: `schema_version`, `kind`, `job`, `cluster`, `zone` (the instance's labels, `null`
//! when unset), `fire_time`, `window_start`, `window_end` (RFC 3339 UTC; the window is `null`
//! for capacity), then its names and its counters as integers. Records come sorted (owner,
//! bucket, category; capacity in Ceph's order), so the same window always renders to the same
//! bytes and idempotent keys still mean identical objects.

use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::osd_df::CapacityNode;
use crate::snapshot::{Snapshot, SnapshotData};
use crate::usage::Counters;

/// The version of a record's layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Writes the snapshot's records into `out`.
pub fn write(snapshot: &Snapshot, out: &mut impl Write) -> io::Result<()> {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let (kind, window) = match &snapshot.data {
        SnapshotData::Capacity(_) => ("capacity", None),
        SnapshotData::Usage(u) => ("usage", Some((time(u.window.start), time(u.window.end)))),
    };
    // The fields every record of this snapshot starts with, rendered once.
    let head = format!(
        "{{\"schema_version\":{SCHEMA_VERSION},\"kind\":\"{kind}\",\"job\":{},\"cluster\":{},\
         \"zone\":{},\"fire_time\":\"{}\",\"window_start\":{},\"window_end\":{}",
        json(&*snapshot.job)?,
        json(&snapshot.labels.cluster)?,
        json(&snapshot.labels.zone)?,
        time(snapshot.fire_time),
        json(&window.as_ref().map(|w| &w.0))?,
        json(&window.as_ref().map(|w| &w.1))?,
    );
    match &snapshot.data {
        SnapshotData::Usage(u) => {
            for b in u.buckets.iter().flatten() {
                let names = format!(
                    ",\"owner\":{},\"bucket\":{}",
                    json(&*b.owner)?,
                    json(&*b.bucket)?
                );
                for (category, c) in b.categories.iter() {
                    write!(out, "{head}{names},\"category\":{}", json(category)?)?;
                    counters(out, c)?;
                }
            }
        }
        SnapshotData::Capacity(c) => {
            let levels = [("root", &c.roots), ("host", &c.hosts), ("osd", &c.osds)];
            for (level, nodes) in levels {
                for n in nodes.iter() {
                    node(out, &head, level, n)?;
                }
            }
        }
    }
    Ok(())
}

fn counters(out: &mut impl Write, c: &Counters) -> io::Result<()> {
    writeln!(
        out,
        ",\"ops\":{},\"successful_ops\":{},\"bytes_sent\":{},\"bytes_received\":{}}}",
        c.ops, c.successful_ops, c.bytes_sent, c.bytes_received
    )
}

fn node(out: &mut impl Write, head: &str, level: &str, n: &CapacityNode) -> io::Result<()> {
    writeln!(
        out,
        "{head},\"level\":\"{level}\",\"id\":{},\"name\":{},\"status\":{},\"kb\":{},\
         \"kb_used\":{},\"kb_avail\":{}}}",
        n.id,
        json(&n.name)?,
        json(&n.status)?,
        n.kb,
        n.kb_used,
        n.kb_avail
    )
}

fn json(value: &(impl serde::Serialize + ?Sized)) -> io::Result<String> {
    serde_json::to_string(value).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{self, Compression, Format};
    use crate::snapshot::Labels;
    use crate::testutil::{fixture, utc};
    use crate::window::Window;
    use serde_json::Value;

    fn usage_snapshot() -> Snapshot {
        // The hour the fixture was captured in.
        let window = Window {
            start: utc("2026-11-22T17:00:00Z"),
            end: utc("2026-11-22T18:00:00Z"),
        };
        let report = crate::usage::parse(&fixture("admin-usage-all.json"), window, true).unwrap();
        Snapshot {
            job: "usage_zone_a".into(),
            labels: Labels {
                cluster: Some("main".into()),
                zone: Some("zone-a".into()),
            },
            fire_time: utc("2026-11-22T18:05:00Z"),
            collected_at: utc("2026-11-22T18:05:07Z"),
            cluster_fsid: None,
            data: SnapshotData::Usage(report),
        }
    }

    fn lines(snapshot: &Snapshot) -> Vec<Value> {
        let mut out = Vec::new();
        write(snapshot, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'));
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn usage_is_one_flat_record_per_owner_bucket_and_category() {
        let snapshot = usage_snapshot();
        let SnapshotData::Usage(report) = &snapshot.data else {
            unreachable!()
        };
        let buckets = report.buckets.as_ref().unwrap();
        let records = lines(&snapshot);
        assert_eq!(
            records.len(),
            buckets.iter().map(|b| b.categories.len()).sum::<usize>()
        );
        let first = &records[0];
        for (field, want) in [
            ("schema_version", Value::from(1)),
            ("kind", "usage".into()),
            ("job", "usage_zone_a".into()),
            ("cluster", "main".into()),
            ("zone", "zone-a".into()),
            ("fire_time", "2026-11-22T18:05:00Z".into()),
            ("window_start", "2026-11-22T17:00:00Z".into()),
            ("window_end", "2026-11-22T18:00:00Z".into()),
        ] {
            assert_eq!(first[field], want, "{field}");
        }
        // Each record's counters are the report's, found by its names; nothing is nested.
        for r in &records {
            let b = buckets
                .iter()
                .find(|b| *b.owner == r["owner"] && *b.bucket == r["bucket"])
                .unwrap();
            let c = b.categories.get(r["category"].as_str().unwrap()).unwrap();
            assert_eq!(r["ops"], c.ops);
            assert_eq!(r["bytes_sent"], c.bytes_sent);
            assert_eq!(r["bytes_received"], c.bytes_received);
            assert_eq!(r["successful_ops"], c.successful_ops);
            assert!(r.as_object().unwrap().values().all(|v| !v.is_object()));
        }
        // Sorted by owner, bucket, category.
        let names: Vec<(String, String, String)> = records
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap().to_string();
                (s("owner"), s("bucket"), s("category"))
            })
            .collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    }

    #[test]
    fn capacity_is_a_record_per_node_at_the_jobs_detail_with_no_window() {
        let report = crate::osd_df::parse(&fixture("ceph-osd-df-tree.json")).unwrap();
        let snapshot = Snapshot {
            job: "pool_df".into(),
            labels: Labels::default(),
            fire_time: utc("2026-11-22T13:05:00Z"),
            collected_at: utc("2026-11-22T13:05:01Z"),
            cluster_fsid: None,
            data: SnapshotData::Capacity(report.clone()),
        };
        let records = lines(&snapshot);
        let levels: Vec<&str> = records
            .iter()
            .map(|r| r["level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["root", "host", "osd", "osd"]);
        let root = &records[0];
        assert_eq!(
            (&root["name"], &root["kb"]),
            (&"default".into(), &report.roots[0].kb.into())
        );
        assert_eq!(
            (&root["cluster"], &root["window_start"]),
            (&Value::Null, &Value::Null)
        );
        assert_eq!(records[2]["status"], "up");
    }

    #[test]
    fn the_same_window_renders_the_same_bytes_plain_or_gzipped() {
        let snapshot = usage_snapshot();
        let render = |c| {
            let mut out = Vec::new();
            format::render_compressed(&snapshot, Format::Records, c, chrono_tz::UTC, &mut out)
                .unwrap();
            out
        };
        let (plain, gz) = (render(Compression::None), render(Compression::Gzip));
        assert_eq!(plain, render(Compression::None));
        assert_eq!(gz, render(Compression::Gzip), "gzip holds no time or name");
        assert_eq!(&gz[..2], b"\x1f\x8b");
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
    }
}
