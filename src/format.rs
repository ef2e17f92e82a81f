//! Output formats: how a [`Snapshot`] becomes the bytes of an object.
//!
//! * `text` reproduces, byte for byte, the bodies of the Python tool this exporter replaces,
//!   because operators have scripts that read them:
//!   `2026/11/22/13:05:00>default:1048576 kb 524288 kb_avail 524288 kb_used\n` (one line per
//!   CRUSH root, each ending in `\n`, the last one too, as the original wrote them) and
//!   `op: 42 bytes_received:1024 bytes_sent:2048` (the window's cluster totals, no newline).
//! * `json` is one self-describing document: schema version, kind, job, cluster fsid, fire time,
//!   window and every number the job collected. It holds nothing that varies between two runs
//!   for the same fire time (no collection time, no exporter version: those go in metadata), so
//!   a retry or a second exporter writes the same bytes.
//! * `records` is newline-delimited JSON, one flat record per line, for query engines (see
//!   [`crate::records`]).
//!
//! Any format can be stored gzip-compressed ([`Compression`]): the object's bytes (and its
//! `Content-MD5`) are then the compressed ones, and its key ends in `.gz`.

use std::io::{self, Write};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::snapshot::{Snapshot, SnapshotData};

/// The version of the JSON document's layout; bumped on any incompatible change.
pub const JSON_SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Text,
    Json,
    Records,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Records => "application/x-ndjson",
        }
    }
}

/// How an object's rendered bytes are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    /// Deterministic gzip (no name, no time in the header): the same body, the same bytes.
    Gzip,
}

impl Compression {
    /// The object's `Content-Type` for bytes of `format`.
    pub fn content_type(self, format: Format) -> &'static str {
        match self {
            Compression::None => format.content_type(),
            Compression::Gzip => "application/gzip",
        }
    }
}

#[derive(Serialize)]
struct JsonDocument<'a> {
    schema_version: u32,
    kind: &'static str,
    job: &'a str,
    /// The instance's labels, when the operator gave them.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone: Option<&'a str>,
    cluster_fsid: Option<&'a str>,
    fire_time: chrono::DateTime<chrono::Utc>,
    #[serde(flatten)]
    data: JsonData<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsonData<'a> {
    Capacity(&'a crate::osd_df::CapacityReport),
    Usage(&'a crate::usage::UsageReport),
}

/// Renders a snapshot as a stream of writes into `out` (a temporary file for large reports).
/// `zone` is the keys' zone: the text capacity stamps show the same wall clock as the key (JSON
/// stays in UTC). Only `out` can fail.
pub fn render_to(snapshot: &Snapshot, format: Format, zone: Tz, out: impl Write) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    match format {
        Format::Text => out.write_all(render_text(snapshot, zone).as_bytes())?,
        Format::Json => {
            let (kind, data) = match &snapshot.data {
                SnapshotData::Capacity(c) => ("capacity", JsonData::Capacity(c)),
                SnapshotData::Usage(u) => ("usage", JsonData::Usage(u)),
            };
            let doc = JsonDocument {
                schema_version: JSON_SCHEMA_VERSION,
                kind,
                job: &snapshot.job,
                cluster: snapshot.labels.cluster.as_deref(),
                zone: snapshot.labels.zone.as_deref(),
                cluster_fsid: snapshot.cluster_fsid.as_deref(),
                fire_time: snapshot.fire_time,
                data,
            };
            serde_json::to_writer_pretty(&mut out, &doc)?;
            out.write_all(b"\n")?;
        }
        Format::Records => crate::records::write(snapshot, &mut out)?,
    }
    out.flush()
}

/// [`render_to`], compressed as `compression` says.
pub fn render_compressed(
    snapshot: &Snapshot,
    format: Format,
    compression: Compression,
    zone: Tz,
    out: impl Write,
) -> io::Result<()> {
    match compression {
        Compression::None => render_to(snapshot, format, zone, out),
        Compression::Gzip => {
            let mut gz = flate2::GzBuilder::new().write(out, flate2::Compression::default());
            render_to(snapshot, format, zone, &mut gz)?;
            gz.finish().map(drop)
        }
    }
}

