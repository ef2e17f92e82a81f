//! Property tests (proptest) of the pure parts of the exporter, through the public API only:
//! the `osd df tree` and admin usage parsers, the block-wise JSON walker, S3/admin error bodies,
//! key templates, the v2 signer's canonicalization and usage windows.
//!
//! Each group saves the seeds of failing cases in `tests/regressions/<group>.txt`; proptest
//! replays them first on every later run, so keep those files. Inputs worth keeping forever are
//! also plain `#[test]`s after each group, including the bugs found (marked `#[ignore]` until
//! fixed). `PROPTEST_CASES=N` overrides every group's case count for a deeper local run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use ceph_stats_exporter::jsonwalk::{WalkError, Walker};
use ceph_stats_exporter::keys::{KeyTemplate, KeyTemplateError};
use ceph_stats_exporter::osd_df::{self, CapacityReport, OsdDfError};
use ceph_stats_exporter::s3::error_code;
use ceph_stats_exporter::s3auth::{
    canonical_amz_headers, canonical_resource, encode_key, signature, string_to_sign,
    SignableRequest,
};
use ceph_stats_exporter::secret::Secret;
use ceph_stats_exporter::usage::{self, BucketUsage, Counters, UsageError, UsageReport, UserUsage};
use ceph_stats_exporter::window::{Window, WindowError, WindowLength};
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use proptest::sample::{select, subsequence, Index};
use proptest::test_runner::FileFailurePersistence;
use serde_json::{json, Value};

// ------------------------------------------------------------------------------------------------
// Shared helpers
// ------------------------------------------------------------------------------------------------

/// A group's proptest configuration: `cases` unless `PROPTEST_CASES` says otherwise, and failing
/// seeds persisted to (and replayed from) `regressions`, relative to the crate root.
fn config(cases: u32, regressions: &'static str) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        max_global_rejects: cases.saturating_mul(4).max(1024),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..ProptestConfig::default()
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn utc(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_else(|| panic!("{secs} is out of range"))
}

/// 9999-12-31T23:59:59Z, the last second whose year has four digits.
const MAX_SECS: i64 = 253_402_300_799;

/// Instants from 1970 to 9999: with and without fractions of a second, and many near the EU
/// daylight-saving changes, within a day and within hours.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        (0..=MAX_SECS, 0..1_000_000_000u32)
            .prop_map(|(s, n)| DateTime::from_timestamp(s, n).expect("in range")),
        (0..=MAX_SECS).prop_map(utc),
        (1981..2100i32, any::<bool>(), -27 * 3600..27 * 3600i64).prop_map(
            |(year, spring, offset)| eu_dst_change(year, spring) + Duration::seconds(offset)
        ),
        (1981..2100i32, any::<bool>(), -2 * 3600..3 * 3600i64).prop_map(
            |(year, spring, offset)| eu_dst_change(year, spring) + Duration::seconds(offset)
        ),
    ]
}

/// When the EU changes clocks: 01:00 UTC on the last Sunday of March or October (the rule since
/// 1996; near enough in the years before).
fn eu_dst_change(year: i32, spring: bool) -> DateTime<Utc> {
    let last = NaiveDate::from_ymd_opt(year, if spring { 3 } else { 10 }, 31).expect("31 days");
    let sunday = last - Duration::days(i64::from(last.weekday().num_days_from_sunday()));
    sunday.and_hms_opt(1, 0, 0).expect("valid").and_utc()
}

/// A deterministic shuffle driven by a generated seed (splitmix64), so that one generated value
/// can be shuffled at every level of a document.
struct Shuffler(u64);

impl Shuffler {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }

    /// Shuffles every array of a JSON document, recursively.
    fn shuffle_arrays(&mut self, v: &mut Value) {
        match v {
            Value::Array(items) => {
                items.iter_mut().for_each(|i| self.shuffle_arrays(i));
                self.shuffle(items);
            }
            Value::Object(map) => map.values_mut().for_each(|i| self.shuffle_arrays(i)),
            _ => {}
        }
    }

    /// Shuffles `items` but keeps the relative order of items with the same `key`.
    fn shuffle_keeping_order_within<T: Clone, K: Eq>(
        &mut self,
        items: &[T],
        key: impl Fn(&T) -> K,
    ) -> Vec<T> {
        let mut slots: Vec<usize> = (0..items.len()).collect();
        self.shuffle(&mut slots);
        // slots[p] is the item that lands at position p; give each group its own items back
        // in their original order, in the positions the shuffle gave that group.
        let mut out = Vec::with_capacity(items.len());
        let mut taken = vec![false; items.len()];
        for &slot in &slots {
            let k = key(&items[slot]);
            let next = (0..items.len())
                .find(|&i| !taken[i] && key(&items[i]) == k)
                .expect("one left per slot of the group");
            taken[next] = true;
            out.push(items[next].clone());
        }
        out
    }
}

/// `doc` with the value at `pointer` replaced by the raw JSON text `raw` (which need not be
/// valid JSON, nor representable as a `Value`, such as 2^64).
fn with_raw(doc: &Value, pointer: &str, raw: &str) -> Vec<u8> {
    const HOLE: &str = "\u{1}hole\u{1}";
    let mut doc = doc.clone();
    *doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer}")) = Value::String(HOLE.into());
    let text = serde_json::to_string(&doc).expect("serializes");
    let quoted = serde_json::to_string(HOLE).expect("serializes");
    assert_eq!(text.matches(&quoted).count(), 1);
    text.replacen(&quoted, raw, 1).into_bytes()
}

/// `doc` without the key at `pointer` (an object member).
fn without(doc: &Value, pointer: &str) -> Vec<u8> {
    let (parent, key) = pointer.rsplit_once('/').expect("a member pointer");
    let mut doc = doc.clone();
    let removed = doc
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|o| o.remove(key));
    assert!(removed.is_some(), "no {pointer}");
    serde_json::to_vec(&doc).expect("serializes")
}

/// Asserts `is_json_error` for every proper prefix of each fixture (of distinct contents,
/// trailing white space removed): a cut-off answer is never taken for a whole one.
fn assert_every_prefix(names: &[&str], is_json_error: impl Fn(&[u8]) -> bool) {
    let mut seen = BTreeSet::new();
    for name in names {
        let full = fixture(name);
        let bytes = full.trim_ascii_end();
        if !seen.insert(bytes.to_vec()) {
            continue;
        }
        for end in 0..bytes.len() {
            assert!(is_json_error(&bytes[..end]), "{name}[..{end}]");
        }
    }
}

/// Byte-level damage to a document, as a fuzzer would do it.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Truncate(Index),
    /// Copies `len` bytes from the first index to the second.
    Splice(Index, Index, usize),
}

/// Fragments that get a mutated document past the first syntax error more often than bytes.
const TOKENS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "-",
    "0",
    "-1",
    "1.5",
    "1e400",
    "18446744073709551616",
    "null",
    "true",
    "\"\"",
    "\\u0000",
    "\\",
    "<",
    "<Code>",
    "</Code>",
    "\u{e9}",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let insert = prop_oneof![
        vec(any::<u8>(), 1..4),
        select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
    ];
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(i, bit)| Mutation::FlipBit(i, bit)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (any::<Index>(), insert).prop_map(|(i, bytes)| Mutation::Insert(i, bytes)),
        (any::<Index>(), 1..16usize).prop_map(|(i, len)| Mutation::Delete(i, len)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<Index>(), 1..64usize)
            .prop_map(|(from, to, len)| Mutation::Splice(from, to, len)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            bytes.push(b'{');
        }
        let n = bytes.len();
        match m {
            Mutation::FlipBit(i, bit) => bytes[i.index(n)] ^= 1 << bit,
            Mutation::SetByte(i, b) => bytes[i.index(n)] = *b,
            Mutation::Insert(i, ins) => {
                let at = i.index(n + 1);
                bytes.splice(at..at, ins.iter().copied());
            }
            Mutation::Delete(i, len) => {
                let at = i.index(n);
                bytes.drain(at..(at + len).min(n));
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(n)),
            Mutation::Splice(from, to, len) => {
                let from = from.index(n);
                let chunk = bytes[from..(from + len).min(n)].to_vec();
                let to = to.index(n + 1);
                bytes.splice(to..to, chunk);
            }
        }
    }
    bytes
}

/// A real fixture with one to five byte-level mutations.
fn mutated_fixture(name: &'static str) -> impl Strategy<Value = Vec<u8>> {
    vec(mutation(), 1..6).prop_map(move |ms| mutate(fixture(name), &ms))
}

/// Arbitrary bytes, mostly short, some UTF-8 text.
fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..256),
        any::<String>().prop_map(String::into_bytes),
        vec(select(TOKENS), 0..32).prop_map(|ts| ts.concat().into_bytes()),
    ]
}

// ------------------------------------------------------------------------------------------------
// osd df tree
// ------------------------------------------------------------------------------------------------

const OSD_FIXTURES: &[&str] = &[
    "ceph-osd-df-tree.json",
    "ceph-osd-df-tree.second-root.json",
    "ceph-osd-df-tree.osd1-down.json",
    "ceph-osd-df-tree.right-after-mgr-restart.json",
];

const NODE_COUNTS: &[&str] = &["kb", "kb_used", "kb_avail"];
const SUMMARY_COUNTS: &[&str] = &["total_kb", "total_kb_used", "total_kb_avail"];

