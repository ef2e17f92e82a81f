//! Parsing `ceph osd df tree -f json` into a [`CapacityReport`].
//!
//! The tree is a flat list of CRUSH nodes (roots, hosts, OSDs) linked by `children` ids. Each
//! node carries its own `kb`, `kb_used` and `kb_avail`, so a root's totals are read, not summed.
//! Only the fields the exporter archives are declared; Ceph adds fields between releases and
//! those are ignored. Numbers must be JSON integers: a string, a float or a negative value where
//! Ceph sends a count is an error, never a silent zero.
//!
//! Names must be CRUSH names as Ceph itself allows them (`CrushWrapper::is_valid_crush_name`:
//! ASCII letters, digits, `-`, `_`, `.`; and `~`, which joins a device class to its shadow
//! root). The text format writes a root's name between `>` and `:` on a line of its own, so a
//! name holding a newline, `>` or `:` would forge lines: such an answer is refused, as is one
//! naming two roots alike.

use serde::{Deserialize, Serialize};

/// One CRUSH node with its capacity, in KiB as Ceph reports it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct CapacityNode {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub kb: u64,
    pub kb_used: u64,
    pub kb_avail: u64,
    /// Percent used, as Ceph computes it (`kb_used / kb * 100`).
    pub utilization: f64,
    /// `up` or `down`, for OSDs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<i64>,
}

/// The cluster-wide `summary` object of `osd df`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct CapacitySummary {
    pub total_kb: u64,
    pub total_kb_used: u64,
    pub total_kb_avail: u64,
    pub average_utilization: f64,
}

/// Capacity of the cluster at one instant, by CRUSH root, host and OSD.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CapacityReport {
    pub roots: Vec<CapacityNode>,
    pub hosts: Vec<CapacityNode>,
    pub osds: Vec<CapacityNode>,
    pub summary: CapacitySummary,
}

#[derive(Deserialize)]
struct RawTree {
    nodes: Vec<CapacityNode>,
    #[serde(default)]
    stray: Vec<CapacityNode>,
    summary: CapacitySummary,
}

/// Why an `osd df tree` answer was not accepted as a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum OsdDfError {
    #[error("osd df tree JSON is malformed or of an unexpected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("osd df tree lists no CRUSH root")]
    NoRoots,
    #[error(
        "every CRUSH root reports kb = 0 ({roots}): the mgr has no OSD statistics yet (it says so \
         for a few seconds after it starts); not archiving zeros"
    )]
    ZeroCapacity { roots: String },
    #[error(
        "CRUSH {node_type} {id} is named {name:?}: not a CRUSH name (ASCII letters, digits, \
         '-', '_', '.', '~'); not archiving an answer that would forge text lines"
    )]
    BadName {
        id: i64,
        node_type: String,
        name: String,
    },
    #[error("two CRUSH roots are named {0:?}: their lines could not be told apart")]
    DuplicateRoot(String),
    #[error("CRUSH root {name}: kb_used ({kb_used}) + kb_avail ({kb_avail}) exceeds kb ({kb})")]
    Inconsistent {
        name: String,
        kb: u64,
        kb_used: u64,
        kb_avail: u64,
    },
}

/// Parses the JSON of `ceph osd df tree -f json`.
pub fn parse(json: &[u8]) -> Result<CapacityReport, OsdDfError> {
    let tree: RawTree = serde_json::from_slice(json)?;
    let mut report = CapacityReport {
        roots: Vec::new(),
        hosts: Vec::new(),
        osds: Vec::new(),
        summary: tree.summary,
    };
    for node in tree.nodes.into_iter().chain(tree.stray) {
        if !is_crush_name(&node.name) {
            return Err(OsdDfError::BadName {
                id: node.id,
                node_type: node.node_type.chars().take(32).collect(),
                name: node.name.chars().take(256).collect(),
            });
        }
        match node.node_type.as_str() {
            "root" => report.roots.push(node),
            "host" => report.hosts.push(node),
            "osd" => report.osds.push(node),
            _ => {} // racks, rows, datacenters: their totals are already inside the roots
        }
    }
    if report.roots.is_empty() {
        return Err(OsdDfError::NoRoots);
    }
    let mut names = std::collections::HashSet::new();
    if let Some(twice) = report.roots.iter().find(|r| !names.insert(r.name.as_str())) {
        return Err(OsdDfError::DuplicateRoot(twice.name.clone()));
    }
    if report.roots.iter().all(|r| r.kb == 0) {
        let roots = report
            .roots
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(OsdDfError::ZeroCapacity { roots });
    }
    for root in &report.roots {
        if root
            .kb_used
            .checked_add(root.kb_avail)
            .is_none_or(|sum| sum > root.kb)
        {
            return Err(OsdDfError::Inconsistent {
                name: root.name.clone(),
                kb: root.kb,
                kb_used: root.kb_used,
                kb_avail: root.kb_avail,
            });
        }
    }
    Ok(report)
}

