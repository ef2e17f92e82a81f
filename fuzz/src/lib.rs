//! The fuzz targets: one function per parser of outside input, each feeding the bytes through
//! the library's own public entry and checking what is cheap to check about the outcome.
//!
//! Errors are fine; a panic (an assertion here, or anything in the library) is a finding. Each
//! function returns whether the input was accepted, which the replay test checks for the seeds.
//!
//! This file is compiled twice: into the AFL++ binaries of `fuzz/src/bin/` (one per target),
//! and, through `#[path]`, into the main crate's `tests/fuzz_regressions.rs`, which replays the
//! seeds and the crashes kept in `tests/regressions/fuzz/<target>/` under plain `cargo test`.
//! So it may use only what both have: the library, `chrono`, `serde_json` and `tempfile`.

use std::path::Path;

use ceph_stats_exporter::config::{Config, ConfigError};
use ceph_stats_exporter::jsonwalk::Walker;
use ceph_stats_exporter::spool::{Spool, SpoolError};
use ceph_stats_exporter::state::{JobState, StateDir, StateError};
use ceph_stats_exporter::usage::{self, Counters, UsageReport};
use ceph_stats_exporter::window::Window;
use ceph_stats_exporter::{http, osd_df, s3};
use chrono::{DateTime, TimeDelta};

/// A target: takes any bytes, returns whether they were accepted, panics on a defect.
pub type Target = fn(&[u8]) -> bool;

/// Every target by name, as `dev/fuzz.sh` and `tests/regressions/fuzz/` name them.
pub const TARGETS: [(&str, Target); 6] = [
    ("usage", usage),
    ("osd_df", osd_df),
    ("s3_error", s3_error),
    ("config", config),
    ("spool_header", spool_header),
    ("state", state),
];

/// The walker's limit on one value, as in production.
const WALK_LIMIT: usize = 64 << 20;

/// The hour the usage fixtures were captured in (2026-11-22T17:00:00Z), so that the real
/// answers get past the window check and the fuzzer starts from accepted documents.
fn fixture_hour() -> Window {
    let start = DateTime::from_timestamp(1_795_366_800, 0).expect("a valid instant");
    Window {
        start,
        end: start + TimeDelta::hours(1),
    }
}

/// The `/admin/usage` answer walker and aggregate (`usage::parse`), with and without entries.
///
/// Invariants: the outcome does not depend on the walker's block size (the input picks a small
/// one, so records are cut anywhere); an accepted report adds up; an answer accepted with its
/// entries is accepted without them, with the same users and total.
pub fn usage(data: &[u8]) -> bool {
    let window = fixture_hour();
    let whole = usage::parse(data, window, true);
    let block = 1 + data.len() % 61;
    let cut = usage::parse_walking(
        Walker::with_sizes(data, block, WALK_LIMIT),
        window,
        true,
        usage::DEFAULT_MAX_BUCKETS,
    );
    match (&whole, &cut) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "block {block}"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "block {block}"),
        (a, b) => panic!("block {block} changes the outcome: {a:?} vs {b:?}"),
    }
    let summary_only = usage::parse(data, window, false);
    if let Ok(r) = &summary_only {
        check_report(r, window, false);
    }
    match &whole {
        Ok(r) => {
            check_report(r, window, true);
            let s = summary_only
                .as_ref()
                .expect("an answer accepted with its entries is accepted without them");
            assert_eq!((&s.users, s.total), (&r.users, r.total));
            true
        }
        Err(_) => false,
    }
}

fn add(a: Counters, b: Counters) -> Counters {
    let sum = |x: u64, y: u64| {
        x.checked_add(y)
            .expect("an accepted report does not overflow")
    };
    Counters {
        ops: sum(a.ops, b.ops),
        successful_ops: sum(a.successful_ops, b.successful_ops),
        bytes_sent: sum(a.bytes_sent, b.bytes_sent),
        bytes_received: sum(a.bytes_received, b.bytes_received),
    }
}

fn check_report(r: &UsageReport, window: Window, with_entries: bool) {
    assert_eq!(r.window, window);
    let users = r
        .users
        .values()
        .fold(Counters::default(), |t, u| add(t, u.total));
    assert_eq!(r.total, users, "the total is the sum of the users'");
    let Some(buckets) = &r.buckets else {
        assert!(
            !with_entries,
            "entries were asked for but no buckets came back"
        );
        return;
    };
    assert!(
        with_entries,
        "buckets came back although entries were not asked for"
    );
    for b in buckets {
        let categories = b
            .categories
            .values()
            .fold(Counters::default(), |t, c| add(t, *c));
        assert_eq!(
            b.total, categories,
            "bucket {:?} of {:?}",
            b.bucket, b.owner
        );
    }
    assert!(
        buckets
            .windows(2)
            .all(|p| (&p[0].owner, &p[0].bucket) < (&p[1].owner, &p[1].bucket)),
        "buckets are sorted by (owner, bucket) and listed once"
    );
}

