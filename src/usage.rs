//! Parsing and aggregating the RGW admin usage log (`GET /admin/usage?format=json`).
//!
//! The answer has `entries` (per user, then per bucket and hour, then per category) and
//! `summary` (per user: categories and a `total`). RGW merges raw hourly records, so one bucket
//! can appear several times in one answer: entries are always *summed*, never overwritten.
//!
//! The report keeps everything in `BTreeMap`s so that the same answer always renders to the same
//! bytes, whatever order RGW listed it in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::window::Window;

/// The four counters RGW keeps per category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Counters {
    pub ops: u64,
    pub successful_ops: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Counters {
    fn checked_add(self, o: Counters) -> Option<Counters> {
        Some(Counters {
            ops: self.ops.checked_add(o.ops)?,
            successful_ops: self.successful_ops.checked_add(o.successful_ops)?,
            bytes_sent: self.bytes_sent.checked_add(o.bytes_sent)?,
            bytes_received: self.bytes_received.checked_add(o.bytes_received)?,
        })
    }
}

/// One user's usage in the window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserUsage {
    pub total: Counters,
    pub categories: BTreeMap<String, Counters>,
}

/// One bucket's usage in the window (bucket `""` is service-level calls such as list_buckets;
/// `"-"` is requests for missing keys).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BucketUsage {
    pub owner: String,
    pub bucket: String,
    pub total: Counters,
    pub categories: BTreeMap<String, Counters>,
}

/// The usage of a window: totals, per user, and (with entries) per bucket and category.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UsageReport {
    pub window: Window,
    pub total: Counters,
    pub users: BTreeMap<String, UserUsage>,
    /// Present when the job asks RGW for entries (`show_entries = true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<BucketUsage>>,
}

#[derive(Deserialize)]
struct RawUsage {
    entries: Option<Vec<RawUserEntries>>,
    summary: Vec<RawSummary>,
}

#[derive(Deserialize)]
struct RawUserEntries {
    user: String,
    buckets: Vec<RawBucket>,
}

#[derive(Deserialize)]
struct RawBucket {
    bucket: String,
    epoch: i64,
    owner: String,
    categories: Vec<RawCategory>,
}

#[derive(Deserialize)]
struct RawCategory {
    category: String,
    #[serde(flatten)]
    counters: Counters,
}

#[derive(Deserialize)]
struct RawSummary {
    user: String,
    categories: Vec<RawCategory>,
    total: Counters,
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("usage JSON is malformed or of an unexpected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("usage answer has no `entries` although entries were asked for")]
    MissingEntries,
    #[error(
        "usage record of user {user}, bucket {bucket:?} at {time} lies outside the requested \
         window [{}, {}): RGW ignored the window (did a proxy rewrite start/end?)",
        window.start, window.end
    )]
    OutsideWindow {
        user: String,
        bucket: String,
        time: String,
        window: Window,
    },
    #[error("user {0} appears twice in the usage summary")]
    DuplicateUser(String),
    #[error("usage counters overflow 64 bits while summing {0}")]
    Overflow(String),
    #[error(
        "usage of user {user} does not add up: entries sum to {entries:?} but the summary says \
         {summary:?}"
    )]
    Inconsistent {
        user: String,
        entries: Counters,
        summary: Counters,
    },
}

fn add_into(
    map: &mut BTreeMap<String, Counters>,
    key: &str,
    c: Counters,
    what: &str,
) -> Result<(), UsageError> {
    let slot = map.entry(key.to_string()).or_default();
    *slot = slot
        .checked_add(c)
        .ok_or_else(|| UsageError::Overflow(what.to_string()))?;
    Ok(())
}

fn sum<'a>(
    counters: impl IntoIterator<Item = &'a Counters>,
    what: &str,
) -> Result<Counters, UsageError> {
    counters
        .into_iter()
        .try_fold(Counters::default(), |acc, c| acc.checked_add(*c))
        .ok_or_else(|| UsageError::Overflow(what.to_string()))
}