/// Ceph's rule for CRUSH item names, with `~` for device-class shadow trees.
fn is_crush_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fixture;

    #[test]
    fn parses_the_real_tree_into_roots_hosts_and_osds() {
        let r = parse(&fixture("ceph-osd-df-tree.json")).unwrap();
        assert_eq!(r.roots.len(), 1);
        let root = &r.roots[0];
        assert_eq!(
            (root.name.as_str(), root.kb, root.kb_avail, root.kb_used),
            ("default", 2097152, 2095866, 1284)
        );
        assert_eq!(r.hosts[0].name, "ceph-dev");
        let osds: Vec<_> = r.osds.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(osds, ["osd.0", "osd.1"]);
        assert_eq!(r.osds[0].status.as_deref(), Some("up"));
        assert_eq!(r.summary.total_kb, 2097152);
    }

    #[test]
    fn keeps_every_root_in_ceph_order() {
        let r = parse(&fixture("ceph-osd-df-tree.second-root.json")).unwrap();
        let roots: Vec<_> = r.roots.iter().map(|o| (o.name.as_str(), o.kb)).collect();
        assert_eq!(roots, [("archive", 1048576), ("default", 2097152)]);
    }

    #[test]
    fn refuses_the_all_zero_answer_after_a_mgr_restart() {
        let err = parse(&fixture("ceph-osd-df-tree.right-after-mgr-restart.json")).unwrap_err();
        assert!(matches!(err, OsdDfError::ZeroCapacity { .. }), "{err}");
        assert!(err.to_string().contains("default"));
    }

    #[test]
    fn rejects_wrong_types_instead_of_reading_zero() {
        let good = String::from_utf8(fixture("ceph-osd-df-tree.json")).unwrap();
        for (from, to) in [
            ("\"kb\":2097152", "\"kb\":\"2097152\""),
            ("\"kb\":2097152", "\"kb\":2097152.5"),
            ("\"kb\":2097152", "\"kb\":-1"),
            ("\"kb\":2097152,", ""),
        ] {
            let bad = good.replacen(from, to, 1);
            assert_ne!(bad, good);
            let err = parse(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, OsdDfError::Json(_)), "{from} -> {to}: {err}");
        }
    }

    #[test]
    fn truncated_html_and_empty_bodies_are_errors_with_a_position() {
        let good = fixture("ceph-osd-df-tree.json");
        let err = parse(&good[..good.len() / 2]).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(parse(b"<html><body>502 Bad Gateway</body></html>").is_err());
        assert!(parse(b"").is_err());
        assert!(matches!(
            parse(br#"{"nodes":[],"stray":[],"summary":{"total_kb":0,"total_kb_used":0,"total_kb_avail":0,"average_utilization":0}}"#),
            Err(OsdDfError::NoRoots)
        ));
    }

    #[test]
    fn names_that_would_forge_text_lines_are_refused_and_named_escaped() {
        let good = String::from_utf8(fixture("ceph-osd-df-tree.json")).unwrap();
        for (bad_name, shown) in [
            (
                r#"default:1 kb 1 kb_avail 0 kb_used\n2026/01/01/00:00:00>evil"#,
                r#""default:1 kb 1 kb_avail 0 kb_used\n2026/01/01/00:00:00>evil""#,
            ),
            (r#"a\rb"#, r#""a\rb""#),
            (r#"\u001b[2Jx"#, r#""\u{1b}[2Jx""#),
            ("a>b", r#""a>b""#),
            ("a:b", r#""a:b""#),
            ("a b", r#""a b""#),
            ("", r#""""#),
        ] {
            let bad = good.replacen(r#""name":"default""#, &format!(r#""name":"{bad_name}""#), 1);
            assert_ne!(bad, good);
            let err = parse(bad.as_bytes()).unwrap_err();
            assert!(
                matches!(err, OsdDfError::BadName { .. }),
                "{bad_name}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains(shown), "{text}");
            assert!(!text.contains('\n') && !text.contains('\r') && !text.contains('\x1b'));
        }
        // A host or OSD is held to the same rule.
        let bad = good.replacen(r#""name":"ceph-dev""#, r#""name":"ceph dev""#, 1);
        assert!(matches!(
            parse(bad.as_bytes()),
            Err(OsdDfError::BadName { .. })
        ));
        // Shadow roots of device classes are fine.
        let shadow = good.replacen(r#""name":"default""#, r#""name":"default~hdd""#, 1);
        assert_eq!(
            parse(shadow.as_bytes()).unwrap().roots[0].name,
            "default~hdd"
        );
    }

    #[test]
    fn two_roots_of_one_name_are_refused() {
        let good = String::from_utf8(fixture("ceph-osd-df-tree.second-root.json")).unwrap();
        let bad = good.replacen(r#""name":"archive""#, r#""name":"default""#, 1);
        assert_ne!(bad, good);
        let err = parse(bad.as_bytes()).unwrap_err();
        assert!(
            matches!(err, OsdDfError::DuplicateRoot(ref n) if n == "default"),
            "{err}"
        );
    }

    #[test]
    fn rejects_a_root_whose_parts_exceed_its_size() {
        let good = String::from_utf8(fixture("ceph-osd-df-tree.json")).unwrap();
        let bad = good.replacen("\"kb_used\":1284", "\"kb_used\":9999999", 1);
        assert!(matches!(
            parse(bad.as_bytes()),
            Err(OsdDfError::Inconsistent { .. })
        ));
        // A sum that overflows 64 bits is inconsistent too, not saturated into range.
        let max = u64::MAX;
        let bad = good
            .replacen("\"kb\":2097152", &format!("\"kb\":{max}"), 1)
            .replacen("\"kb_used\":1284", &format!("\"kb_used\":{max}"), 1)
            .replacen("\"kb_avail\":2095866", &format!("\"kb_avail\":{max}"), 1);
        assert!(matches!(
            parse(bad.as_bytes()),
            Err(OsdDfError::Inconsistent { .. })
        ));
    }
}