/// What every accepted capacity report guarantees, and that errors can be shown.
fn check_capacity(result: &Result<CapacityReport, OsdDfError>) -> Result<(), TestCaseError> {
    match result {
        Ok(r) => {
            prop_assert!(!r.roots.is_empty());
            prop_assert!(
                r.roots.iter().any(|n| n.kb > 0),
                "all roots are zero: {r:?}"
            );
            for n in &r.roots {
                prop_assert!(
                    u128::from(n.kb_used) + u128::from(n.kb_avail) <= u128::from(n.kb),
                    "root {} accepted with kb_used {} + kb_avail {} > kb {}",
                    n.name,
                    n.kb_used,
                    n.kb_avail,
                    n.kb
                );
            }
            for (nodes, kind) in [(&r.roots, "root"), (&r.hosts, "host"), (&r.osds, "osd")] {
                prop_assert!(nodes.iter().all(|n| n.node_type == kind));
                // Names that could forge a line of the text format are never accepted.
                for n in nodes.iter() {
                    prop_assert!(
                        !n.name.is_empty() && !n.name.contains(['\n', '\r', '>', ':', ' ']),
                        "name {:?} accepted",
                        n.name
                    );
                }
            }
            let distinct: std::collections::HashSet<_> = r.roots.iter().map(|n| &n.name).collect();
            prop_assert_eq!(
                distinct.len(),
                r.roots.len(),
                "two roots of one name accepted"
            );
        }
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

/// kb, kb_used, kb_avail of a root: anything, small, zero, consistent, and at the top of u64.
fn root_counts() -> impl Strategy<Value = (u64, u64, u64)> {
    prop_oneof![
        any::<(u64, u64, u64)>(),
        (0..4u64, 0..4u64, 0..4u64),
        Just((0, 0, 0)),
        any::<u64>()
            .prop_flat_map(|kb| (Just(kb), 0..=kb))
            .prop_flat_map(|(kb, used)| (Just(kb), Just(used), 0..=kb - used)),
        (u64::MAX - 2..=u64::MAX, any::<u64>(), any::<u64>()),
    ]
}

/// Pointers to the CRUSH roots of an `osd df tree` document, in order.
fn root_pointers(doc: &Value) -> Vec<String> {
    doc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .enumerate()
        .filter(|(_, n)| n["type"] == "root")
        .map(|(i, _)| format!("/nodes/{i}"))
        .collect()
}

/// Pointers to every unsigned count of an `osd df tree` document.
fn count_pointers(doc: &Value) -> Vec<String> {
    let nodes = doc["nodes"].as_array().expect("nodes").len();
    (0..nodes)
        .flat_map(|i| NODE_COUNTS.iter().map(move |f| format!("/nodes/{i}/{f}")))
        .chain(SUMMARY_COUNTS.iter().map(|f| format!("/summary/{f}")))
        .collect()
}

/// What `osd_df::parse` must answer for roots with these counts (the documented rules: all
/// roots zero is `ZeroCapacity`; otherwise the first root whose parts exceed it is
/// `Inconsistent`).
#[derive(Debug, PartialEq)]
enum CapacityVerdict {
    Accepted,
    ZeroCapacity(String),
    Inconsistent(String, u64, u64, u64),
}

fn capacity_verdict(roots: &[(String, (u64, u64, u64))]) -> CapacityVerdict {
    if roots.iter().all(|(_, (kb, _, _))| *kb == 0) {
        let names: Vec<&str> = roots.iter().map(|(n, _)| n.as_str()).collect();
        return CapacityVerdict::ZeroCapacity(names.join(", "));
    }
    roots
        .iter()
        .find(|(_, (kb, used, avail))| u128::from(*used) + u128::from(*avail) > u128::from(*kb))
        .map_or(CapacityVerdict::Accepted, |(name, (kb, used, avail))| {
            CapacityVerdict::Inconsistent(name.clone(), *kb, *used, *avail)
        })
}

/// Parses `doc` with its roots' counts replaced, and checks the answer against the rules.
fn check_root_counts(fixture_name: &str, counts: &[(u64, u64, u64)]) -> Result<(), TestCaseError> {
    let mut doc = fixture_json(fixture_name);
    let original = osd_df::parse(&fixture(fixture_name)).expect("fixture parses");
    let mut roots = Vec::new();
    for (pointer, &(kb, used, avail)) in root_pointers(&doc).iter().zip(counts) {
        let node = doc.pointer_mut(pointer).expect("root");
        node["kb"] = kb.into();
        node["kb_used"] = used.into();
        node["kb_avail"] = avail.into();
        roots.push((
            node["name"].as_str().expect("name").to_string(),
            (kb, used, avail),
        ));
    }
    let result = osd_df::parse(&serde_json::to_vec(&doc).expect("serializes"));
    check_capacity(&result)?;
    match (capacity_verdict(&roots), result) {
        (CapacityVerdict::Accepted, Ok(r)) => {
            let got: Vec<_> = r
                .roots
                .iter()
                .map(|n| (n.name.clone(), (n.kb, n.kb_used, n.kb_avail)))
                .collect();
            prop_assert_eq!(got, roots);
            prop_assert_eq!(r.hosts, original.hosts);
            prop_assert_eq!(r.osds, original.osds);
            prop_assert_eq!(r.summary, original.summary);
        }
        (CapacityVerdict::ZeroCapacity(names), Err(OsdDfError::ZeroCapacity { roots })) => {
            prop_assert_eq!(roots, names);
        }
        (
            CapacityVerdict::Inconsistent(name, kb, used, avail),
            Err(OsdDfError::Inconsistent {
                name: n,
                kb: k,
                kb_used: u,
                kb_avail: a,
            }),
        ) => prop_assert_eq!((n, k, u, a), (name, kb, used, avail)),
        (want, got) => prop_assert!(false, "expected {want:?}, got {got:?}"),
    }
    Ok(())
}

/// Raw JSON that must never be read as an unsigned count.
fn not_a_count() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| format!("\"{n}\"")),
        any::<u64>().prop_map(|n| format!("{n}.5")),
        (1..=u64::MAX).prop_map(|n| format!("-{n}")),
        any::<u64>().prop_map(|n| (u128::from(u64::MAX) + 1 + u128::from(n)).to_string()),
        (1..100u32).prop_map(|e| format!("1e{e}")),
        select(vec![
            "null", "true", "false", "[]", "{}", "\"\"", "1.0", "0.0"
        ])
        .prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(config(256, "tests/regressions/osd_df.txt"))]

    #[test]
    fn osd_df_arbitrary_bytes_are_an_error_or_a_sound_report(bytes in arbitrary_bytes()) {
        check_capacity(&osd_df::parse(&bytes))?;
    }

    #[test]
    fn osd_df_mutated_fixtures_are_an_error_or_a_sound_report(
        bytes in select(OSD_FIXTURES).prop_flat_map(mutated_fixture)
    ) {
        check_capacity(&osd_df::parse(&bytes))?;
    }

    #[test]
    fn osd_df_root_counts_are_read_exactly_or_refused_by_the_rules(
        fixture_name in select(&OSD_FIXTURES[..2]),
        counts in vec(root_counts(), 2),
    ) {
        check_root_counts(fixture_name, &counts)?;
    }

    #[test]
    fn osd_df_stray_nodes_count_like_tree_nodes(
        fixture_name in select(&OSD_FIXTURES[..3]),
        to_stray in vec(any::<bool>(), 16),
    ) {
        let mut doc = fixture_json(fixture_name);
        let nodes = doc["nodes"].as_array().expect("nodes").clone();
        let mut choice = to_stray.iter().cycle();
        let (stray, kept): (Vec<Value>, Vec<Value>) =
            nodes.into_iter().partition(|_| *choice.next().expect("endless"));
        doc["nodes"] = kept.into();
        doc["stray"] = stray.into();
        let by_id = |r: CapacityReport| {
            [r.roots, r.hosts, r.osds].map(|mut ns| {
                ns.sort_by_key(|n| n.id);
                ns
            })
        };
        let original = osd_df::parse(&fixture(fixture_name)).expect("fixture parses");
        let moved = osd_df::parse(&serde_json::to_vec(&doc).expect("serializes"));
        prop_assert_eq!(by_id(moved.expect("still a sound tree")), by_id(original));
    }

    #[test]
    fn osd_df_counts_of_another_type_are_json_errors_not_zero(
        fixture_name in select(OSD_FIXTURES),
        field in any::<Index>(),
        raw in not_a_count(),
    ) {
        let doc = fixture_json(fixture_name);
        let pointers = count_pointers(&doc);
        let pointer = field.get(&pointers);
        let result = osd_df::parse(&with_raw(&doc, pointer, &raw));
        prop_assert!(matches!(result, Err(OsdDfError::Json(_))), "{pointer} = {raw}: {result:?}");
    }

    #[test]
    fn osd_df_missing_counts_are_json_errors(
        fixture_name in select(OSD_FIXTURES),
        field in any::<Index>(),
    ) {
        let doc = fixture_json(fixture_name);
        let pointers = count_pointers(&doc);
        let pointer = field.get(&pointers);
        let result = osd_df::parse(&without(&doc, pointer));
        prop_assert!(matches!(result, Err(OsdDfError::Json(_))), "without {pointer}: {result:?}");
    }
}

#[test]
fn osd_df_every_prefix_of_the_fixtures_is_a_json_error() {
    assert_every_prefix(OSD_FIXTURES, |b| {
        matches!(osd_df::parse(b), Err(OsdDfError::Json(_)))
    });
}

#[test]
fn osd_df_root_count_edges_follow_the_rules() {
    for counts in [
        [(0, 0, 0), (0, 0, 0)],
        [(0, 0, 0), (1, 0, 1)],
        [(0, 1, 0), (1, 0, 0)],
        [(5, 2, 3), (5, 3, 3)],
        [(u64::MAX, u64::MAX, 0), (u64::MAX, 0, u64::MAX)],
        [(u64::MAX - 1, 1, u64::MAX - 1), (1, 0, 0)],
        [(u64::MAX, 0, u64::MAX), (u64::MAX, u64::MAX, 0)],
    ] {
        let r = check_root_counts("ceph-osd-df-tree.second-root.json", &counts);
        assert!(r.is_ok(), "{counts:?}: {r:?}");
    }
}

/// Found by `osd_df_root_counts_are_read_exactly_or_refused_by_the_rules` (fixed in 7c97a75): the
/// check saturated `kb_used + kb_avail`, so for kb = u64::MAX no sum was too big.
#[test]
fn osd_df_parts_exceeding_a_root_of_u64_max_are_refused() {
    let r = check_root_counts("ceph-osd-df-tree.json", &[(u64::MAX, u64::MAX, u64::MAX)]);
    assert!(r.is_ok(), "{r:?}");
}

// ------------------------------------------------------------------------------------------------
// Admin usage
// ------------------------------------------------------------------------------------------------

/// The hour all usage fixtures were captured in: 2026-11-22T17:00:00Z.
const HOUR: i64 = 1_795_366_800;

