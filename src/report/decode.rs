//! Reading an archived object back: the bytes of any format the exporter writes (`text`,
//! `json`, `records`, each optionally gzip-compressed) become one [`Archived`] value, or an
//! error that says why the object is not one of ours.
//!
//! The format is recognised from the bytes, not from the job's configuration: an archive spans
//! configuration changes, so one period can hold text objects and records side by side. What a
//! format does not carry stays unknown rather than zero: a text usage body has no
//! `successful_ops` and no breakdown, a text capacity body no job name.

use std::collections::BTreeMap;
use std::io::Read;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::usage::Counters;
use crate::window::Window;

/// The layout versions this reader understands (the `json` document's and the records').
const SCHEMA_VERSION: u32 = 1;

/// The most bytes a gzip-compressed object may expand to: a bomb is refused, not inflated.
pub const MAX_INFLATED_BYTES: u64 = 4 << 30;

/// What kind of snapshot an object must hold, as its job says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Usage,
    Capacity,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Usage => "usage",
            Kind::Capacity => "capacity",
        }
    }
}

/// Which of the three formats an object was in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Text,
    Json,
    Records,
}

/// An archived object, read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Archived {
    pub layout: Layout,
    /// What the body says of itself (text bodies say nothing of these).
    pub job: Option<String>,
    pub fire_time: Option<DateTime<Utc>>,
    pub data: Data,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// A usage window; text bodies do not name theirs (the object's metadata does).
    Usage {
        window: Option<Window>,
        detail: Detail,
    },
    Capacity(Vec<Root>),
}

/// How finely a usage object breaks its window down.
#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    /// The window's totals only (text bodies): no `successful_ops`.
    Totals {
        ops: u64,
        bytes_sent: u64,
        bytes_received: u64,
    },
    /// Per user and category (a json document of a job without entries).
    Users(Vec<Row>),
    /// Per owner, bucket and category (records; json documents with entries).
    Buckets(Vec<Row>),
}

/// One line of usage: `bucket` is `None` when the object has no per-bucket breakdown.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub owner: String,
    pub bucket: Option<String>,
    pub category: String,
    pub counters: CountersKey,
}

/// [`Counters`], ordered so that rows sort (and hash) whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CountersKey {
    pub ops: u64,
    pub successful_ops: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl From<Counters> for CountersKey {
    fn from(c: Counters) -> Self {
        CountersKey {
            ops: c.ops,
            successful_ops: c.successful_ops,
            bytes_sent: c.bytes_sent,
            bytes_received: c.bytes_received,
        }
    }
}

/// One CRUSH root's capacity at a fire, in KiB as Ceph reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    pub name: String,
    pub kb: u64,
    pub kb_used: u64,
    pub kb_avail: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("gzip data that does not inflate: {0}")]
    Gzip(String),
    #[error("inflates to more than {MAX_INFLATED_BYTES} bytes")]
    TooLarge,
    #[error("not UTF-8 (byte {0})")]
    NotUtf8(usize),
    #[error("empty object")]
    Empty,
    #[error("schema_version {found}, this exporter reads {SCHEMA_VERSION}")]
    SchemaVersion { found: u64 },
    #[error("a {found} snapshot where a {want} one was expected")]
    WrongKind { found: String, want: &'static str },
    #[error("not a {layout} body of the exporter: {reason}")]
    Shape {
        layout: &'static str,
        reason: String,
    },
    #[error("records line {line}: {reason}")]
    Record { line: usize, reason: String },
}

/// Reads `bytes` (an object's whole body) as a snapshot of `kind`.
pub fn decode(bytes: &[u8], kind: Kind) -> Result<Archived, DecodeError> {
    let inflated;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        inflated = inflate(bytes)?;
        &inflated[..]
    } else {
        bytes
    };
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::NotUtf8(e.valid_up_to()))?;
    if text.is_empty() {
        return match kind {
            // An hour nobody used renders as no records at all: its window is in the metadata.
            Kind::Usage => Ok(Archived {
                layout: Layout::Records,
                job: None,
                fire_time: None,
                data: Data::Usage {
                    window: None,
                    detail: Detail::Buckets(Vec::new()),
                },
            }),
            Kind::Capacity => Err(DecodeError::Empty),
        };
    }
    if text.starts_with("{\"") {
        records(text, kind)
    } else if text.starts_with('{') {
        document(text, kind)
    } else {
        match kind {
            Kind::Usage => usage_text(text),
            Kind::Capacity => capacity_text(text),
        }
    }
}

