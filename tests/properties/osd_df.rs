//! The `osd df tree` parser on arbitrary, mutated and edited answers: an error or a sound
//! report, root counts read exactly or refused by the documented rules.

use ceph_stats_exporter::osd_df::{self, CapacityReport, OsdDfError};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::Value;

use crate::support::fixtures::{fixture, fixture_json};
use crate::{arbitrary_bytes, assert_every_prefix, config, mutated_fixture, with_raw, without};

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