fn fixture_hour() -> Window {
    Window {
        start: utc(HOUR),
        end: utc(HOUR + 3600),
    }
}

const USAGE_FIXTURES: &[&str] = &[
    "admin-usage-all.json",
    "admin-usage-summary-only.json",
    "admin-usage-window-past.json",
    "admin-usage-window-datetime.json",
];

const FIELDS: [&str; 4] = ["ops", "successful_ops", "bytes_sent", "bytes_received"];

fn field<'a>(c: &'a mut Counters, name: &str) -> &'a mut u64 {
    match name {
        "ops" => &mut c.ops,
        "successful_ops" => &mut c.successful_ops,
        "bytes_sent" => &mut c.bytes_sent,
        "bytes_received" => &mut c.bytes_received,
        other => panic!("no counter {other}"),
    }
}

fn checked_sum<'a>(counters: impl IntoIterator<Item = &'a Counters>) -> Option<Counters> {
    counters
        .into_iter()
        .try_fold(Counters::default(), |acc, c| {
            Some(Counters {
                ops: acc.ops.checked_add(c.ops)?,
                successful_ops: acc.successful_ops.checked_add(c.successful_ops)?,
                bytes_sent: acc.bytes_sent.checked_add(c.bytes_sent)?,
                bytes_received: acc.bytes_received.checked_add(c.bytes_received)?,
            })
        })
}

fn sum<'a>(counters: impl IntoIterator<Item = &'a Counters>) -> Counters {
    checked_sum(counters).expect("generated counters do not overflow")
}

/// The `categories` array of a usage record or summary.
fn categories_json<'a>(categories: impl IntoIterator<Item = (&'a str, &'a Counters)>) -> Value {
    categories
        .into_iter()
        .map(|(name, c)| {
            let mut v = serde_json::to_value(c).expect("serializes");
            v["category"] = name.into();
            v
        })
        .collect()
}

/// Parses a usage document for the fixture hour.
fn parse_usage(doc: &Value, with_entries: bool) -> Result<UsageReport, UsageError> {
    let bytes = serde_json::to_vec(doc).expect("serializes");
    usage::parse(&bytes, fixture_hour(), with_entries)
}

/// What every accepted usage report guarantees, and that errors can be shown.
fn check_usage(
    result: &Result<UsageReport, UsageError>,
    with_entries: bool,
) -> Result<(), TestCaseError> {
    match result {
        Ok(r) => {
            prop_assert_eq!(r.window, fixture_hour());
            prop_assert_eq!(
                Some(r.total),
                checked_sum(r.users.values().map(|u| &u.total))
            );
            match (&r.buckets, with_entries) {
                (None, false) => {}
                (Some(buckets), true) => {
                    for b in buckets {
                        prop_assert_eq!(Some(b.total), checked_sum(b.categories.values()));
                    }
                    // Entries add up to the summary, so the buckets add up to the total.
                    prop_assert_eq!(Some(r.total), checked_sum(buckets.iter().map(|b| &b.total)));
                    let keys: Vec<_> = buckets.iter().map(|b| (&b.owner, &b.bucket)).collect();
                    prop_assert!(
                        keys.windows(2).all(|w| w[0] < w[1]),
                        "buckets not sorted and unique: {keys:?}"
                    );
                }
                (buckets, _) => {
                    prop_assert!(false, "with_entries {with_entries} but buckets {buckets:?}")
                }
            }
        }
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

const BUCKETS: &[&str] = &["", "-", "photos", "logs", "data.2026"];
const CATEGORIES: &[&str] = &[
    "get_obj",
    "put_obj",
    "list_bucket",
    "delete_obj",
    "list_buckets",
];

/// One raw hourly record of the usage log.
#[derive(Clone, Debug)]
struct Record {
    user: usize,
    owner: usize,
    bucket: &'static str,
    epoch: i64,
    categories: Vec<(&'static str, Counters)>,
}

/// A usage answer to generate: users, their records, and whether users without records are
/// listed (RGW lists them when they have records outside the window's categories).
#[derive(Clone, Debug)]
struct UsageDoc {
    users: Vec<String>,
    records: Vec<Record>,
    list_idle_users: bool,
}

fn counters(below: u64) -> impl Strategy<Value = Counters> {
    (0..below, 0..below, 0..below, 0..below).prop_map(
        |(ops, successful_ops, bytes_sent, bytes_received)| Counters {
            ops,
            successful_ops,
            bytes_sent,
            bytes_received,
        },
    )
}

fn user_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}",
        "[a-z]{1,4}\\$[a-z]{1,4}",
        "\\PC{1,6}",
        Just("anonymous".to_string()),
    ]
}

/// Documents whose 1 to 12 records (2^40 at most per counter, so nothing overflows) lie in the
/// fixture hour; the same bucket may come several times, also within one user.
fn usage_doc() -> impl Strategy<Value = UsageDoc> {
    let record = (
        any::<Index>(),
        proptest::option::weighted(0.25, any::<Index>()),
        select(BUCKETS),
        HOUR..HOUR + 3600,
        vec((select(CATEGORIES), counters(1 << 40)), 0..4),
    );
    (
        btree_set(user_name(), 1..5),
        vec(record, 1..12),
        any::<bool>(),
    )
        .prop_map(|(users, records, list_idle_users)| {
            let users: Vec<String> = users.into_iter().collect();
            let records = records
                .into_iter()
                .map(|(user, owner, bucket, epoch, categories)| {
                    let user = user.index(users.len());
                    Record {
                        user,
                        owner: owner.map_or(user, |o| o.index(users.len())),
                        bucket,
                        epoch,
                        categories,
                    }
                })
                .collect();
            UsageDoc {
                users,
                records,
                list_idle_users,
            }
        })
}

impl UsageDoc {
    fn records_of(&self, user: usize) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| r.user == user)
    }

    fn listed_users(&self) -> impl Iterator<Item = (usize, &String)> {
        self.users
            .iter()
            .enumerate()
            .filter(|(u, _)| self.list_idle_users || self.records_of(*u).next().is_some())
    }

    /// Per category sums of a user's records.
    fn categories_of(&self, user: usize) -> BTreeMap<String, Counters> {
        let mut cats: BTreeMap<String, Counters> = BTreeMap::new();
        for (name, c) in self.records_of(user).flat_map(|r| &r.categories) {
            let slot = cats.entry(name.to_string()).or_default();
            *slot = sum([&*slot, c]);
        }
        cats
    }

    fn json(&self) -> Value {
        let entries: Vec<Value> = self
            .listed_users()
            .map(|(u, name)| {
                let buckets: Vec<Value> = self
                    .records_of(u)
                    .map(|r| {
                        let categories = r.categories.iter().map(|(n, c)| (*n, c));
                        json!({
                            "bucket": r.bucket,
                            "time": "",
                            "epoch": r.epoch,
                            "owner": self.users[r.owner],
                            "categories": categories_json(categories),
                        })
                    })
                    .collect();
                json!({"user": name, "buckets": buckets})
            })
            .collect();
        let summary: Vec<Value> = self
            .listed_users()
            .map(|(u, name)| {
                let cats = self.categories_of(u);
                json!({
                    "user": name,
                    "categories": categories_json(cats.iter().map(|(n, c)| (n.as_str(), c))),
                    "total": sum(cats.values()),
                })
            })
            .collect();
        json!({"entries": entries, "summary": summary})
    }

    /// The report, computed independently of the parser.
    fn expected(&self, with_entries: bool) -> UsageReport {
        let users: BTreeMap<String, UserUsage> = self
            .listed_users()
            .map(|(u, name)| {
                let categories = self.categories_of(u);
                let total = sum(categories.values());
                (name.clone(), UserUsage { total, categories })
            })
            .collect();
        let mut by_bucket: BTreeMap<(String, String), BTreeMap<String, Counters>> = BTreeMap::new();
        for r in &self.records {
            let cats = by_bucket
                .entry((self.users[r.owner].clone(), r.bucket.to_string()))
                .or_default();
            for (name, c) in &r.categories {
                let slot = cats.entry(name.to_string()).or_default();
                *slot = sum([&*slot, c]);
            }
        }
        let buckets = by_bucket
            .into_iter()
            .map(|((owner, bucket), categories)| BucketUsage {
                owner: owner.into(),
                bucket: bucket.into(),
                total: sum(categories.values()),
                categories: categories.into_iter().collect(),
            })
            .collect();
        UsageReport {
            window: fixture_hour(),
            total: sum(users.values().map(|u| &u.total)),
            users,
            buckets: with_entries.then_some(buckets),
        }
    }
}

/// The `summary` item of `user` in a usage document.
fn summary_of<'a>(doc: &'a mut Value, user: &str) -> &'a mut Value {
    doc["summary"]
        .as_array_mut()
        .expect("summary")
        .iter_mut()
        .find(|s| s["user"] == user)
        .unwrap_or_else(|| panic!("{user} is not in the summary"))
}

