//! The block-wise JSON walker against serde reading the whole slice.

use ceph_stats_exporter::jsonwalk::{WalkError, Walker};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::Value;

use crate::usage::USAGE_FIXTURES;
use crate::{arbitrary_bytes, config, mutated_fixture};

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