fn inflate(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Gzip(e.to_string()))?;
    if out.len() as u64 > MAX_INFLATED_BYTES {
        return Err(DecodeError::TooLarge);
    }
    Ok(out)
}

fn check_head(version: u64, found_kind: &str, kind: Kind) -> Result<(), DecodeError> {
    if version != u64::from(SCHEMA_VERSION) {
        return Err(DecodeError::SchemaVersion { found: version });
    }
    if found_kind != kind.name() {
        return Err(DecodeError::WrongKind {
            found: found_kind.to_string(),
            want: kind.name(),
        });
    }
    Ok(())
}

// The `json` document, as format.rs writes it (unknown fields are allowed: later minor
// additions must not make old readers refuse the archive).
#[derive(Deserialize)]
struct Document {
    schema_version: u64,
    kind: String,
    job: String,
    fire_time: DateTime<Utc>,
    window: Option<WindowDoc>,
    users: Option<BTreeMap<String, UserDoc>>,
    buckets: Option<Vec<BucketDoc>>,
    roots: Option<Vec<RootDoc>>,
}

#[derive(Deserialize)]
struct WindowDoc {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Deserialize)]
struct UserDoc {
    categories: BTreeMap<String, Counters>,
}

#[derive(Deserialize)]
struct BucketDoc {
    owner: String,
    bucket: String,
    categories: BTreeMap<String, Counters>,
}

#[derive(Deserialize)]
struct RootDoc {
    name: String,
    kb: u64,
    kb_used: u64,
    kb_avail: u64,
}

fn document(text: &str, kind: Kind) -> Result<Archived, DecodeError> {
    let shape = |reason: String| DecodeError::Shape {
        layout: "json",
        reason,
    };
    let doc: Document = serde_json::from_str(text).map_err(|e| shape(e.to_string()))?;
    check_head(doc.schema_version, &doc.kind, kind)?;
    let data = match kind {
        Kind::Usage => {
            let w = doc.window.ok_or_else(|| shape("no window".into()))?;
            let window = window(w.start, w.end).map_err(shape)?;
            let detail = match (doc.buckets, doc.users) {
                (Some(buckets), _) => Detail::Buckets(
                    buckets
                        .into_iter()
                        .flat_map(|b| rows(b.owner, Some(b.bucket), b.categories))
                        .collect(),
                ),
                (None, Some(users)) => Detail::Users(
                    users
                        .into_iter()
                        .flat_map(|(owner, u)| rows(owner, None, u.categories))
                        .collect(),
                ),
                (None, None) => return Err(shape("neither users nor buckets".into())),
            };
            Data::Usage {
                window: Some(window),
                detail,
            }
        }
        Kind::Capacity => Data::Capacity(
            doc.roots
                .ok_or_else(|| shape("no roots".into()))?
                .into_iter()
                .map(|r| Root {
                    name: r.name,
                    kb: r.kb,
                    kb_used: r.kb_used,
                    kb_avail: r.kb_avail,
                })
                .collect(),
        ),
    };
    Ok(Archived {
        layout: Layout::Json,
        job: Some(doc.job),
        fire_time: Some(doc.fire_time),
        data,
    })
}

/// One row per category of an owner's (bucket's) counters.
fn rows(
    owner: String,
    bucket: Option<String>,
    categories: BTreeMap<String, Counters>,
) -> impl Iterator<Item = Row> {
    categories.into_iter().map(move |(category, c)| Row {
        owner: owner.clone(),
        bucket: bucket.clone(),
        category,
        counters: c.into(),
    })
}