/// A number in a usage document, and what changing it must do.
#[derive(Clone, Debug)]
enum UsageLeaf {
    /// Moving a record out of the window is `OutsideWindow`.
    Epoch { user: String, bucket: String },
    /// Changing a record's counter breaks the user's sum: `Inconsistent`.
    EntryCounter { user: String, field: &'static str },
    /// Changing a user's total breaks the same sum the other way.
    SummaryTotal { user: String, field: &'static str },
    /// Summary categories are reported as they are, not checked.
    SummaryCategory {
        user: String,
        category: String,
        field: &'static str,
    },
}

fn usage_leaves(doc: &Value) -> Vec<(String, UsageLeaf)> {
    let text = |v: &Value| v.as_str().expect("a string").to_string();
    let mut leaves = Vec::new();
    for (i, e) in doc["entries"].as_array().into_iter().flatten().enumerate() {
        for (j, b) in e["buckets"].as_array().expect("buckets").iter().enumerate() {
            let at = format!("/entries/{i}/buckets/{j}");
            leaves.push((
                format!("{at}/epoch"),
                UsageLeaf::Epoch {
                    user: text(&e["user"]),
                    bucket: text(&b["bucket"]),
                },
            ));
            for k in 0..b["categories"].as_array().expect("categories").len() {
                for f in FIELDS {
                    leaves.push((
                        format!("{at}/categories/{k}/{f}"),
                        UsageLeaf::EntryCounter {
                            user: text(&e["user"]),
                            field: f,
                        },
                    ));
                }
            }
        }
    }
    for (i, s) in doc["summary"]
        .as_array()
        .expect("summary")
        .iter()
        .enumerate()
    {
        for f in FIELDS {
            leaves.push((
                format!("/summary/{i}/total/{f}"),
                UsageLeaf::SummaryTotal {
                    user: text(&s["user"]),
                    field: f,
                },
            ));
        }
        for (k, c) in s["categories"]
            .as_array()
            .expect("categories")
            .iter()
            .enumerate()
        {
            for f in FIELDS {
                leaves.push((
                    format!("/summary/{i}/categories/{k}/{f}"),
                    UsageLeaf::SummaryCategory {
                        user: text(&s["user"]),
                        category: text(&c["category"]),
                        field: f,
                    },
                ));
            }
        }
    }
    leaves
}

/// The real usage answer (`admin-usage-all.json`), read once.
struct RealUsage {
    doc: Value,
    report: UsageReport,
    leaves: Vec<(String, UsageLeaf)>,
}

fn real_usage() -> &'static RealUsage {
    static REAL: OnceLock<RealUsage> = OnceLock::new();
    REAL.get_or_init(|| {
        let doc = fixture_json("admin-usage-all.json");
        let report = parse_usage(&doc, true).expect("the fixture parses");
        let leaves = usage_leaves(&doc);
        RealUsage {
            doc,
            report,
            leaves,
        }
    })
}

/// Sets one number of the real usage answer and checks the parser's answer against what that
/// number means.
fn check_usage_leaf(
    pointer: &str,
    leaf: &UsageLeaf,
    epoch: i64,
    count: u64,
) -> Result<(), TestCaseError> {
    let RealUsage {
        doc,
        report: original,
        ..
    } = real_usage();
    let mut doc = doc.clone();
    let slot = doc.pointer_mut(pointer).expect("leaf");
    let old = slot.as_u64();
    *slot = match leaf {
        UsageLeaf::Epoch { .. } => epoch.into(),
        _ => count.into(),
    };
    let result = parse_usage(&doc, true);
    check_usage(&result, true)?;
    let changed = |c: Counters, f: &str| {
        let mut c = c;
        let slot = field(&mut c, f);
        *slot = *slot - old.expect("a count") + count;
        c
    };
    match leaf {
        UsageLeaf::Epoch { user, bucket } => {
            if DateTime::from_timestamp(epoch, 0).is_some_and(|t| fixture_hour().contains(t)) {
                prop_assert_eq!(&result.expect("inside the window"), original);
            } else {
                let err = result.expect_err("outside the window");
                prop_assert!(
                    matches!(&err, UsageError::OutsideWindow { user: u, bucket: b, .. }
                        if u == user && b == bucket),
                    "{err:?}"
                );
            }
        }
        UsageLeaf::EntryCounter { .. } | UsageLeaf::SummaryTotal { .. } if old == Some(count) => {
            prop_assert_eq!(&result.expect("unchanged"), original);
        }
        UsageLeaf::EntryCounter { user, field: f } => {
            let total = original.users[user].total;
            match result {
                Err(UsageError::Inconsistent {
                    user: u,
                    entries,
                    summary,
                }) => {
                    prop_assert_eq!(&u, user);
                    prop_assert_eq!(entries, changed(total, f));
                    prop_assert_eq!(summary, total);
                }
                other => prop_assert!(false, "expected Inconsistent for {user}, got {other:?}"),
            }
        }
        UsageLeaf::SummaryTotal { user, field: f } => {
            let total = original.users[user].total;
            match result {
                Err(UsageError::Inconsistent {
                    user: u,
                    entries,
                    summary,
                }) => {
                    prop_assert_eq!(&u, user);
                    prop_assert_eq!(entries, total);
                    prop_assert_eq!(summary, changed(total, f));
                }
                other => prop_assert!(false, "expected Inconsistent for {user}, got {other:?}"),
            }
        }
        UsageLeaf::SummaryCategory {
            user,
            category,
            field: f,
        } => {
            let mut expected = original.clone();
            let slot = expected
                .users
                .get_mut(user)
                .expect("user")
                .categories
                .get_mut(category)
                .expect("category");
            *slot = changed(*slot, f);
            prop_assert_eq!(
                result.expect("summary categories are not checked"),
                expected
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256, "tests/regressions/usage.txt"))]

    #[test]
    fn usage_arbitrary_bytes_are_an_error_or_a_sound_report(
        bytes in arbitrary_bytes(),
        with_entries in any::<bool>(),
    ) {
        check_usage(&usage::parse(&bytes, fixture_hour(), with_entries), with_entries)?;
    }

    #[test]
    fn usage_mutated_fixtures_are_an_error_or_a_sound_report(
        bytes in select(USAGE_FIXTURES).prop_flat_map(mutated_fixture),
        with_entries in any::<bool>(),
    ) {
        check_usage(&usage::parse(&bytes, fixture_hour(), with_entries), with_entries)?;
    }

    #[test]
    fn usage_numbers_of_the_real_answer_mean_what_they_say(
        leaf in any::<Index>(),
        epoch in HOUR - 7200..HOUR + 3600 + 7200,
        count in prop_oneof![0..1u64 << 48, 0..4u64],
    ) {
        let (pointer, leaf) = leaf.get(&real_usage().leaves);
        check_usage_leaf(pointer, leaf, epoch, count)?;
    }

    #[test]
    fn usage_totals_are_the_sums_of_the_records(doc in usage_doc()) {
        for with_entries in [true, false] {
            let report = parse_usage(&doc.json(), with_entries);
            check_usage(&report, with_entries)?;
            prop_assert_eq!(report.expect("a consistent answer"), doc.expected(with_entries));
        }
    }

    #[test]
    fn usage_report_does_not_depend_on_the_order_of_the_answer(
        doc in usage_doc(),
        seed in any::<u64>(),
        pretty in any::<bool>(),
    ) {
        let json = doc.json();
        let mut shuffled = json.clone();
        Shuffler(seed).shuffle_arrays(&mut shuffled);
        let bytes = if pretty {
            serde_json::to_vec_pretty(&shuffled)
        } else {
            serde_json::to_vec(&shuffled)
        };
        let a = parse_usage(&json, true).expect("parses");
        let b = usage::parse(&bytes.expect("serializes"), fixture_hour(), true).expect("parses");
        let render = |r: &UsageReport| serde_json::to_string(r).expect("renders");
        prop_assert_eq!(render(&a), render(&b));
    }

}

// The error paths of generated answers: each case builds and parses a document, so fewer.
proptest! {
    #![proptest_config(config(128, "tests/regressions/usage.txt"))]

    #[test]
    fn usage_a_record_outside_the_window_is_named(
        doc in usage_doc(),
        which in any::<Index>(),
        epoch in prop_oneof![
            HOUR - 10_000_000..HOUR,
            HOUR + 3600..HOUR + 10_000_000,
            Just(i64::MIN),
            Just(i64::MAX),
        ],
    ) {
        let mut doc = doc;
        let which = which.index(doc.records.len());
        doc.records[which].epoch = epoch;
        let r = &doc.records[which];
        let err = parse_usage(&doc.json(), true).expect_err("outside the window");
        // The record is named by its bucket; its user is the entries' user or (when the answer
        // is read as it streams by, "user" may come after "buckets") the bucket's owner.
        let named = [&doc.users[r.user], &doc.users[r.owner]];
        prop_assert!(
            matches!(&err, UsageError::OutsideWindow { user, bucket, window, .. }
                if named.contains(&user) && bucket == r.bucket && *window == fixture_hour()),
            "{err:?}"
        );
        // Without entries, only the summary is read.
        prop_assert!(parse_usage(&doc.json(), false).is_ok());
    }

    #[test]
    fn usage_a_summary_total_that_disagrees_is_refused(
        doc in usage_doc(),
        which in any::<Index>(),
        f in select(&FIELDS[..]),
        delta in 1..1u64 << 40,
    ) {
        let mut json = doc.json();
        let listed: Vec<(usize, String)> =
            doc.listed_users().map(|(u, n)| (u, n.clone())).collect();
        let (u, user) = which.get(&listed);
        let entries = sum(doc.categories_of(*u).values());
        let mut summary = entries;
        let slot = field(&mut summary, f);
        *slot = slot.checked_sub(delta).unwrap_or(*slot + delta);
        summary_of(&mut json, user)["total"] = serde_json::to_value(summary).expect("serializes");
        let err = parse_usage(&json, true)
            .expect_err("inconsistent");
        prop_assert!(
            matches!(&err, UsageError::Inconsistent { user: u, entries: e, summary: s }
                if u == user && *e == entries && *s == summary),
            "{err:?}"
        );
    }

    #[test]
    fn usage_entries_of_a_user_missing_from_the_summary_are_refused(
        doc in usage_doc(),
        which in any::<Index>(),
    ) {
        let r = which.get(&doc.records).clone();
        let user = &doc.users[r.user];
        let entries = sum(doc.categories_of(r.user).values());
        prop_assume!(entries != Counters::default());
        let mut json = doc.json();
        json["summary"].as_array_mut().expect("summary").retain(|s| s["user"] != *user);
        let err = parse_usage(&json, true)
            .expect_err("missing from the summary");
        prop_assert!(
            matches!(&err, UsageError::Inconsistent { user: u, entries: e, summary: s }
                if u == user && *e == entries && *s == Counters::default()),
            "{err:?}"
        );
    }

    #[test]
    fn usage_a_user_twice_in_the_summary_is_refused(
        doc in usage_doc(),
        which in any::<Index>(),
        at in any::<Index>(),
        with_entries in any::<bool>(),
    ) {
        let mut json = doc.json();
        let summary = json["summary"].as_array_mut().expect("summary");
        let copy = which.get(summary).clone();
        let at = at.index(summary.len() + 1);
        summary.insert(at, copy.clone());
        let err = parse_usage(&json, with_entries)
            .expect_err("duplicate");
        prop_assert!(matches!(&err, UsageError::DuplicateUser(u) if *u == copy["user"]), "{err:?}");
    }

    #[test]
    fn usage_entries_asked_for_but_missing_are_refused(doc in usage_doc()) {
        let mut json = doc.json();
        json.as_object_mut().expect("object").remove("entries");
        prop_assert!(matches!(parse_usage(&json, true), Err(UsageError::MissingEntries)));
        prop_assert_eq!(parse_usage(&json, false).expect("summary only"), doc.expected(false));
    }

    #[test]
    fn usage_cluster_total_is_the_exact_sum_or_an_overflow_error(
        totals in vec(prop_oneof![counters(u64::MAX), counters(1 << 62), counters(16)], 0..5),
    ) {
        let summary: Vec<Value> = totals
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"user": format!("u{i}"), "categories": [], "total": t}))
            .collect();
        let bytes = serde_json::to_vec(&json!({"summary": summary})).expect("serializes");
        match (checked_sum(&totals), usage::parse(&bytes, fixture_hour(), false)) {
            (Some(total), Ok(r)) => prop_assert_eq!(r.total, total),
            (None, Err(UsageError::Overflow { .. })) => {}
            (want, got) => prop_assert!(false, "expected total {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn usage_every_prefix_of_the_fixtures_is_a_json_error() {
    assert_every_prefix(USAGE_FIXTURES, |b| {
        matches!(
            usage::parse(b, fixture_hour(), true),
            Err(UsageError::Json(_))
        )
    });
}

#[test]
fn usage_leaves_at_the_window_edges() {
    let (pointer, leaf) = &real_usage().leaves[0];
    for epoch in [HOUR - 1, HOUR, HOUR + 3599, HOUR + 3600, i64::MIN, i64::MAX] {
        let r = check_usage_leaf(pointer, leaf, epoch, 0);
        assert!(r.is_ok(), "epoch {epoch}: {r:?}");
    }
}

/// Any JSON value, numbers of every length and strings with escapes included.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no infinities", |f| f.is_finite())
            .prop_map(Value::from),
        "(.|\"|\\\\){0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::from),
            btree_map("(.|\"){0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An array of values as RGW or a proxy may send it: compact or pretty, maybe cut short.
fn json_array_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        vec(json_value(), 0..8),
        any::<bool>(),
        any::<Option<Index>>(),
    )
        .prop_map(|(values, pretty, cut)| {
            let doc = Value::from(values);
            let mut bytes = if pretty {
                serde_json::to_vec_pretty(&doc)
            } else {
                serde_json::to_vec(&doc)
            }
            .expect("serializes");
            if let Some(at) = cut {
                bytes.truncate(at.index(bytes.len()));
            }
            bytes
        })
}

