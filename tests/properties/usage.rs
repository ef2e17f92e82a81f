//! The admin usage parser on arbitrary and mutated answers, on each number of the real answer,
//! and on generated answers whose report is computed independently of the parser.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ceph_stats_exporter::usage::{self, BucketUsage, Counters, UsageError, UsageReport, UserUsage};
use ceph_stats_exporter::window::Window;
use chrono::DateTime;
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::{json, Value};

use crate::support::fixtures::fixture_json;
use crate::{arbitrary_bytes, assert_every_prefix, config, mutated_fixture, utc, Shuffler};

/// The hour all usage fixtures were captured in: 2026-11-22T17:00:00Z.
const HOUR: i64 = 1_795_366_800;

fn fixture_hour() -> Window {
    Window {
        start: utc(HOUR),
        end: utc(HOUR + 3600),
    }
}

pub(crate) const USAGE_FIXTURES: &[&str] = &[
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