/// Parses an `/admin/usage` answer for `window`, checking that every record lies inside it and
/// that the entries (when asked for) add up to the summary.
pub fn parse(json: &[u8], window: Window, with_entries: bool) -> Result<UsageReport, UsageError> {
    let raw: RawUsage = serde_json::from_slice(json)?;

    let mut users = BTreeMap::new();
    for s in &raw.summary {
        let mut categories = BTreeMap::new();
        for c in &s.categories {
            add_into(&mut categories, &c.category, c.counters, &s.user)?;
        }
        let usage = UserUsage {
            total: s.total,
            categories,
        };
        if users.insert(s.user.clone(), usage).is_some() {
            return Err(UsageError::DuplicateUser(s.user.clone()));
        }
    }
    let total = sum(users.values().map(|u| &u.total), "the cluster total")?;

    let buckets = match (with_entries, raw.entries) {
        (false, _) => None,
        (true, None) => return Err(UsageError::MissingEntries),
        (true, Some(entries)) => Some(aggregate_entries(&entries, window, &users)?),
    };
    Ok(UsageReport {
        window,
        total,
        users,
        buckets,
    })
}

fn aggregate_entries(
    entries: &[RawUserEntries],
    window: Window,
    users: &BTreeMap<String, UserUsage>,
) -> Result<Vec<BucketUsage>, UsageError> {
    // (owner, bucket) -> category -> counters; per user -> counters, to check against summary.
    let mut by_bucket: BTreeMap<(String, String), BTreeMap<String, Counters>> = BTreeMap::new();
    let mut per_user: BTreeMap<String, Counters> = BTreeMap::new();
    for e in entries {
        for b in &e.buckets {
            let hour = DateTime::<Utc>::from_timestamp(b.epoch, 0);
            if !hour.is_some_and(|t| window.contains(t)) {
                return Err(UsageError::OutsideWindow {
                    user: e.user.clone(),
                    bucket: b.bucket.clone(),
                    time: hour.map_or_else(|| b.epoch.to_string(), |t| t.to_rfc3339()),
                    window,
                });
            }
            let cats = by_bucket
                .entry((b.owner.clone(), b.bucket.clone()))
                .or_default();
            for c in &b.categories {
                add_into(cats, &c.category, c.counters, &b.bucket)?;
                add_into(&mut per_user, &e.user, c.counters, &e.user)?;
            }
        }
    }
    for (user, u) in users {
        let entries = per_user.get(user).copied().unwrap_or_default();
        if entries != u.total {
            return Err(UsageError::Inconsistent {
                user: user.clone(),
                entries,
                summary: u.total,
            });
        }
    }
    if let Some(user) = per_user.keys().find(|u| !users.contains_key(*u)) {
        return Err(UsageError::Inconsistent {
            user: user.clone(),
            entries: per_user[user],
            summary: Counters::default(),
        });
    }
    by_bucket
        .into_iter()
        .map(|((owner, bucket), categories)| {
            let total = sum(categories.values(), &bucket)?;
            Ok(BucketUsage {
                owner,
                bucket,
                total,
                categories,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fixture;

    /// The hour all fixtures were captured in: 2026-11-22T17:00:00Z.
    fn fixture_hour() -> Window {
        Window {
            start: DateTime::from_timestamp(1795366800, 0).unwrap(),
            end: DateTime::from_timestamp(1795366800 + 3600, 0).unwrap(),
        }
    }

    #[test]
    fn real_answer_totals_per_user_and_bucket() {
        let r = parse(&fixture("admin-usage-all.json"), fixture_hour(), true).unwrap();
        let alice = &r.users["alice"];
        assert_eq!(
            alice.total,
            Counters {
                ops: 15,
                successful_ops: 13,
                bytes_sent: 115236,
                bytes_received: 1162240
            }
        );
        assert_eq!(alice.categories["put_obj"].bytes_received, 1162240);
        assert_eq!(
            r.users.keys().collect::<Vec<_>>(),
            ["alice", "anonymous", "bob", "exporter"]
        );
        let total_ops: u64 = r.users.values().map(|u| u.total.ops).sum();
        assert_eq!(r.total.ops, total_ops);
        let buckets = r.buckets.as_ref().unwrap();
        let photos = buckets.iter().find(|b| b.bucket == "alice-photos").unwrap();
        assert_eq!(photos.owner, "alice");
        assert_eq!(photos.categories["get_obj"].ops, 4);
        assert_eq!(photos.total.ops, 1 + 1 + 4 + 1 + 3);
    }

    #[test]
    fn summary_only_answer_has_no_buckets() {
        let r = parse(
            &fixture("admin-usage-summary-only.json"),
            fixture_hour(),
            false,
        )
        .unwrap();
        assert!(r.buckets.is_none());
        assert_eq!(r.users["alice"].total.ops, 15);
        assert!(matches!(
            parse(
                &fixture("admin-usage-summary-only.json"),
                fixture_hour(),
                true
            ),
            Err(UsageError::MissingEntries)
        ));
    }

    #[test]
    fn empty_window_is_all_zero_not_an_error() {
        let r = parse(
            &fixture("admin-usage-window-past.json"),
            fixture_hour(),
            true,
        )
        .unwrap();
        assert_eq!(r.total, Counters::default());
        assert!(r.users.is_empty());
    }

    #[test]
    fn records_outside_the_window_mean_rgw_ignored_it() {
        let earlier = Window {
            start: DateTime::from_timestamp(1795366800 - 7200, 0).unwrap(),
            end: DateTime::from_timestamp(1795366800 - 3600, 0).unwrap(),
        };
        let err = parse(&fixture("admin-usage-all.json"), earlier, true).unwrap_err();
        assert!(matches!(err, UsageError::OutsideWindow { .. }), "{err}");
    }

    #[test]
    fn repeated_bucket_records_are_summed() {
        let json = br#"{"entries":[{"user":"u","buckets":[
            {"bucket":"b","time":"","epoch":1795366800,"owner":"u","categories":[{"category":"put_obj","bytes_sent":0,"bytes_received":10,"ops":1,"successful_ops":1}]},
            {"bucket":"b","time":"","epoch":1795366800,"owner":"u","categories":[{"category":"put_obj","bytes_sent":0,"bytes_received":5,"ops":2,"successful_ops":2}]}]}],
          "summary":[{"user":"u","categories":[],"total":{"bytes_sent":0,"bytes_received":15,"ops":3,"successful_ops":3}}]}"#;
        let r = parse(json, fixture_hour(), true).unwrap();
        let b = &r.buckets.unwrap()[0];
        assert_eq!((b.total.ops, b.total.bytes_received), (3, 15));
    }

    #[test]
    fn entries_that_disagree_with_the_summary_are_refused() {
        let json = String::from_utf8(fixture("admin-usage-all.json")).unwrap();
        let bad = json.replacen(
            "\"total\":{\"bytes_sent\":115236",
            "\"total\":{\"bytes_sent\":115237",
            1,
        );
        assert_ne!(bad, json);
        assert!(matches!(
            parse(bad.as_bytes(), fixture_hour(), true),
            Err(UsageError::Inconsistent { .. })
        ));
    }

    #[test]
    fn bad_numbers_and_shapes_are_errors() {
        for body in [
            r#"{"entries":[],"summary":[{"user":"u","categories":[],"total":{"bytes_sent":"1","bytes_received":0,"ops":0,"successful_ops":0}}]}"#,
            r#"{"entries":[],"summary":[{"user":"u","categories":[],"total":{"bytes_sent":1.5,"bytes_received":0,"ops":0,"successful_ops":0}}]}"#,
            r#"{"entries":[],"summary":[{"user":"u","categories":[],"total":{"bytes_sent":-1,"bytes_received":0,"ops":0,"successful_ops":0}}]}"#,
            r#"{"entries":[],"summary":[{"user":"u","categories":[],"total":{"bytes_received":0,"ops":0,"successful_ops":0}}]}"#,
            r#"{"entries":[]}"#,
            r#"<html><body><h1>502 Bad Gateway</h1></body></html>"#,
            r#"{"entries":[],"summary":["#,
        ] {
            assert!(
                matches!(
                    parse(body.as_bytes(), fixture_hour(), true),
                    Err(UsageError::Json(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let max = u64::MAX;
        let json = format!(
            r#"{{"summary":[
            {{"user":"a","categories":[],"total":{{"bytes_sent":{max},"bytes_received":0,"ops":0,"successful_ops":0}}}},
            {{"user":"b","categories":[],"total":{{"bytes_sent":1,"bytes_received":0,"ops":0,"successful_ops":0}}}}]}}"#
        );
        assert!(matches!(
            parse(json.as_bytes(), fixture_hour(), false),
            Err(UsageError::Overflow(_))
        ));
    }
}