/// A document walked as one value, with the walker reading `block` bytes at a time.
fn walk_whole(bytes: &[u8], block: usize) -> Result<Value, WalkError> {
    let mut w = Walker::with_sizes(bytes, block, 1 << 20);
    let v = w.value::<Value>()?;
    w.end()?;
    Ok(v)
}

/// A document walked as an array, element by element.
fn walk_elements(bytes: &[u8], block: usize) -> Result<Vec<Value>, WalkError> {
    let mut w = Walker::with_sizes(bytes, block, 1 << 20);
    let mut out = vec![];
    w.array(|w| w.value::<Value>().map(|v| out.push(v)))?;
    w.end()?;
    Ok(out)
}

proptest! {
    #![proptest_config(config(256, "tests/regressions/jsonwalk.txt"))]

    /// The walker reads a block at a time and parses values again when a block cuts them: for
    /// any bytes and any block size it must agree with serde reading the whole slice.
    #[test]
    fn jsonwalk_agrees_with_serde_on_the_whole_slice(
        bytes in prop_oneof![
            select(USAGE_FIXTURES).prop_flat_map(mutated_fixture),
            arbitrary_bytes(),
            json_array_bytes(),
        ],
        block in 1usize..48,
    ) {
        let serde = serde_json::from_slice::<Value>(&bytes);
        match (&serde, walk_whole(&bytes, block)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, &b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "serde {a:?}, walker {b:?}"),
        }
        match (serde.ok().and_then(|v| v.as_array().cloned()), walk_elements(&bytes, block)) {
            (Some(a), Ok(b)) => prop_assert_eq!(a, b),
            (None, Err(_)) => {}
            (a, b) => prop_assert!(false, "serde {a:?}, walker {b:?}"),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// S3 and admin error bodies
// ------------------------------------------------------------------------------------------------

const PLAIN_CODE: &str = "[A-Za-z0-9._]{1,40}";

fn xml_error(code: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message></Message></Error>"#
    )
}

fn json_error(code: &str) -> String {
    format!(r#"{{"Code":"{code}","Message":""}}"#)
}

/// What the S3 API's XML may carry as a code: letters, digits and dots.
fn is_plain_code(code: &str) -> bool {
    code.len() <= 64
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
}

/// Text that gets into each branch of `error_code`.
fn error_body() -> impl Strategy<Value = String> {
    let prefix = select(vec![
        "",
        " \n",
        "{",
        "{\"Code\":",
        "{\"Code\":\"",
        "<?xml",
        "<Error",
        "<Error><Code>",
        "<?xml version=\"1.0\"?><Error><Code>",
        "<html>",
    ]);
    let rest = prop_oneof![
        any::<String>(),
        "[<>/A-Za-z0-9. \"{}:,\\\\]{0,40}",
        (PLAIN_CODE, "[ <>/A-Za-z]{0,12}").prop_map(|(c, tail)| format!("{c}</Code>{tail}")),
    ];
    (prefix, rest).prop_map(|(p, r)| format!("{p}{r}"))
}

proptest! {
    #![proptest_config(config(256, "tests/regressions/error_code.txt"))]

    #[test]
    fn error_code_of_non_utf8_is_none(
        body in error_body(),
        at in any::<Index>(),
        // Never valid in UTF-8: a lone continuation byte at a character boundary, or a byte no
        // UTF-8 sequence starts with.
        bad in select(vec![0x80u8, 0xBF, 0xC0, 0xC1, 0xF5, 0xFF]),
    ) {
        let boundaries: Vec<usize> =
            (0..=body.len()).filter(|&i| body.is_char_boundary(i)).collect();
        let mut bytes = body.into_bytes();
        bytes.insert(*at.get(&boundaries), bad);
        prop_assert_eq!(error_code(&bytes), None);
    }

    #[test]
    fn error_code_is_a_code_the_body_states_or_none(body in error_body()) {
        let code = error_code(body.as_bytes());
        let text = body.trim_start();
        if let Some(c) = &code {
            prop_assert!(!c.is_empty());
            // Whatever the form, a code is an identifier: nothing in it can forge a log line.
            prop_assert!(is_plain_code(c), "{c:?}");
            if text.starts_with('{') {
                let v: Value = serde_json::from_str(text).expect("a code came from valid JSON");
                prop_assert_eq!(v["Code"].as_str(), Some(c.as_str()));
            } else {
                prop_assert!(text.starts_with("<?xml") || text.starts_with("<Error"), "{body:?}");
                prop_assert!(is_plain_code(c), "{c:?}");
                prop_assert!(body.contains("<Code>") && body.contains(c.as_str()), "{body:?}");
            }
        } else if text.starts_with("<?xml") || text.starts_with("<Error") {
            // None from XML: no <Code>...</Code>, or not a plain code inside.
            let inner = text
                .split_once("<Code>")
                .and_then(|(_, r)| r.split_once("</Code>"))
                .map(|(c, _)| c.trim());
            prop_assert!(
                inner.is_none_or(|c| c.is_empty() || !is_plain_code(c)),
                "{body:?}"
            );
        }
    }

    #[test]
    fn error_code_reads_plain_codes_in_both_forms(code in PLAIN_CODE, lead in "[ \t\r\n]{0,3}") {
        for body in [xml_error(&code), json_error(&code)] {
            prop_assert_eq!(error_code(format!("{lead}{body}").as_bytes()), Some(code.clone()));
        }
        let spaced = format!("<Error><Code>\n  {code}\n</Code></Error>");
        prop_assert_eq!(error_code(spaced.as_bytes()), Some(code));
    }

    #[test]
    fn error_code_reads_json_codes_exactly_when_plain(code in "\\PC{1,20}", message in any::<String>()) {
        let body = json!({"Message": message, "Code": code, "RequestId": "tx1"}).to_string();
        let plain = is_plain_code(&code);
        prop_assert_eq!(error_code(body.as_bytes()), plain.then_some(code));
    }

    #[test]
    fn error_code_refuses_xml_codes_that_are_not_plain(
        head in PLAIN_CODE,
        bad in select(vec![" ", "-", "\n", "&amp;", "/", "\u{e9}", ":", "<b>"]),
        tail in PLAIN_CODE,
    ) {
        let code = format!("{head}{bad}{tail}");
        prop_assert_eq!(error_code(xml_error(&code).as_bytes()), None, "{}", code);
        // Nor in the admin API's JSON: a code is an identifier, or it is not a code.
        prop_assert_eq!(error_code(json!({"Code": code}).to_string().as_bytes()), None);
    }
}

#[test]
fn error_code_of_the_fixtures_and_their_prefixes() {
    for (name, code) in [
        ("s3-error-bad-signature.xml", "SignatureDoesNotMatch"),
        ("s3-error-no-such-bucket.xml", "NoSuchBucket"),
        ("s3-error-time-skewed.xml", "RequestTimeTooSkewed"),
        ("admin-error-bad-signature.json", "SignatureDoesNotMatch"),
        ("admin-error-time-skewed.json", "RequestTimeTooSkewed"),
        ("admin-error-unknown-access-key.json", "InvalidAccessKeyId"),
        ("admin-error-no-usage-caps.json", "AccessDenied"),
    ] {
        let body = fixture(name);
        assert_eq!(error_code(&body).as_deref(), Some(code), "{name}");
        for end in 0..body.len() {
            let got = error_code(&body[..end]);
            assert!(
                got.is_none() || got.as_deref() == Some(code),
                "{name}[..{end}]: {got:?}"
            );
        }
    }
    for body in [
        "",
        "{}",
        "{\"Code\":\"\"}",
        "{\"Code\":1}",
        "<Error><Code></Code>",
        "<html><Code>X</Code>",
    ] {
        assert_eq!(error_code(body.as_bytes()), None, "{body:?}");
    }
}

// ------------------------------------------------------------------------------------------------
// Key templates
// ------------------------------------------------------------------------------------------------

/// strftime fields, valid and not, for templates made of pieces.
const SPECIFIERS: &[&str] = &[
    "%Y", "%m", "%d", "%H", "%M", "%S", "%y", "%C", "%j", "%e", "%b", "%B", "%h", "%a", "%A", "%u",
    "%w", "%U", "%W", "%G", "%g", "%V", "%I", "%l", "%k", "%p", "%P", "%s", "%f", "%.f", "%.3f",
    "%.6f", "%.9f", "%3f", "%6f", "%9f", "%z", "%:z", "%::z", "%:::z", "%#z", "%Z", "%F", "%T",
    "%R", "%D", "%x", "%X", "%c", "%r", "%v", "%+", "%n", "%t", "%%", "%-d", "%_m", "%0e", "%-H",
    "%Q", "%", "%5", "%E", "%O", "%-", "%:", "%.", "%.2f", "%#", "%^", "%_", "%0",
];

fn template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        select(SPECIFIERS).prop_map(String::from),
        "[a-z0-9./_ -]{1,4}",
        "\\PC{1,3}",
        // Path segments a URL would resolve, alone or next to fields.
        select(vec!["/.", "/..", "./", "../", "/./", "/../"]).prop_map(String::from),
    ];
    prop_oneof![any::<String>(), vec(piece, 0..8).prop_map(|ps| ps.concat()),]
}