fn render_text(snapshot: &Snapshot, zone: Tz) -> String {
    match &snapshot.data {
        SnapshotData::Capacity(c) => {
            let stamp = snapshot
                .fire_time
                .with_timezone(&zone)
                .format("%Y/%m/%d/%H:%M:%S");
            c.roots
                .iter()
                .map(|r| {
                    format!(
                        "{stamp}>{}:{} kb {} kb_avail {} kb_used\n",
                        r.name, r.kb, r.kb_avail, r.kb_used
                    )
                })
                .collect()
        }
        SnapshotData::Usage(u) => format!(
            "op: {} bytes_received:{} bytes_sent:{}",
            u.total.ops, u.total.bytes_received, u.total.bytes_sent
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osd_df::{CapacityNode, CapacityReport, CapacitySummary};
    use crate::testutil::utc;
    use crate::usage::{Counters, UsageReport};
    use crate::window::Window;
    use std::collections::BTreeMap;

    fn render(snapshot: &Snapshot, format: Format) -> Vec<u8> {
        render_in(snapshot, format, Tz::UTC)
    }

    fn render_in(snapshot: &Snapshot, format: Format, zone: Tz) -> Vec<u8> {
        let mut out = Vec::new();
        render_to(snapshot, format, zone, &mut out).unwrap();
        out
    }

    fn root(name: &str, kb: u64, kb_avail: u64, kb_used: u64) -> CapacityNode {
        CapacityNode {
            id: -1,
            name: name.into(),
            node_type: "root".into(),
            kb,
            kb_used,
            kb_avail,
            utilization: 50.0,
            status: None,
            children: vec![],
        }
    }

    fn capacity(roots: Vec<CapacityNode>) -> Snapshot {
        Snapshot {
            job: "pool_df".into(),
            labels: Default::default(),
            fire_time: utc("2026-11-22T13:05:00Z"),
            collected_at: utc("2026-11-22T13:05:00.4Z"),
            cluster_fsid: Some("fsid-1".into()),
            data: SnapshotData::Capacity(CapacityReport {
                roots,
                hosts: vec![],
                osds: vec![],
                summary: CapacitySummary {
                    total_kb: 1,
                    total_kb_used: 0,
                    total_kb_avail: 1,
                    average_utilization: 0.0,
                },
            }),
        }
    }

    fn usage() -> Snapshot {
        let total = Counters {
            ops: 42,
            successful_ops: 40,
            bytes_sent: 2048,
            bytes_received: 1024,
        };
        Snapshot {
            job: "rgw_usage".into(),
            labels: Default::default(),
            fire_time: utc("2026-11-22T13:05:00Z"),
            collected_at: utc("2026-11-22T13:05:01Z"),
            cluster_fsid: None,
            data: SnapshotData::Usage(UsageReport {
                window: Window {
                    start: utc("2026-11-22T12:00:00Z"),
                    end: utc("2026-11-22T13:00:00Z"),
                },
                total,
                users: BTreeMap::new(),
                buckets: None,
            }),
        }
    }

    #[test]
    fn text_reproduces_the_original_capacity_body() {
        let s = capacity(vec![root("default", 1048576, 524288, 524288)]);
        assert_eq!(
            render(&s, Format::Text),
            b"2026/11/22/13:05:00>default:1048576 kb 524288 kb_avail 524288 kb_used\n"
        );
        assert_eq!(render(&s, Format::Text).len(), 70);
        let s = capacity(vec![root("archive", 10, 7, 3), root("default", 20, 15, 5)]);
        assert_eq!(
            String::from_utf8(render(&s, Format::Text)).unwrap(),
            "2026/11/22/13:05:00>archive:10 kb 7 kb_avail 3 kb_used\n\
             2026/11/22/13:05:00>default:20 kb 15 kb_avail 5 kb_used\n"
        );
    }

    #[test]
    fn text_capacity_stamps_follow_the_key_zone_and_json_stays_utc() {
        let s = capacity(vec![root("default", 20, 15, 5)]);
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(
            String::from_utf8(render_in(&s, Format::Text, shanghai)).unwrap(),
            "2026/11/22/21:05:00>default:20 kb 15 kb_avail 5 kb_used\n"
        );
        assert_eq!(
            render_in(&s, Format::Json, shanghai),
            render(&s, Format::Json)
        );
        assert_eq!(
            render_in(&usage(), Format::Text, shanghai),
            render(&usage(), Format::Text)
        );
    }

    #[test]
    fn text_reproduces_the_original_usage_body() {
        assert_eq!(
            render(&usage(), Format::Text),
            b"op: 42 bytes_received:1024 bytes_sent:2048"
        );
    }

    #[test]
    fn each_format_declares_its_content_type() {
        assert_eq!(Format::Text.content_type(), "text/plain; charset=utf-8");
        assert_eq!(Format::Json.content_type(), "application/json");
    }

    #[test]
    fn json_is_self_describing_and_free_of_run_specific_values() {
        let doc: serde_json::Value =
            serde_json::from_slice(&render(&usage(), Format::Json)).unwrap();
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["kind"], "usage");
        assert_eq!(doc["fire_time"], "2026-11-22T13:05:00Z");
        assert_eq!(doc["window"]["start"], "2026-11-22T12:00:00Z");
        assert_eq!(doc["total"]["bytes_received"], 1024);
        assert!(doc.get("collected_at").is_none());

        let cap = capacity(vec![root("default", 20, 15, 5)]);
        let doc: serde_json::Value = serde_json::from_slice(&render(&cap, Format::Json)).unwrap();
        assert_eq!(doc["kind"], "capacity");
        assert_eq!(doc["cluster_fsid"], "fsid-1");
        assert_eq!(doc["roots"][0]["kb_avail"], 15);

        let mut later = cap.clone();
        later.collected_at = utc("2026-11-22T13:05:09Z");
        assert_eq!(render(&cap, Format::Json), render(&later, Format::Json));
    }
}