fn window(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Window, String> {
    Window::explicit(start, end).map_err(|e| format!("window: {e}"))
}

// One line of the records format (see records.rs); unknown fields are allowed.
#[derive(Deserialize)]
struct Record {
    schema_version: u64,
    kind: String,
    job: String,
    fire_time: DateTime<Utc>,
    window_start: Option<DateTime<Utc>>,
    window_end: Option<DateTime<Utc>>,
    // Usage.
    owner: Option<String>,
    bucket: Option<String>,
    category: Option<String>,
    ops: Option<u64>,
    successful_ops: Option<u64>,
    bytes_sent: Option<u64>,
    bytes_received: Option<u64>,
    // Capacity.
    level: Option<String>,
    name: Option<String>,
    kb: Option<u64>,
    kb_used: Option<u64>,
    kb_avail: Option<u64>,
}

fn records(text: &str, kind: Kind) -> Result<Archived, DecodeError> {
    // What every line must repeat: job, fire time, window.
    type Head = (
        String,
        DateTime<Utc>,
        Option<(DateTime<Utc>, DateTime<Utc>)>,
    );
    let mut head: Option<Head> = None;
    let mut rows = Vec::new();
    let mut roots = Vec::new();
    if !text.ends_with('\n') {
        return Err(DecodeError::Record {
            line: text.lines().count(),
            reason: "the last line has no newline: the object is cut short".into(),
        });
    }
    for (i, line) in text.lines().enumerate() {
        let bad = |reason: String| DecodeError::Record {
            line: i + 1,
            reason,
        };
        let r: Record = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        check_head(r.schema_version, &r.kind, kind)?;
        let this = (r.job.clone(), r.fire_time, r.window_start.zip(r.window_end));
        match &head {
            None => head = Some(this),
            Some(h) if *h != this => {
                return Err(bad(
                    "job, fire time or window differ from the first line's".into()
                ))
            }
            Some(_) => {}
        }
        let missing = |field: &str| bad(format!("no {field}"));
        match kind {
            Kind::Usage => rows.push(Row {
                owner: r.owner.ok_or_else(|| missing("owner"))?,
                bucket: Some(r.bucket.ok_or_else(|| missing("bucket"))?),
                category: r.category.ok_or_else(|| missing("category"))?,
                counters: CountersKey {
                    ops: r.ops.ok_or_else(|| missing("ops"))?,
                    successful_ops: r.successful_ops.ok_or_else(|| missing("successful_ops"))?,
                    bytes_sent: r.bytes_sent.ok_or_else(|| missing("bytes_sent"))?,
                    bytes_received: r.bytes_received.ok_or_else(|| missing("bytes_received"))?,
                },
            }),
            Kind::Capacity => {
                if r.level.as_deref() == Some("root") {
                    roots.push(Root {
                        name: r.name.ok_or_else(|| missing("name"))?,
                        kb: r.kb.ok_or_else(|| missing("kb"))?,
                        kb_used: r.kb_used.ok_or_else(|| missing("kb_used"))?,
                        kb_avail: r.kb_avail.ok_or_else(|| missing("kb_avail"))?,
                    });
                }
            }
        }
    }
    let (job, fire_time, span) = head.ok_or(DecodeError::Empty)?;
    let data = match kind {
        Kind::Usage => {
            let (start, end) = span.ok_or_else(|| DecodeError::Record {
                line: 1,
                reason: "a usage record without its window".into(),
            })?;
            let window =
                window(start, end).map_err(|reason| DecodeError::Record { line: 1, reason })?;
            Data::Usage {
                window: Some(window),
                detail: Detail::Buckets(rows),
            }
        }
        Kind::Capacity => Data::Capacity(roots),
    };
    Ok(Archived {
        layout: Layout::Records,
        job: Some(job),
        fire_time: Some(fire_time),
        data,
    })
}

/// `op: 42 bytes_received:1024 bytes_sent:2048`, exactly (the original tool's body).
fn usage_text(text: &str) -> Result<Archived, DecodeError> {
    let shape = || DecodeError::Shape {
        layout: "text usage",
        reason: format!(
            "expected `op: N bytes_received:N bytes_sent:N`, found {}",
            excerpt(text)
        ),
    };
    let rest = text.strip_prefix("op: ").ok_or_else(shape)?;
    let (ops, rest) = rest.split_once(" bytes_received:").ok_or_else(shape)?;
    let (received, sent) = rest.split_once(" bytes_sent:").ok_or_else(shape)?;
    let number = |s: &str| digits(s).ok_or_else(shape);
    Ok(Archived {
        layout: Layout::Text,
        job: None,
        fire_time: None,
        data: Data::Usage {
            window: None,
            detail: Detail::Totals {
                ops: number(ops)?,
                bytes_sent: number(sent)?,
                bytes_received: number(received)?,
            },
        },
    })
}

/// Lines of `2026/11/22/13:05:00>default:1048576 kb 524288 kb_avail 524288 kb_used`, each
/// ending in a newline (the stamp is the fire time in the keys' zone: the key says it too).
fn capacity_text(text: &str) -> Result<Archived, DecodeError> {
    if !text.ends_with('\n') {
        return Err(DecodeError::Shape {
            layout: "text capacity",
            reason: "the last line has no newline: the object is cut short".into(),
        });
    }
    let roots = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let shape = || DecodeError::Shape {
                layout: "text capacity",
                reason: format!(
                    "line {}: expected `STAMP>ROOT:N kb N kb_avail N kb_used`, found {}",
                    i + 1,
                    excerpt(line)
                ),
            };
            let (_stamp, rest) = line.split_once('>').ok_or_else(shape)?;
            let (name, numbers) = rest.rsplit_once(':').ok_or_else(shape)?;
            let fields: Vec<&str> = numbers.split(' ').collect();
            let [kb, "kb", avail, "kb_avail", used, "kb_used"] = fields[..] else {
                return Err(shape());
            };
            let number = |s: &str| digits(s).ok_or_else(shape);
            if name.is_empty() {
                return Err(shape());
            }
            Ok(Root {
                name: name.to_string(),
                kb: number(kb)?,
                kb_used: number(used)?,
                kb_avail: number(avail)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Archived {
        layout: Layout::Text,
        job: None,
        fire_time: None,
        data: Data::Capacity(roots),
    })
}

/// A plain run of ASCII digits as a u64 (no sign, no spaces, no overflow).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The start of an unexpected body, quoted, for an error message.
fn excerpt(text: &str) -> String {
    let cut: String = text.chars().take(60).collect();
    format!("{cut:?}{}", if cut.len() < text.len() { "…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{self, Compression, Format};
    use crate::snapshot::{Labels, Snapshot, SnapshotData};
    use crate::testutil::{fixture, utc};

    fn usage_snapshot(entries: bool) -> Snapshot {
        let window = Window {
            start: utc("2026-11-22T17:00:00Z"),
            end: utc("2026-11-22T18:00:00Z"),
        };
        let report =
            crate::usage::parse(&fixture("admin-usage-all.json"), window, entries).unwrap();
        Snapshot {
            job: "usage_a".into(),
            labels: Labels::default(),
            fire_time: utc("2026-11-22T18:05:00Z"),
            collected_at: utc("2026-11-22T18:05:07Z"),
            cluster_fsid: None,
            data: SnapshotData::Usage(report),
        }
    }

    fn capacity_snapshot() -> Snapshot {
        let report = crate::osd_df::parse(&fixture("ceph-osd-df-tree.json")).unwrap();
        Snapshot {
            job: "pool_df".into(),
            labels: Labels::default(),
            fire_time: utc("2026-11-22T13:05:00Z"),
            collected_at: utc("2026-11-22T13:05:01Z"),
            cluster_fsid: None,
            data: SnapshotData::Capacity(report),
        }
    }

    fn rendered(s: &Snapshot, format: Format, compression: Compression) -> Vec<u8> {
        let mut out = Vec::new();
        format::render_compressed(s, format, compression, chrono_tz::UTC, &mut out).unwrap();
        out
    }

    /// The report's rows as (owner, bucket, category) → counters, whatever the format.
    fn sorted(detail: &Detail) -> Vec<Row> {
        let (Detail::Users(rows) | Detail::Buckets(rows)) = detail else {
            panic!("{detail:?}")
        };
        let mut rows = rows.clone();
        rows.sort();
        rows
    }

    #[test]
    fn every_format_reads_back_as_the_numbers_it_was_written_from() {
        let snapshot = usage_snapshot(true);
        let SnapshotData::Usage(report) = &snapshot.data else {
            unreachable!()
        };
        let mut want: Vec<Row> = Vec::new();
        for b in report.buckets.iter().flatten() {
            for (category, c) in b.categories.iter() {
                want.push(Row {
                    owner: b.owner.to_string(),
                    bucket: Some(b.bucket.to_string()),
                    category: category.to_string(),
                    counters: (*c).into(),
                });
            }
        }
        want.sort();
        assert!(!want.is_empty());
        for format in [Format::Json, Format::Records] {
            for compression in [Compression::None, Compression::Gzip] {
                let bytes = rendered(&snapshot, format, compression);
                let read = decode(&bytes, Kind::Usage).unwrap();
                assert_eq!(read.job.as_deref(), Some("usage_a"));
                assert_eq!(read.fire_time, Some(snapshot.fire_time));
                let Data::Usage { window, detail } = &read.data else {
                    panic!()
                };
                assert_eq!(*window, Some(report.window), "{format:?}");
                assert_eq!(sorted(detail), want, "{format:?} {compression:?}");
            }
        }
        let text = decode(
            &rendered(&snapshot, Format::Text, Compression::None),
            Kind::Usage,
        );
        assert_eq!(
            text.unwrap().data,
            Data::Usage {
                window: None,
                detail: Detail::Totals {
                    ops: report.total.ops,
                    bytes_sent: report.total.bytes_sent,
                    bytes_received: report.total.bytes_received,
                }
            }
        );
        // Without entries, the json document still splits by user and category.
        let users = usage_snapshot(false);
        let read = decode(
            &rendered(&users, Format::Json, Compression::None),
            Kind::Usage,
        );
        let Data::Usage { detail, .. } = read.unwrap().data else {
            panic!()
        };
        let Detail::Users(rows) = &detail else {
            panic!("{detail:?}")
        };
        let ops: u64 = rows.iter().map(|r| r.counters.ops).sum();
        assert_eq!(ops, report.total.ops);
    }

    #[test]
    fn capacity_reads_back_per_root_from_every_format() {
        let snapshot = capacity_snapshot();
        let SnapshotData::Capacity(report) = &snapshot.data else {
            unreachable!()
        };
        let want: Vec<Root> = report
            .roots
            .iter()
            .map(|r| Root {
                name: r.name.clone(),
                kb: r.kb,
                kb_used: r.kb_used,
                kb_avail: r.kb_avail,
            })
            .collect();
        for format in [Format::Text, Format::Json, Format::Records] {
            let read = decode(
                &rendered(&snapshot, format, Compression::Gzip),
                Kind::Capacity,
            );
            assert_eq!(
                read.unwrap().data,
                Data::Capacity(want.clone()),
                "{format:?}"
            );
        }
    }

    #[test]
    fn an_hour_nobody_used_is_an_empty_object_and_reads_as_no_rows() {
        let read = decode(b"", Kind::Usage).unwrap();
        assert_eq!(
            read.data,
            Data::Usage {
                window: None,
                detail: Detail::Buckets(vec![])
            }
        );
        assert_eq!(decode(b"", Kind::Capacity), Err(DecodeError::Empty));
    }

    #[test]
    fn what_is_not_ours_is_refused_with_the_reason() {
        let records = rendered(&usage_snapshot(true), Format::Records, Compression::None);
        let cut = &records[..records.len() - 10];
        let err = decode(cut, Kind::Usage).unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");

        let newer = String::from_utf8(records.clone())
            .unwrap()
            .replace("\"schema_version\":1", "\"schema_version\":2");
        assert_eq!(
            decode(newer.as_bytes(), Kind::Usage),
            Err(DecodeError::SchemaVersion { found: 2 })
        );
        let err = decode(&records, Kind::Capacity).unwrap_err();
        assert!(matches!(err, DecodeError::WrongKind { .. }), "{err}");

        // A line of another window spliced in.
        let mut spliced = records.clone();
        let other = String::from_utf8(records.clone())
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .replace("17:00:00Z", "16:00:00Z");
        spliced.extend_from_slice(other.as_bytes());
        spliced.push(b'\n');
        let err = decode(&spliced, Kind::Usage).unwrap_err();
        assert!(
            err.to_string().contains("differ from the first line"),
            "{err}"
        );

        for (body, why) in [
            (&b"<html>hello</html>"[..], "expected `op: N"),
            (b"op: 1 bytes_received:2 bytes_sent:-3", "expected `op: N"),
            (
                b"op: 1 bytes_received:2 bytes_sent:99999999999999999999",
                "expected `op: N",
            ),
            (b"\xff\xfe", "not UTF-8"),
            (b"\x1f\x8b\x08\x00garbage", "gzip"),
            (b"{\n  \"schema_version\": 1", "not a json body"),
            (b"{\"schema_version\": 1", "cut short"),
        ] {
            let err = decode(body, Kind::Usage).unwrap_err().to_string();
            assert!(err.contains(why), "{body:?}: {err}");
        }
        let forged = b"2026/11/22/13:05:00>default:10 kb 5 kb_avail 5 kb_used\nextra line\n";
        let err = decode(forged, Kind::Capacity).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