/// The `.` and `..` path segments of a key.
fn dot_segments(key: &str) -> Vec<&str> {
    key.split('/').filter(|s| *s == "." || *s == "..").collect()
}

/// Templates with all of %Y %m %d %H %M %S, in any order, between literal text.
fn second_precise_template() -> impl Strategy<Value = String> {
    (
        Just(vec!["%Y", "%m", "%d", "%H", "%M", "%S"]).prop_shuffle(),
        "[a-z.]{0,4}",
        vec("[a-z0-9é/._ -]{0,3}", 6),
    )
        .prop_map(|(fields, head, gaps)| {
            fields
                .iter()
                .zip(&gaps)
                .fold(head, |acc, (f, gap)| format!("{acc}{f}{gap}"))
        })
}

proptest! {
    #![proptest_config(config(256, "tests/regressions/keys.txt"))]

    #[test]
    fn key_template_errors_are_the_documented_ones(t in template()) {
        match KeyTemplate::parse(&t) {
            Ok(k) => {
                prop_assert!(!t.is_empty() && !t.starts_with('/'));
                prop_assert_eq!(k.as_str(), t.as_str());
            }
            Err(KeyTemplateError::Empty) => prop_assert!(t.is_empty()),
            Err(KeyTemplateError::LeadingSlash(s)) => {
                prop_assert!(t.starts_with('/'));
                prop_assert_eq!(s, t);
            }
            Err(KeyTemplateError::BadField(s)) => {
                prop_assert!(t.contains('%'), "no field at all in {t:?}");
                prop_assert_eq!(s, t);
            }
            Err(KeyTemplateError::DotSegment { template, segment }) => {
                prop_assert_eq!(&template, &t);
                prop_assert!(segment == "." || segment == "..", "{segment:?}");
            }
            Err(e) => prop_assert!(false, "parse cannot say {e:?}"),
        }
    }

    #[test]
    fn accepted_key_templates_render_for_any_fire_time(
        t in template(),
        a in instant(),
        b in instant(),
    ) {
        let whole = utc(a.timestamp());
        let k = match KeyTemplate::parse(&t) {
            Ok(k) => k,
            // Refused for a dot segment: it is there in a key of a whole second, when fires are.
            Err(KeyTemplateError::DotSegment { segment, .. }) => {
                let key = whole.format(&t).to_string();
                prop_assert!(dot_segments(&key).contains(&segment.as_str()), "{t:?}: {key:?}");
                return Ok(());
            }
            Err(_) => return Ok(()),
        };
        // An accepted template never renders a segment the URL would resolve.
        for at in [a, b, whole] {
            let key = k.render(at);
            prop_assert!(dot_segments(&key).is_empty(), "{t:?} at {at}: {key:?}");
        }
        let (ka, kb) = (k.render(a), k.render(b));
        prop_assert_eq!(&ka, &k.render(a), "rendering is not deterministic");
        if !t.contains('%') {
            prop_assert_eq!(&ka, &t);
        }
        prop_assert_eq!(k.check_distinguishes(a, b).is_ok(), ka != kb);
    }

    #[test]
    fn second_precise_key_templates_tell_every_second_apart(
        t in second_precise_template().prop_filter("no dot segment", |t| dot_segments(t).is_empty()),
        a in (0..=MAX_SECS).prop_map(utc),
        step in prop_oneof![1..120i64, 1..MAX_SECS],
    ) {
        let b = utc((a.timestamp() + step) % (MAX_SECS + 1));
        let k = KeyTemplate::parse(&t).expect("a valid template");
        prop_assert_ne!(k.render(a), k.render(b), "{} at {} and {}", t, a, b);
        prop_assert!(k.check_distinguishes(a, b).is_ok());
    }

    #[test]
    fn default_key_templates_parse_back_to_the_fire_time(
        prefix in select(vec!["pool.", "usage."]),
        fire in (0..=MAX_SECS).prop_map(utc),
    ) {
        let template = format!("{prefix}%Y-%m-%d/%H/%M/%S");
        let key = KeyTemplate::parse(&template).expect("valid").render(fire);
        let back = NaiveDateTime::parse_from_str(&key, &template).expect("parses back").and_utc();
        prop_assert_eq!(back, fire);
        prop_assert_eq!(encode_key(&key), key, "default keys need no escaping");
    }
}

/// Every field of one or two characters after `%`, and the listed ones: when `parse` accepts
/// it, `render` works at the ends of the range. Found `%#z` (parse-only in chrono, so accepted
/// and then panicking in `render`; fixed in 7c97a75).
#[test]
fn accepted_fields_render_at_the_edges() {
    let edges = [
        utc(0),
        utc(MAX_SECS),
        DateTime::from_timestamp(951_782_400, 999_999_999).expect("leap day"),
    ];
    let printable: Vec<char> = (' '..='~').collect();
    let short = printable.iter().flat_map(|&a| {
        let pairs = printable.iter().map(move |&b| format!("%{a}{b}"));
        std::iter::once(format!("%{a}")).chain(pairs)
    });
    for field in SPECIFIERS.iter().map(|s| s.to_string()).chain(short) {
        let Ok(k) = KeyTemplate::parse(&format!("k{field}")) else {
            continue;
        };
        for t in edges {
            let rendered = std::panic::catch_unwind(|| k.render(t));
            assert!(
                rendered.is_ok_and(|key| key.starts_with('k')),
                "{field:?} at {t}"
            );
        }
    }
    assert_eq!(
        KeyTemplate::parse("usage.%Y%m%d%H%M%S%#z"),
        Err(KeyTemplateError::BadField("usage.%Y%m%d%H%M%S%#z".into()))
    );
}

// ------------------------------------------------------------------------------------------------
// Signature v2 canonicalization
// ------------------------------------------------------------------------------------------------

/// The sub-resources of the AWS v2 signing documentation, as the signer lists them.
use ceph_stats_exporter::s3auth::SUB_RESOURCES;

#[test]
fn the_sub_resource_list_is_sorted_and_has_the_documented_ones() {
    assert!(SUB_RESOURCES.windows(2).all(|w| w[0] < w[1]));
    for name in [
        "acl",
        "partNumber",
        "uploadId",
        "uploads",
        "versionId",
        "response-content-type",
    ] {
        assert!(SUB_RESOURCES.contains(&name), "{name}");
    }
}

/// A query parameter: name, value (`None` for a bare `name`), and whether the value is sent as
/// a form (`+` for space) or fully percent-encoded.
#[derive(Clone, Debug)]
struct Param {
    name: String,
    value: Option<String>,
    form: bool,
}

impl Param {
    fn wire(&self) -> String {
        match &self.value {
            None => self.name.clone(),
            Some(v) if self.form => {
                format!(
                    "{}={}",
                    self.name,
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            }
            Some(v) => format!("{}={}", self.name, utf8_percent_encode(v, NON_ALPHANUMERIC)),
        }
    }
}

fn param(name: impl Strategy<Value = String>) -> impl Strategy<Value = Param> {
    (name, proptest::option::of("\\PC{0,8}"), any::<bool>()).prop_map(|(name, value, form)| Param {
        name,
        value,
        form,
    })
}

/// Distinct sub-resources and ordinary parameters (which are not signed).
fn query() -> impl Strategy<Value = (Vec<Param>, Vec<Param>)> {
    let subs = subsequence(SUB_RESOURCES.to_vec(), 0..=6).prop_flat_map(|names| {
        names
            .into_iter()
            .map(|n| param(Just(n.to_string())))
            .collect::<Vec<_>>()
    });
    let ordinary_name = prop_oneof![
        select(vec![
            "prefix",
            "max-keys",
            "marker",
            "format",
            "start",
            "end",
            "show-entries",
            "uid",
            "x-id"
        ])
        .prop_map(String::from),
        "[a-z][a-z0-9-]{0,12}",
    ]
    .prop_filter("not a sub-resource", |n| {
        !SUB_RESOURCES.iter().any(|s| s.eq_ignore_ascii_case(n))
    });
    (subs, vec(param(ordinary_name), 0..5))
}

/// The canonical resource as the AWS documentation describes it.
fn documented_resource(vhost: Option<&str>, path: &str, subs: &[Param]) -> String {
    let mut subs: Vec<&Param> = subs.iter().collect();
    subs.sort_by(|a, b| a.name.cmp(&b.name));
    let query: Vec<String> = subs
        .iter()
        .map(|p| match &p.value {
            Some(v) if !v.is_empty() => format!("{}={v}", p.name),
            _ => p.name.clone(),
        })
        .collect();
    let bucket = vhost.map(|b| format!("/{b}")).unwrap_or_default();
    let path = if path.is_empty() { "/" } else { path };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    format!("{bucket}{path}{query}")
}

/// An `x-amz-*` or other header: its canonical name, the lines of its value, and how it is
/// sent (name in mixed case, value padded and folded over lines).
#[derive(Clone, Debug)]
struct Header {
    name: String,
    lines: Vec<String>,
    wire_name: String,
    wire_value: String,
}

impl Header {
    /// The canonical value: the lines joined with one space.
    fn value(&self) -> String {
        self.lines.join(" ")
    }
}

const AMZ_NAMES: &[&str] = &[
    "x-amz-date",
    "x-amz-acl",
    "x-amz-meta-a",
    "x-amz-meta-reviewedby",
    "x-amz-meta-b-c",
    "x-amz-security-token",
    "x-amz-content-sha256",
];
const OTHER_NAMES: &[&str] = &[
    "content-type",
    "content-md5",
    "date",
    "host",
    "user-agent",
    "x-amzdate",
    "x-am",
    "amz-meta",
    "x-ams-meta-a",
];

fn header(names: &'static [&'static str]) -> impl Strategy<Value = Header> {
    let name = prop_oneof![
        3 => select(names).prop_map(String::from),
        1 => "x-amz-meta-[a-z0-9]{1,6}",
    ];
    let line = "[!-~]([ \t!-~]{0,10}[!-~])?";
    let fold = ("[ \t]{0,2}", select(vec!["\r\n", "\n"]), "[ \t]{0,3}")
        .prop_map(|(a, nl, b)| format!("{a}{nl}{b}"));
    (
        name,
        any::<u64>(),
        vec(line, 0..3),
        "[ \t]{0,2}",
        fold,
        "[ \t]{0,2}",
    )
        .prop_map(|(name, case, lines, lead, fold, trail)| {
            let wire_name = mixed_case(&name, case);
            let wire_value = format!("{lead}{}{trail}", lines.join(&fold));
            Header {
                name,
                lines,
                wire_name,
                wire_value,
            }
        })
}

