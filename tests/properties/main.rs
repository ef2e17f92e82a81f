//! Property tests (proptest) of the pure parts of the exporter, through the public API only, one
//! file per subject: the `osd df tree` and admin usage parsers (`osd_df.rs`, `usage.rs`), the
//! block-wise JSON walker (`jsonwalk.rs`), S3/admin error bodies (`error_code.rs`), key templates
//! (`keys.rs`), the v2 signer's canonicalization (`s3auth.rs`) and usage windows (`window.rs`).
//! This file holds what they share: the configuration, instants, mutations and JSON edits.
//!
//! Each group saves the seeds of failing cases in `tests/regressions/<group>.txt`; proptest
//! replays them first on every later run, so keep those files. Inputs worth keeping forever are
//! also plain `#[test]`s after each group, including the bugs found (marked `#[ignore]` until
//! fixed). `PROPTEST_CASES=N` overrides every group's case count for a deeper local run.

#[path = "../support/mod.rs"]
mod support;

mod error_code;
mod jsonwalk;
mod keys;
mod osd_df;
mod s3auth;
mod usage;
mod window;

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::FileFailurePersistence;
use serde_json::Value;

use support::fixtures::fixture;

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
