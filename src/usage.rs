//! Parsing and aggregating the RGW admin usage log (`GET /admin/usage?format=json`).
//!
//! The answer has `entries` (per user, then per bucket and hour, then per category) and
//! `summary` (per user: categories and a `total`). RGW merges raw hourly records, so one bucket
//! can appear several times in one answer: entries are always *summed*, never overwritten.
//!
//! The report keeps everything in `BTreeMap`s so that the same answer always renders to the same
//! bytes, whatever order RGW listed it in.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// Parses an `/admin/usage` answer held in memory. See [`parse_reader`].
pub fn parse(json: &[u8], window: Window, with_entries: bool) -> Result<UsageReport, UsageError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    parse_from(&mut de, window, with_entries)
}

/// Parses an `/admin/usage` answer for `window` as it streams by, checking that every record
/// lies inside the window and that the entries (when asked for) add up to the summary.
///
/// Memory grows with the number of distinct (owner, bucket, category) triples, not with the
/// size of the answer: RGW repeats each bucket once per hour record, and those are summed as
/// they are read. One bucket record is held at a time.
pub fn parse_reader(
    reader: impl std::io::Read,
    window: Window,
    with_entries: bool,
) -> Result<UsageReport, UsageError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    parse_from(&mut de, window, with_entries)
}

fn parse_from<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    window: Window,
    with_entries: bool,
) -> Result<UsageReport, UsageError> {
    let mut agg = Aggregate {
        window,
        with_entries,
        saw_entries: false,
        by_bucket: HashMap::new(),
        per_user: BTreeMap::new(),
        summary: None,
        failure: None,
    };
    let parsed = Answer(&mut agg)
        .deserialize(&mut *de)
        .and_then(|()| de.end());
    // A record that broke a rule stops the parse; say which rule, not "custom error".
    if let Some(e) = agg.failure.take() {
        return Err(e);
    }
    parsed?;
    agg.finish()
}

/// What the streaming parse has gathered so far.
struct Aggregate {
    window: Window,
    with_entries: bool,
    saw_entries: bool,
    /// (owner, bucket) -> category -> counters.
    by_bucket: HashMap<(String, String), HashMap<String, Counters>>,
    /// Entries summed per user, to check against the summary.
    per_user: BTreeMap<String, Counters>,
    summary: Option<Vec<RawSummary>>,
    failure: Option<UsageError>,
}