/// `name` with the letters whose bit is set in `mask` upper-cased (header names are
/// case-insensitive).
fn mixed_case(name: &str, mask: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if (mask >> (i % 64)) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn headers() -> impl Strategy<Value = Vec<Header>> {
    vec(
        prop_oneof![3 => header(AMZ_NAMES), 1 => header(OTHER_NAMES)],
        0..10,
    )
}

fn wire(headers: &[Header]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|h| (h.wire_name.as_str(), h.wire_value.as_str()))
        .collect()
}

/// The canonical amz headers as the AWS documentation describes them.
fn documented_amz_headers(headers: &[Header]) -> Vec<(String, String)> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in headers.iter().filter(|h| h.name.starts_with("x-amz-")) {
        by_name.entry(h.name.clone()).or_default().push(h.value());
    }
    by_name
        .into_iter()
        .map(|(n, vs)| (n, vs.join(",")))
        .collect()
}

/// RFC 3986 unreserved characters and `/` as they are, every other UTF-8 byte as `%XX`.
fn documented_key_encoding(key: &str) -> String {
    key.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Headers that decide the first lines of the string to sign.
const FIRST_LINE_HEADERS: &[&str] = &["x-amz-date", "date", "content-md5", "content-type"];

fn request<'a>(
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
    vhost: Option<&'a str>,
) -> SignableRequest<'a> {
    SignableRequest {
        method,
        path,
        query,
        headers,
        virtual_host_bucket: vhost,
    }
}

fn secret() -> impl Strategy<Value = String> {
    // No NUL: HMAC pads short keys with zeros, so "k" and "k\0" are the same key by design.
    "[A-Za-z0-9/+]{1,40}"
}

proptest! {
    #![proptest_config(config(256, "tests/regressions/s3auth.txt"))]

    #[test]
    fn canonical_resource_signs_sorted_sub_resources_only(
        (subs, ordinary) in query(),
        key in "\\PC{0,20}",
        vhost in proptest::option::of("[a-z0-9][a-z0-9.-]{0,10}"),
        seeds in vec(any::<u64>(), 3),
    ) {
        let path = if key.is_empty() { String::new() } else { format!("/{}", encode_key(&key)) };
        let expected = documented_resource(vhost.as_deref(), &path, &subs);
        let params: Vec<Param> = subs.iter().chain(&ordinary).cloned().collect();
        let sign = |params: &[Param]| {
            let query: Vec<String> = params.iter().map(Param::wire).collect();
            canonical_resource(vhost.as_deref(), &path, Some(&query.join("&")))
        };
        let got = sign(&params);
        prop_assert_eq!(&got, &expected);
        // Whatever the order on the wire.
        for seed in seeds {
            let mut shuffled = params.clone();
            Shuffler(seed).shuffle(&mut shuffled);
            prop_assert_eq!(&sign(&shuffled), &got, "{:?}", shuffled);
        }
        // Only sub-resources, in order (read back when no value holds a '&').
        if subs.iter().all(|p| p.value.as_deref().is_none_or(|v| !v.contains('&'))) {
            let signed: Vec<&str> = got
                .split_once('?')
                .map(|(_, q)| q.split('&').map(|kv| kv.split('=').next().unwrap_or(kv)).collect())
                .unwrap_or_default();
            let names: BTreeSet<&str> = subs.iter().map(|p| p.name.as_str()).collect();
            prop_assert_eq!(signed, names.into_iter().collect::<Vec<_>>());
        }
        prop_assert_eq!(
            canonical_resource(vhost.as_deref(), &path, None),
            documented_resource(vhost.as_deref(), &path, &[])
        );
    }

    #[test]
    fn canonical_amz_headers_do_not_depend_on_header_order(
        headers in headers(),
        seed in any::<u64>(),
    ) {
        let expected = documented_amz_headers(&headers);
        let got = canonical_amz_headers(&wire(&headers));
        prop_assert_eq!(&got, &expected);
        let permuted = Shuffler(seed).shuffle_keeping_order_within(&headers, |h| h.name.clone());
        prop_assert_eq!(canonical_amz_headers(&wire(&permuted)), got.clone());
        for (name, value) in &got {
            prop_assert_eq!(name, &name.to_ascii_lowercase());
            prop_assert!(name.starts_with("x-amz-"));
            prop_assert_eq!(value.trim(), value.as_str());
            prop_assert!(!value.contains('\n') && !value.contains('\r'), "{value:?}");
        }
        prop_assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "not sorted and unique: {got:?}");
    }

    #[test]
    fn encoded_keys_escape_all_but_unreserved_and_slash_and_decode_back(
        key in prop_oneof![any::<String>(), "[a-zA-Z0-9/~._ %+-]{0,20}"],
        other in "\\PC{0,10}",
    ) {
        let enc = encode_key(&key);
        prop_assert_eq!(&enc, &documented_key_encoding(&key));
        prop_assert_eq!(percent_decode_str(&enc).decode_utf8().expect("UTF-8"), key.as_str());
        prop_assert_eq!(
            encode_key(&format!("{key}/{other}")),
            format!("{enc}/{}", encode_key(&other))
        );
    }

    #[test]
    fn string_to_sign_has_the_documented_lines(
        method in select(vec!["GET", "PUT", "DELETE", "HEAD", "POST"]),
        date in "[ -~]{0,31}",
        amz_date in proptest::option::of((any::<u64>(), "[ -~]{0,31}")),
        md5 in proptest::option::of("[ -~]{0,24}"),
        content_type in proptest::option::of("[ -~]{0,24}"),
        others in headers(),
        key in "\\PC{0,12}",
        (subs, ordinary) in query(),
    ) {
        // The headers of the first lines are only the ones given here.
        let others: Vec<Header> = others
            .into_iter()
            .filter(|h| !FIRST_LINE_HEADERS.contains(&h.name.as_str()))
            .collect();
        let amz_date = amz_date.map(|(case, value)| (mixed_case("x-amz-date", case), value));
        let mut all: Vec<(&str, &str)> = vec![("Date", date.as_str())];
        all.extend(amz_date.as_ref().map(|(n, v)| (n.as_str(), v.as_str())));
        all.extend(md5.as_deref().map(|v| ("Content-MD5", v)));
        all.extend(content_type.as_deref().map(|v| ("content-type", v)));
        all.extend(wire(&others));
        let path = format!("/bucket/{}", encode_key(&key));
        let q: Vec<String> = subs.iter().chain(&ordinary).map(Param::wire).collect();
        let q = q.join("&");
        let sts = string_to_sign(&request(method, &path, Some(&q), &all, None));

        let lines: Vec<&str> = sts.splitn(5, '\n').collect();
        prop_assert_eq!(lines.len(), 5, "{:?}", sts);
        prop_assert_eq!(lines[0], method);
        prop_assert_eq!(lines[1], md5.as_deref().unwrap_or("").trim());
        prop_assert_eq!(lines[2], content_type.as_deref().unwrap_or("").trim());
        let date_line = if amz_date.is_some() { "" } else { date.trim() };
        prop_assert_eq!(lines[3], date_line);
        let amz: String =
            canonical_amz_headers(&all).iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let resource = documented_resource(None, &path, &subs);
        prop_assert_eq!(lines[4].to_string(), format!("{amz}{resource}"));
    }

    #[test]
    fn any_change_to_the_string_to_sign_or_secret_changes_the_signature(
        sts in "[ -~\n]{0,200}",
        at in any::<Index>(),
        replacement in "[ -~\n]",
        secret_a in secret(),
        secret_b in secret(),
    ) {
        let a = Secret::new(secret_a.clone());
        let sig = signature(&a, &sts);
        prop_assert_eq!(sig.len(), 28, "base64 of 20 bytes: {}", sig);
        prop_assert_eq!(&sig, &signature(&Secret::new(secret_a.clone()), &sts));
        let mut changed = sts.clone().into_bytes();
        if changed.is_empty() {
            changed.extend_from_slice(replacement.as_bytes());
        } else {
            let i = at.index(changed.len());
            if changed[i] == replacement.as_bytes()[0] {
                changed.remove(i);
            } else {
                changed[i] = replacement.as_bytes()[0];
            }
        }
        let changed = String::from_utf8(changed).expect("ASCII");
        prop_assert_ne!(&sig, &signature(&a, &changed), "{:?} vs {:?}", sts, changed);
        if secret_a != secret_b {
            prop_assert_ne!(sig, signature(&Secret::new(secret_b), &sts));
        }
    }
}