/// `ceph osd df tree -f json` (`osd_df::parse`). Invariants: what is accepted is what the
/// parser promises (a root, some capacity, roots that add up, nodes sorted by type).
pub fn osd_df(data: &[u8]) -> bool {
    let Ok(r) = osd_df::parse(data) else {
        return false;
    };
    assert!(!r.roots.is_empty());
    assert!(r.roots.iter().any(|root| root.kb > 0));
    for root in &r.roots {
        let sum = root.kb_used.checked_add(root.kb_avail);
        assert!(sum.is_some_and(|s| s <= root.kb), "root {:?}", root.name);
    }
    for (nodes, kind) in [(&r.roots, "root"), (&r.hosts, "host"), (&r.osds, "osd")] {
        assert!(nodes.iter().all(|n| n.node_type == kind), "{kind}s");
    }
    true
}

/// An S3 or admin API error body: its code (`s3::error_code`) and the excerpt an error
/// message shows of it (`http::excerpt`). Invariants: a code is never empty, and an XML code is
/// plain; the excerpt is short and has no control characters.
pub fn s3_error(data: &[u8]) -> bool {
    let shown = http::excerpt(data);
    assert!(shown.chars().count() <= 163, "{shown:?}");
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
    let Some(code) = s3::error_code(data) else {
        return false;
    };
    assert!(!code.is_empty());
    let text = std::str::from_utf8(data).expect("a code comes from UTF-8");
    if !text.trim_start().starts_with('{') {
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '.';
        assert!(code.chars().all(plain), "{code:?}");
    }
    true
}

/// The TOML config (`Config::from_toml`). Invariants: a line an error names is in the file; an
/// accepted config respects S3's smallest part.
pub fn config(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match Config::from_toml(Path::new("fuzz.toml"), text) {
        Ok(c) => {
            assert!(c.multipart_part_size >= 5 << 20);
            true
        }
        Err(ConfigError::Invalid {
            line: Some(line), ..
        }) => {
            let lines = text.matches('\n').count() + 1;
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
            false
        }
        Err(_) => false,
    }
}

thread_local! {
    /// A spool and a state directory in a temporary directory, reused across runs.
    static DIRS: (tempfile::TempDir, Spool, StateDir) = {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let spool = Spool::open(&tmp.path().join("spool"), u64::MAX).expect("a spool");
        let state = StateDir::open(&tmp.path().join("state")).expect("a state directory");
        (tmp, spool, state)
    };
}

/// A spool entry read back (`Spool::read`: the header line, then the body's length and MD5).
/// Invariants: a file that is not an entry is quarantined as corrupt (not an I/O error); an
/// accepted entry's body is the file after its header line.
pub fn spool_header(data: &[u8]) -> bool {
    DIRS.with(|(_, spool, _)| {
        let path = spool.dir().join("000000000001.obj");
        std::fs::write(&path, data).expect("writing the entry");
        let accepted = match spool.read(&path) {
            Ok(object) => {
                let body = object.body.read_range(0, object.body.len());
                let body = body.expect("reading the body back");
                let header = data
                    .iter()
                    .position(|&b| b == b'\n')
                    .expect("a header line");
                assert_eq!(&body[..], &data[header + 1..]);
                true
            }
            Err(SpoolError::Corrupt { quarantine, .. }) => {
                std::fs::remove_file(quarantine).expect("removing the quarantined entry");
                false
            }
            Err(e) => panic!("a readable file is an entry or corrupt, not: {e}"),
        };
        let _ = std::fs::remove_file(&path);
        accepted
    })
}

/// A job's state file (`StateDir::load`). Invariants: a file that does not parse is corrupt
/// (not an I/O error); accepted state survives being written and read again.
pub fn state(data: &[u8]) -> bool {
    DIRS.with(|(_, _, dir)| {
        std::fs::write(dir.path().join("fuzz.state.json"), data).expect("writing the state");
        match dir.load("fuzz") {
            Ok(s) => {
                let again = serde_json::to_vec_pretty(&s).expect("job state serializes");
                let back: JobState = serde_json::from_slice(&again)
                    .unwrap_or_else(|e| panic!("{s:?} written as {again:?} reads back as {e}"));
                assert_eq!(back, s);
                true
            }
            Err(StateError::Corrupt { .. }) => false,
            Err(e) => panic!("a readable file is state or corrupt, not: {e}"),
        }
    })
}