impl Aggregate {
    /// Folds one bucket record in; `user_sum` collects the record's counters for its user.
    fn add(&mut self, b: RawBucket, user_sum: &mut Counters) -> Result<(), UsageError> {
        let hour = DateTime::<Utc>::from_timestamp(b.epoch, 0);
        if !hour.is_some_and(|t| self.window.contains(t)) {
            return Err(UsageError::OutsideWindow {
                user: b.owner,
                bucket: b.bucket,
                time: hour.map_or_else(|| b.epoch.to_string(), |t| t.to_rfc3339()),
                window: self.window,
            });
        }
        let record = sum(b.categories.iter().map(|c| &c.counters), &b.bucket)?;
        *user_sum = user_sum
            .checked_add(record)
            .ok_or_else(|| UsageError::Overflow(b.owner.clone()))?;
        // The record's own strings become the keys: no copies on the hot path.
        let cats = self.by_bucket.entry((b.owner, b.bucket)).or_default();
        for c in b.categories {
            let slot = cats.entry(c.category).or_default();
            *slot = slot
                .checked_add(c.counters)
                .ok_or_else(|| UsageError::Overflow("a bucket's categories".into()))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<UsageReport, UsageError> {
        let summary = self.summary.unwrap_or_default();
        let mut users = BTreeMap::new();
        for s in summary {
            let mut categories = BTreeMap::new();
            for c in &s.categories {
                add_into(&mut categories, &c.category, c.counters, &s.user)?;
            }
            let usage = UserUsage {
                total: s.total,
                categories,
            };
            if users.contains_key(&s.user) {
                return Err(UsageError::DuplicateUser(s.user));
            }
            users.insert(s.user, usage);
        }
        let total = sum(users.values().map(|u| &u.total), "the cluster total")?;
        let buckets = match (self.with_entries, self.saw_entries) {
            (false, _) => None,
            (true, false) => return Err(UsageError::MissingEntries),
            (true, true) => {
                check_against_summary(&self.per_user, &users)?;
                Some(sorted_buckets(self.by_bucket)?)
            }
        };
        Ok(UsageReport {
            window: self.window,
            total,
            users,
            buckets,
        })
    }
}

/// Entries and summary are two views of one log: they must agree user by user.
fn check_against_summary(
    per_user: &BTreeMap<String, Counters>,
    users: &BTreeMap<String, UserUsage>,
) -> Result<(), UsageError> {
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
    match per_user.iter().find(|(u, _)| !users.contains_key(*u)) {
        Some((user, entries)) => Err(UsageError::Inconsistent {
            user: user.clone(),
            entries: *entries,
            summary: Counters::default(),
        }),
        None => Ok(()),
    }
}

fn sorted_buckets(
    by_bucket: HashMap<(String, String), HashMap<String, Counters>>,
) -> Result<Vec<BucketUsage>, UsageError> {
    let mut buckets = by_bucket
        .into_iter()
        .map(|((owner, bucket), categories)| {
            let categories: BTreeMap<_, _> = categories.into_iter().collect();
            let total = sum(categories.values(), &bucket)?;
            Ok(BucketUsage {
                owner,
                bucket,
                total,
                categories,
            })
        })
        .collect::<Result<Vec<_>, UsageError>>()?;
    buckets.sort_by(|a, b| (&a.owner, &a.bucket).cmp(&(&b.owner, &b.bucket)));
    Ok(buckets)
}

// ------------------------------------------------------------------ the streaming visitors

/// The top-level object: `entries` streamed, `summary` read whole (it is one row per user).
struct Answer<'a>(&'a mut Aggregate);

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum TopField {
    Entries,
    Summary,
    #[serde(other)]
    Other,
}

impl<'de> DeserializeSeed<'de> for Answer<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Answer<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the usage answer object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key::<TopField>()? {
            match field {
                TopField::Entries if self.0.with_entries => {
                    self.0.saw_entries = true;
                    map.next_value_seed(Entries(&mut *self.0))?;
                }
                TopField::Summary => self.0.summary = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if self.0.summary.is_none() {
            return Err(de::Error::missing_field("summary"));
        }
        Ok(())
    }
}

/// `entries`: one element per user.
struct Entries<'a>(&'a mut Aggregate);

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of per-user entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UserEntry(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

/// `{"user": ..., "buckets": [...]}`, in either key order.
struct UserEntry<'a>(&'a mut Aggregate);

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum EntryField {
    User,
    Buckets,
    #[serde(other)]
    Other,
}

impl<'de> DeserializeSeed<'de> for UserEntry<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for UserEntry<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a per-user entry")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut user, mut sum, mut saw_buckets) = (None, Counters::default(), false);
        while let Some(field) = map.next_key::<EntryField>()? {
            match field {
                EntryField::User => user = Some(map.next_value::<String>()?),
                EntryField::Buckets => {
                    saw_buckets = true;
                    map.next_value_seed(Buckets {
                        agg: &mut *self.0,
                        sum: &mut sum,
                    })?;
                }
                EntryField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let user = user.ok_or_else(|| de::Error::missing_field("user"))?;
        if !saw_buckets {
            return Err(de::Error::missing_field("buckets"));
        }
        let slot = self.0.per_user.entry(user).or_default();
        match slot.checked_add(sum) {
            Some(total) => *slot = total,
            None => return Err(self.0.fail(UsageError::Overflow("a user's entries".into()))),
        }
        Ok(())
    }
}

/// `buckets`: hour records, folded in one at a time.
struct Buckets<'a> {
    agg: &'a mut Aggregate,
    sum: &'a mut Counters,
}

impl<'de> DeserializeSeed<'de> for Buckets<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Buckets<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of bucket records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(b) = seq.next_element::<RawBucket>()? {
            if let Err(e) = self.agg.add(b, self.sum) {
                return Err(self.agg.fail(e));
            }
        }
        Ok(())
    }
}

impl Aggregate {
    /// Keeps a rule's error and stops the parse with a placeholder serde error.
    fn fail<E: de::Error>(&mut self, e: UsageError) -> E {
        let msg = e.to_string();
        self.failure = Some(e);
        E::custom(msg)
    }
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