#[test]
fn canonical_resource_of_encoded_values_and_bare_names() {
    assert_eq!(
        canonical_resource(
            None,
            "/b/k",
            Some("uploadId=a+b%2Bc&acl&versionId=&format=json")
        ),
        "/b/k?acl&uploadId=a b+c&versionId"
    );
    assert_eq!(
        canonical_resource(Some("b"), "/k", Some("x-id=1&&")),
        "/b/k"
    );
}

// ------------------------------------------------------------------------------------------------
// Usage windows
// ------------------------------------------------------------------------------------------------

const LENGTHS: &[WindowLength] = &[
    WindowLength::Hours(1),
    WindowLength::Hours(2),
    WindowLength::Hours(3),
    WindowLength::Hours(4),
    WindowLength::Hours(6),
    WindowLength::Hours(8),
    WindowLength::Hours(12),
    WindowLength::Hours(24),
    WindowLength::Day,
];

fn berlin() -> Tz {
    "Europe/Berlin".parse().expect("a known zone")
}

/// Zones with DST (at 02:00, at midnight, by 30 minutes) and with offsets of whole and not
/// whole hours.
const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "Asia/Kolkata",
    "Asia/Tehran",
    "Australia/Lord_Howe",
];

fn zone() -> impl Strategy<Value = Tz> {
    select(ZONES).prop_map(|z| z.parse::<Tz>().expect("a known zone"))
}

fn on_hour(t: DateTime<Utc>) -> bool {
    t.minute() == 0 && t.second() == 0 && t.nanosecond() == 0
}

/// The first instant of a local calendar day (not midnight where DST starts at midnight).
fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    (0..=24 * 60)
        .find_map(|m| {
            let local = date.and_hms_opt(0, 0, 0).expect("midnight") + Duration::minutes(m);
            tz.from_local_datetime(&local).earliest()
        })
        .expect("a day has an instant")
        .to_utc()
}

/// The window rules. Hour windows tile the UTC day, in every zone: exactly the `n` hours
/// before the fire time rounded down to `n` hours. A day is the last complete calendar day of
/// the zone, refused when its ends are not on whole UTC hours.
fn check_window(fire: DateTime<Utc>, length: WindowLength, tz: Tz) -> Result<(), TestCaseError> {
    let result = Window::last_complete(fire, length, tz);
    let WindowLength::Hours(n) = length else {
        return check_day(fire, tz, result);
    };
    let step = 3600 * i64::from(n);
    let end = utc(fire.timestamp().div_euclid(step) * step);
    let w = result.map_err(|e| TestCaseError::fail(format!("{fire} {length} {tz}: {e}")))?;
    prop_assert_eq!(
        (w.start, w.end),
        (end - Duration::seconds(step), end),
        "{} {} {}",
        fire,
        length,
        tz
    );
    Ok(())
}

fn check_day(
    fire: DateTime<Utc>,
    tz: Tz,
    result: Result<Window, WindowError>,
) -> Result<(), TestCaseError> {
    let today = fire.with_timezone(&tz).date_naive();
    let (start, end) = (
        start_of_day(today - Duration::days(1), tz),
        start_of_day(today, tz),
    );
    match result {
        Ok(w) => {
            prop_assert_eq!((w.start, w.end), (start, end), "{} {}", fire, tz);
            prop_assert!(on_hour(w.start) && on_hour(w.end));
            prop_assert!(w.end <= fire && fire < start_of_day(today + Duration::days(1), tz));
            prop_assert!((23..=25).contains(&(w.end - w.start).num_hours()), "{w:?}");
        }
        Err(WindowError::NotOnHour(t)) => {
            prop_assert!(
                t == start || t == end,
                "{fire} {tz}: {t} is not an end of the day"
            );
            prop_assert!(!on_hour(t));
        }
        Err(WindowError::NoSuchLocalTime(local, _))
            if tz.from_local_datetime(&local).earliest().is_none() =>
        {
            // The bug below: a day whose midnight does not exist (DST starting at midnight).
            prop_assume!(false, "a day without midnight");
        }
        Err(e) => prop_assert!(false, "{fire} {tz}: {e}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256, "tests/regressions/window.txt"))]

    #[test]
    fn windows_are_the_last_complete_ones(
        fire in instant(),
        length in select(LENGTHS),
        tz in prop_oneof![Just(Tz::UTC), Just(berlin()), zone()],
    ) {
        check_window(fire, length, tz)?;
    }

    #[test]
    fn hour_windows_do_not_depend_on_the_zone(
        fire in instant(),
        length in select(&LENGTHS[..8]),
        tz in zone(),
    ) {
        prop_assert_eq!(
            Window::last_complete(fire, length, tz),
            Window::last_complete(fire, length, Tz::UTC)
        );
    }

    #[test]
    fn query_bounds_parse_back_to_the_instant(t in instant()) {
        let bound = Window::query_bound(t);
        prop_assert_eq!(bound.len(), 19, "{}", bound);
        let back = NaiveDateTime::parse_from_str(&bound, "%Y-%m-%d %H:%M:%S").expect("parses");
        let back = back.and_utc();
        prop_assert_eq!(back, t.with_nanosecond(0).expect("valid"));
    }

    #[test]
    fn explicit_windows_need_order_and_whole_hours(
        start in prop_oneof![(0..2_000_000i64).prop_map(|h| utc(h * 3600)), instant()],
        hours_later in -3..48i64,
        jitter in prop_oneof![Just(0i64), -3600..3600i64],
    ) {
        let end = start + Duration::hours(hours_later) + Duration::seconds(jitter);
        let result = Window::explicit(start, end);
        match &result {
            Ok(w) => {
                prop_assert!(start < end && on_hour(start) && on_hour(end));
                prop_assert_eq!((w.start, w.end), (start, end));
                prop_assert!(w.contains(start) && !w.contains(end));
            }
            Err(WindowError::Empty { .. }) => prop_assert!(start >= end),
            Err(WindowError::NotOnHour(t)) => {
                prop_assert!(start < end);
                prop_assert_eq!(*t, if on_hour(start) { end } else { start });
            }
            Err(e) => prop_assert!(false, "explicit cannot say {e:?}"),
        }
    }

    #[test]
    fn window_lengths_parse_only_the_documented_ones(
        s in prop_oneof![
            "[0-9+]{0,3}[hdm]?",
            select(LENGTHS).prop_map(|l| l.to_string()),
        ]
    ) {
        match s.parse::<WindowLength>() {
            Ok(l) => {
                prop_assert!(LENGTHS.contains(&l), "{s:?} parsed as {l:?}");
                prop_assert_eq!(l.to_string().parse::<WindowLength>(), Ok(l));
            }
            Err(e) => prop_assert_eq!(e, WindowError::BadLength(s.clone())),
        }
    }
}

/// When `tz` changed its UTC offset in `year`, to the hour.
fn offset_changes(tz: Tz, year: i32) -> Vec<DateTime<Utc>> {
    let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    let start = NaiveDate::from_ymd_opt(year, 1, 1)
        .expect("valid")
        .and_hms_opt(0, 0, 0);
    let start = start.expect("valid").and_utc();
    (1..366 * 24)
        .map(|h| start + Duration::hours(h))
        .filter(|&t| offset(t) != offset(t - Duration::hours(1)))
        .collect()
}

#[test]
fn windows_every_twenty_minutes_around_the_2026_changes_of_every_zone() {
    for zone in ZONES {
        let tz: Tz = zone.parse().expect("a known zone");
        for change in offset_changes(tz, 2026) {
            for step in -3 * 36..3 * 36 {
                let fire = change + Duration::minutes(20 * step);
                for &length in LENGTHS {
                    match check_window(fire, length, tz) {
                        // A day without midnight, the ignored bug below.
                        Ok(()) | Err(TestCaseError::Reject(_)) => {}
                        Err(e) => panic!("{zone}: {e}"),
                    }
                }
            }
        }
    }
}

#[test]
fn every_length_displays_as_it_parses() {
    for l in LENGTHS {
        assert_eq!(l.to_string().parse::<WindowLength>(), Ok(*l));
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .to_utc()
}

/// Found by an earlier version of `windows_are_the_last_complete_ones` (fixed in 7c97a75, hour
/// windows on UTC): hourly windows in Berlin failed with `NoSuchLocalTime` at the spring change
/// and repeated an hour at the autumn one.
#[test]
fn berlin_hourly_windows_at_the_2026_changes() {
    for (fire, start) in [
        ("2026-03-29T01:30:00Z", "2026-03-29T00:00:00Z"),
        ("2026-10-25T01:30:00Z", "2026-10-25T00:00:00Z"),
        ("2026-10-25T02:00:00Z", "2026-10-25T01:00:00Z"),
    ] {
        let w = Window::last_complete(at(fire), WindowLength::Hours(1), berlin()).expect(fire);
        assert_eq!(
            (w.start, w.end),
            (at(start), at(start) + Duration::hours(1)),
            "{fire}"
        );
    }
}

/// Found by `windows_are_the_last_complete_ones` (skipped there): where DST starts at midnight
/// (America/Havana, America/Santiago, Asia/Beirut, Africa/Cairo, ...), the local day has no
/// 00:00, `to_utc` refuses it, and the two daily windows that end or start there are never
/// archived. Havana 2026-03-08 starts at 01:00 CDT (05:00Z).
#[test]
fn day_windows_where_dst_starts_at_midnight() {
    let havana: Tz = "America/Havana".parse().expect("a known zone");
    for (fire, start, end) in [
        (
            "2026-03-08T12:00:00Z",
            "2026-03-07T05:00:00Z",
            "2026-03-08T05:00:00Z",
        ),
        (
            "2026-03-09T12:00:00Z",
            "2026-03-08T05:00:00Z",
            "2026-03-09T04:00:00Z",
        ),
    ] {
        let w = Window::last_complete(at(fire), WindowLength::Day, havana);
        assert_eq!(
            w.map(|w| (w.start, w.end)),
            Ok((at(start), at(end))),
            "{fire}"
        );
    }
}
