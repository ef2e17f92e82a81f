//! Parsing and aggregating the RGW admin usage log (`GET /admin/usage?format=json`).
//!
//! The answer has `entries` (per user, then per bucket and hour, then per category) and
//! `summary` (per user: categories and a `total`). RGW merges raw hourly records, so one bucket
//! can appear several times in one answer: entries are always *summed*, never overwritten.
//!
//! The report keeps everything sorted so that the same answer always renders to the same
//! bytes, whatever order RGW listed it in.
//!
//! A large cluster has hundreds of thousands of buckets in one window, so a bucket is kept small
//! while the answer streams by: owner and category names are interned (each stored once), a
//! bucket's categories are a short vector of (category id, counters), and the number of buckets
//! held is capped ([`DEFAULT_MAX_BUCKETS`], `jobs.rgw_usage.max_buckets`), past which the answer
//! is refused with an error that says so rather than taking the host's memory.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::jsonwalk::{Borrowed, WalkError, Walker};
use crate::quickjson::{once, Cursor};
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
    /// Shared by every bucket of the owner.
    pub owner: Arc<str>,
    pub bucket: Box<str>,
    pub total: Counters,
    pub categories: Categories,
}

/// Counters per category, sorted by name, the names shared between buckets. Serialized as a
/// map, like a `BTreeMap<String, Counters>`; a short vector, because there is one per bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Categories(Vec<(Arc<str>, Counters)>);

impl Categories {
    pub fn get(&self, name: &str) -> Option<&Counters> {
        self.0.iter().find(|(n, _)| &**n == name).map(|(_, c)| c)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Counters)> {
        self.0.iter().map(|(n, c)| (&**n, c))
    }

    pub fn values(&self) -> impl Iterator<Item = &Counters> {
        self.0.iter().map(|(_, c)| c)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<N: Into<Arc<str>>> FromIterator<(N, Counters)> for Categories {
    /// Sorted by name; a name given twice keeps its last counters, as a map would.
    fn from_iter<I: IntoIterator<Item = (N, Counters)>>(iter: I) -> Self {
        let map: BTreeMap<Arc<str>, Counters> =
            iter.into_iter().map(|(n, c)| (n.into(), c)).collect();
        Categories(map.into_iter().collect())
    }
}

impl Serialize for Categories {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(n, c)| (&**n, c)))
    }
}

/// Buckets held per answer unless the job says otherwise (about 660 bytes each, measured with six
/// categories: while the answer is read, then in the report).
pub const DEFAULT_MAX_BUCKETS: usize = 1_000_000;

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

/// One category of a record. The counters are spelled out rather than a flattened
/// [`Counters`]: serde buffers flattened fields through a generic map, which costs a third of
/// the parse on large answers.
#[derive(Deserialize)]
struct RawCategory<'a> {
    #[serde(borrow)]
    category: Cow<'a, str>,
    ops: u64,
    successful_ops: u64,
    bytes_sent: u64,
    bytes_received: u64,
}

impl RawCategory<'_> {
    fn counters(&self) -> Counters {
        Counters {
            ops: self.ops,
            successful_ops: self.successful_ops,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
        }
    }
}

#[derive(Deserialize)]
struct RawSummary<'a> {
    user: String,
    #[serde(borrow)]
    categories: Vec<RawCategory<'a>>,
    total: Counters,
}

struct SummaryRow;

impl Borrowed for SummaryRow {
    type Value<'a> = RawSummary<'a>;
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("usage JSON is malformed or of an unexpected shape {0}")]
    Json(WalkError),
    #[error("reading the usage answer: {0}")]
    Read(std::io::Error),
    #[error("usage answer has no `entries` although entries were asked for")]
    MissingEntries,
    #[error(
        "usage record of bucket {bucket:?} (owner {user:?}) at {time} lies outside the requested \
         window [{}, {}): RGW ignored the window (did a proxy rewrite start/end?)",
        window.start, window.end
    )]
    OutsideWindow {
        /// The bucket's owner, as the record names it.
        user: String,
        bucket: String,
        time: String,
        window: Window,
    },
    #[error("user {0:?} appears twice in the usage summary")]
    DuplicateUser(String),
    #[error(
        "the answer holds usage of more than {limit} buckets, the most this job holds in memory: \
         raise jobs.rgw_usage.max_buckets (each bucket costs about 660 bytes) if the host has \
         the memory, or use a shorter window"
    )]
    TooManyBuckets { limit: usize },
    #[error("usage counters overflow 64 bits while summing {what}{}", name.as_ref().map(|n| format!(" {n:?}")).unwrap_or_default())]
    Overflow {
        what: &'static str,
        /// The user or bucket, from the answer (printed escaped).
        name: Option<String>,
    },
    #[error(
        "usage of user {user:?} does not add up: entries sum to {entries:?} but the summary says \
         {summary:?}"
    )]
    Inconsistent {
        user: String,
        entries: Counters,
        summary: Counters,
    },
}

impl From<WalkError> for UsageError {
    fn from(e: WalkError) -> UsageError {
        match e {
            WalkError::Io(e) => UsageError::Read(e),
            e => UsageError::Json(e),
        }
    }
}

/// Adds `c` to the counters under `key`; the key is copied only when it is new.
fn add_into(
    map: &mut BTreeMap<String, Counters>,
    key: &str,
    c: Counters,
    what: &'static str,
    name: &str,
) -> Result<(), UsageError> {
    match map.get_mut(key) {
        Some(slot) => {
            *slot = slot
                .checked_add(c)
                .ok_or_else(|| overflow(what, Some(name)))?
        }
        None => {
            map.insert(key.to_string(), c);
        }
    }
    Ok(())
}

fn sum(
    counters: impl IntoIterator<Item = Counters>,
    what: &'static str,
    name: Option<&str>,
) -> Result<Counters, UsageError> {
    counters
        .into_iter()
        .try_fold(Counters::default(), |acc, c| acc.checked_add(c))
        .ok_or_else(|| overflow(what, name))
}

fn overflow(what: &'static str, name: Option<&str>) -> UsageError {
    UsageError::Overflow {
        what,
        name: name.map(str::to_string),
    }
}

/// Parses an `/admin/usage` answer held in memory, with the default bucket limit. See
/// [`parse_reader`].
pub fn parse(json: &[u8], window: Window, with_entries: bool) -> Result<UsageReport, UsageError> {
    parse_reader(json, window, with_entries, DEFAULT_MAX_BUCKETS)
}

/// Parses an `/admin/usage` answer for `window` as it streams by, checking that every record
/// lies inside the window and that the entries (when asked for) add up to the summary.
///
/// Memory grows with the number of distinct (owner, bucket, category) triples, not with the
/// size of the answer: RGW repeats each bucket once per hour record, and those are summed as
/// they are read. The walker holds a block of the answer; one record is parsed at a time, its
/// strings borrowed from that block. More than `max_buckets` distinct buckets is an error.
pub fn parse_reader(
    reader: impl Read,
    window: Window,
    with_entries: bool,
    max_buckets: usize,
) -> Result<UsageReport, UsageError> {
    parse_walking(Walker::new(reader), window, with_entries, max_buckets)
}

/// [`parse_reader`] with the caller's walker, whose block size decides where records are cut
/// (the fuzz targets use small blocks; the result must not depend on them).
pub fn parse_walking<R: Read>(
    mut walker: Walker<R>,
    window: Window,
    with_entries: bool,
    max_buckets: usize,
) -> Result<UsageReport, UsageError> {
    let mut agg = Aggregate {
        window,
        with_entries,
        max_buckets,
        buckets: 0,
        owners: Interner::default(),
        categories: Interner::default(),
        by_bucket: HashMap::new(),
        per_user: BTreeMap::new(),
        users: BTreeMap::new(),
    };
    let saw_entries = agg.answer(&mut walker)?;
    agg.finish(saw_entries)
}

/// A bucket record, borrowing its strings from the walker's buffer when they hold no escapes.
#[derive(Deserialize)]
struct RawBucket<'a> {
    #[serde(borrow)]
    bucket: Cow<'a, str>,
    epoch: i64,
    #[serde(borrow)]
    owner: Cow<'a, str>,
    #[serde(borrow)]
    categories: Vec<RawCategory<'a>>,
}

struct BucketRecord;

impl Borrowed for BucketRecord {
    type Value<'a> = RawBucket<'a>;
}

/// A bucket record read without serde when it is laid out as RGW writes it (plain strings and
/// integers, known members); `None` leaves it to serde (see [`crate::quickjson`]). Most of a
/// large answer is these records: this is most of the parse.
fn quick_bucket(text: &str) -> Option<(RawBucket<'_>, usize)> {
    let mut c = Cursor::new(text);
    let record = match bucket_in_order(&mut c) {
        Some(record) => record,
        None => {
            c = Cursor::new(text);
            bucket_any_order(&mut c)?
        }
    };
    Some((record, c.used()))
}

/// A record with its members in the order RGW writes them, each name matched in place rather
/// than read.
fn bucket_in_order<'a>(c: &mut Cursor<'a>) -> Option<RawBucket<'a>> {
    c.literal("{\"bucket\":")?;
    let bucket = Cow::Borrowed(c.string()?);
    // `time`, which the report does not use.
    c.literal(",\"time\":")?;
    c.string()?;
    c.literal(",\"epoch\":")?;
    let epoch = i64::try_from(c.u64()?).ok()?;
    c.literal(",\"owner\":")?;
    let owner = Cow::Borrowed(c.string()?);
    c.literal(",\"categories\":")?;
    let categories = quick_categories(c)?;
    c.literal("}")?;
    Some(RawBucket {
        bucket,
        epoch,
        owner,
        categories,
    })
}

fn bucket_any_order<'a>(c: &mut Cursor<'a>) -> Option<RawBucket<'a>> {
    let (mut bucket, mut epoch, mut owner, mut categories) = (None, None, None, None);
    c.object(|c, name| match name {
        "bucket" => once(&mut bucket, c.string()?),
        "owner" => once(&mut owner, c.string()?),
        "epoch" => once(&mut epoch, i64::try_from(c.u64()?).ok()?),
        "categories" => once(&mut categories, quick_categories(c)?),
        _ => c.string().map(drop),
    })?;
    Some(RawBucket {
        bucket: Cow::Borrowed(bucket?),
        epoch: epoch?,
        owner: Cow::Borrowed(owner?),
        categories: categories?,
    })
}

fn quick_categories<'a>(c: &mut Cursor<'a>) -> Option<Vec<RawCategory<'a>>> {
    let mut list = Vec::new();
    c.array(|c| quick_category(c).map(|category| list.push(category)))?;
    Some(list)
}

fn quick_category<'a>(c: &mut Cursor<'a>) -> Option<RawCategory<'a>> {
    let mut in_order = *c;
    match category_in_order(&mut in_order) {
        Some(category) => {
            *c = in_order;
            Some(category)
        }
        None => category_any_order(c),
    }
}

/// A category with its members in the order RGW writes them, each name matched in place
/// rather than read (most strings of an answer are these names).
fn category_in_order<'a>(c: &mut Cursor<'a>) -> Option<RawCategory<'a>> {
    c.literal("{\"category\":")?;
    let category = Cow::Borrowed(c.string()?);
    c.literal(",\"bytes_sent\":")?;
    let bytes_sent = c.u64()?;
    c.literal(",\"bytes_received\":")?;
    let bytes_received = c.u64()?;
    c.literal(",\"ops\":")?;
    let ops = c.u64()?;
    c.literal(",\"successful_ops\":")?;
    let successful_ops = c.u64()?;
    c.literal("}")?;
    Some(RawCategory {
        category,
        ops,
        successful_ops,
        bytes_sent,
        bytes_received,
    })
}

fn category_any_order<'a>(c: &mut Cursor<'a>) -> Option<RawCategory<'a>> {
    let (mut category, mut n) = (None, [None; 4]);
    c.object(|c, name| {
        let slot = match name {
            "category" => return once(&mut category, c.string()?),
            "ops" => &mut n[0],
            "successful_ops" => &mut n[1],
            "bytes_sent" => &mut n[2],
            "bytes_received" => &mut n[3],
            _ => return None,
        };
        once(slot, c.u64()?)
    })?;
    Some(RawCategory {
        category: Cow::Borrowed(category?),
        ops: n[0]?,
        successful_ops: n[1]?,
        bytes_sent: n[2]?,
        bytes_received: n[3]?,
    })
}

/// Names seen many times (owners, categories), each stored once and known by a number.
#[derive(Default)]
struct Interner {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    /// The id given last: an owner's records come one after the other, so the name asked for
    /// is mostly the one before, compared without hashing it.
    last: u32,
}

impl Interner {
    fn id(&mut self, name: &str) -> u32 {
        if self
            .names
            .get(self.last as usize)
            .is_some_and(|n| **n == *name)
        {
            return self.last;
        }
        if let Some(&id) = self.ids.get(name) {
            self.last = id;
            return id;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = name.into();
        self.names.push(name.clone());
        self.ids.insert(name, id);
        self.last = id;
        id
    }

    fn name(&self, id: u32) -> &Arc<str> {
        &self.names[id as usize]
    }
}

/// One bucket's counters while the answer is read: (category id, counters), in first-seen order.
type BucketCounters = Vec<(u32, Counters)>;

/// What the streaming parse gathers.
struct Aggregate {
    window: Window,
    with_entries: bool,
    max_buckets: usize,
    /// Distinct buckets so far.
    buckets: usize,
    owners: Interner,
    categories: Interner,
    /// owner id -> bucket -> its counters per category.
    by_bucket: HashMap<u32, HashMap<Box<str>, BucketCounters>>,
    /// Entries summed per user, to check against the summary.
    per_user: BTreeMap<String, Counters>,
    /// The summary, per user.
    users: BTreeMap<String, UserUsage>,
}

impl Aggregate {
    /// The top-level object: `entries` walked record by record, `summary` row by row. Returns
    /// whether entries were read.
    fn answer<R: Read>(&mut self, w: &mut Walker<R>) -> Result<bool, UsageError> {
        let (mut entries, mut summary) = (false, false);
        w.object(|w, name| -> Result<(), UsageError> {
            let at = w.offset();
            let seen = match name.as_str() {
                "entries" if self.with_entries => {
                    w.array(|w| self.user_entry(w))?;
                    std::mem::replace(&mut entries, true)
                }
                "summary" => {
                    w.array(|w| w.value_with::<SummaryRow, _>(|row| self.add_summary(row))?)?;
                    std::mem::replace(&mut summary, true)
                }
                _ => {
                    w.skip()?;
                    false
                }
            };
            if seen {
                return Err(WalkError::shape(at, format!("`{name}` appears twice")).into());
            }
            Ok(())
        })?;
        let end = w.offset();
        w.end()?;
        if !summary {
            return Err(WalkError::shape(end, "the answer has no `summary`").into());
        }
        Ok(entries)
    }

    /// `{"user": ..., "buckets": [...]}`, in either order.
    fn user_entry<R: Read>(&mut self, w: &mut Walker<R>) -> Result<(), UsageError> {
        let at = w.offset();
        let (mut user, mut sum, mut buckets) = (None, Counters::default(), false);
        w.object(|w, name| -> Result<(), UsageError> {
            match name.as_str() {
                "user" => user = Some(w.value::<String>()?),
                "buckets" => {
                    buckets = true;
                    w.array(|w| {
                        w.value_quick::<BucketRecord, _>(quick_bucket, |b| self.add(b, &mut sum))?
                    })?;
                }
                _ => w.skip()?,
            }
            Ok(())
        })?;
        let user = user.ok_or_else(|| WalkError::shape(at, "a per-user entry has no `user`"))?;
        if !buckets {
            let reason = format!("the entry of user {user:?} has no `buckets`");
            return Err(WalkError::shape(at, reason).into());
        }
        let total = self.per_user.entry(user.clone()).or_default();
        *total = total
            .checked_add(sum)
            .ok_or_else(|| overflow("the entries of user", Some(&user)))?;
        Ok(())
    }

    /// Folds one bucket record in; `user_sum` collects the record's counters for its user.
    fn add(&mut self, b: RawBucket<'_>, user_sum: &mut Counters) -> Result<(), UsageError> {
        let hour = DateTime::<Utc>::from_timestamp(b.epoch, 0);
        if !hour.is_some_and(|t| self.window.contains(t)) {
            return Err(UsageError::OutsideWindow {
                user: b.owner.into_owned(),
                bucket: b.bucket.into_owned(),
                time: hour.map_or_else(|| b.epoch.to_string(), |t| t.to_rfc3339()),
                window: self.window,
            });
        }
        let counters = b.categories.iter().map(RawCategory::counters);
        let record = sum(counters, "bucket", Some(&b.bucket))?;
        *user_sum = user_sum
            .checked_add(record)
            .ok_or_else(|| overflow("the records of user", Some(&b.owner)))?;
        let owner = self.owners.id(&b.owner);
        let owned = self.by_bucket.entry(owner).or_default();
        if !owned.contains_key(&*b.bucket) {
            self.buckets += 1;
            if self.buckets > self.max_buckets {
                return Err(UsageError::TooManyBuckets {
                    limit: self.max_buckets,
                });
            }
            owned.insert(b.bucket.as_ref().into(), Vec::new());
        }
        let counters = owned.get_mut(&*b.bucket).expect("inserted above");
        for (i, c) in b.categories.iter().enumerate() {
            // RGW lists a bucket's categories in the same order hour after hour: the slot at the
            // same place is mostly the one, found without hashing the name.
            let at = match counters.get(i) {
                Some((id, _)) if **self.categories.name(*id) == *c.category => i,
                _ => {
                    let id = self.categories.id(&c.category);
                    match counters.iter().position(|(k, _)| *k == id) {
                        Some(at) => at,
                        None => {
                            counters.push((id, Counters::default()));
                            counters.len() - 1
                        }
                    }
                }
            };
            let slot = &mut counters[at].1;
            *slot = slot
                .checked_add(c.counters())
                .ok_or_else(|| overflow("bucket", Some(&b.bucket)))?;
        }
        Ok(())
    }

    /// One user's row of the summary.
    fn add_summary(&mut self, s: RawSummary<'_>) -> Result<(), UsageError> {
        let mut categories = BTreeMap::new();
        for c in &s.categories {
            add_into(
                &mut categories,
                &c.category,
                c.counters(),
                "the summary of user",
                &s.user,
            )?;
        }
        if self.users.contains_key(&s.user) {
            return Err(UsageError::DuplicateUser(s.user));
        }
        let usage = UserUsage {
            total: s.total,
            categories,
        };
        self.users.insert(s.user, usage);
        Ok(())
    }

    fn finish(self, saw_entries: bool) -> Result<UsageReport, UsageError> {
        let users = self.users;
        let total = sum(users.values().map(|u| u.total), "the cluster total", None)?;
        let buckets = match (self.with_entries, saw_entries) {
            (false, _) => None,
            (true, false) => return Err(UsageError::MissingEntries),
            (true, true) => {
                check_against_summary(&self.per_user, &users)?;
                Some(sorted_buckets(
                    self.by_bucket,
                    &self.owners,
                    &self.categories,
                )?)
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
    by_bucket: HashMap<u32, HashMap<Box<str>, BucketCounters>>,
    owners: &Interner,
    category_names: &Interner,
) -> Result<Vec<BucketUsage>, UsageError> {
    let mut buckets = vec![];
    for (owner, owned) in by_bucket {
        let owner = owners.name(owner);
        for (bucket, counters) in owned {
            let total = sum(counters.iter().map(|(_, c)| *c), "bucket", Some(&bucket))?;
            let mut categories: Vec<_> = counters
                .into_iter()
                .map(|(id, c)| (category_names.name(id).clone(), c))
                .collect();
            categories.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            buckets.push(BucketUsage {
                owner: owner.clone(),
                bucket,
                total,
                categories: Categories(categories),
            });
        }
    }
    buckets.sort_unstable_by(|a, b| (&a.owner, &a.bucket).cmp(&(&b.owner, &b.bucket)));
    Ok(buckets)
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
    fn quick_records_read_as_serde_reads_them_or_are_left_to_it() {
        let plain = r#"{"bucket":"b","time":"2026-11-22T17:00:00.000000Z","epoch":1795366800,"owner":"u","categories":[{"category":"put_obj","bytes_sent":0,"bytes_received":10,"ops":1,"successful_ops":1},{"ops":18446744073709551615,"successful_ops":2,"bytes_sent":3,"bytes_received":4,"category":"été"}]}"#;
        let variants = [
            plain.to_string(),
            plain.replace(':', " : ").replace(',', ",\n "),
            plain.replace("\"b\"", r#""b\u0062""#),
            plain.replace("\"owner\":\"u\"", r#""owner":"u","owner":"v""#),
            plain.replace("\"owner\":\"u\",", ""),
            plain.replace("\"ops\":1,", "\"ops\":1.0,"),
            plain.replace("\"ops\":1,", "\"ops\":01,"),
            plain.replace("\"ops\":1,", "\"ops\":-1,"),
            plain.replace("18446744073709551615", "18446744073709551616"),
            plain.replace("1795366800", "-1795366800"),
            plain.replace("1795366800", "9223372036854775808"),
            plain.replace(
                "\"time\":\"2026-11-22T17:00:00.000000Z\"",
                r#""time":{"x":[1]}"#,
            ),
            plain.replace(
                "\"category\":\"put_obj\",",
                r#""category":"put_obj","extra":1,"#,
            ),
            plain.replace("\"categories\":[", "\"categories\":[1,"),
        ];
        let view = |b: &RawBucket| {
            let cats: Vec<_> = b
                .categories
                .iter()
                .map(|c| (c.category.to_string(), c.counters()))
                .collect();
            (b.bucket.to_string(), b.epoch, b.owner.to_string(), cats)
        };
        let mut quick_ones = 0;
        for text in &variants {
            let doc = format!("{text},");
            let serde = serde_json::Deserializer::from_str(&doc)
                .into_iter::<RawBucket>()
                .next()
                .unwrap();
            match (quick_bucket(&doc), serde) {
                (Some((quick, used)), Ok(serde)) => {
                    assert_eq!(view(&quick), view(&serde), "{text}");
                    assert_eq!(used, text.len(), "{text}");
                    quick_ones += 1;
                }
                (Some(_), Err(e)) => panic!("quick read what serde refuses ({e}): {text}"),
                (None, _) => {}
            }
        }
        // The layout RGW writes, spaced or not, takes the quick way.
        assert_eq!(quick_ones, 2);
        for cut in 0..plain.len() {
            if plain.is_char_boundary(cut) {
                assert!(quick_bucket(&plain[..cut]).is_none(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn more_distinct_buckets_than_the_limit_is_an_error_that_says_what_to_do() {
        let answer = fixture("admin-usage-all.json");
        let full = parse(&answer, fixture_hour(), true).unwrap();
        let n = full.buckets.as_ref().unwrap().len();
        assert!(n >= 2, "the fixture has several buckets");
        // Exactly as many as allowed is fine; one fewer allowed is not.
        let at_limit = parse_reader(&answer[..], fixture_hour(), true, n).unwrap();
        assert_eq!(at_limit, full);
        let err = parse_reader(&answer[..], fixture_hour(), true, n - 1).unwrap_err();
        assert!(matches!(err, UsageError::TooManyBuckets { limit } if limit == n - 1));
        assert!(
            err.to_string().contains("jobs.rgw_usage.max_buckets"),
            "{err}"
        );
        // Without entries, no bucket is held.
        assert!(parse_reader(&answer[..], fixture_hour(), false, 0).is_ok());
    }

    #[test]
    fn categories_serialize_as_a_sorted_map_and_keep_the_last_of_a_name() {
        let c = |ops| Counters {
            ops,
            ..Counters::default()
        };
        let cats: Categories = [("put_obj", c(1)), ("get_obj", c(2)), ("put_obj", c(3))]
            .into_iter()
            .collect();
        assert_eq!(cats.len(), 2);
        assert_eq!(cats.get("put_obj"), Some(&c(3)));
        assert_eq!(
            serde_json::to_string(&cats).unwrap(),
            serde_json::to_string(&BTreeMap::from([("get_obj", c(2)), ("put_obj", c(3))])).unwrap()
        );
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
        let photos = buckets
            .iter()
            .find(|b| &*b.bucket == "alice-photos")
            .unwrap();
        assert_eq!(&*photos.owner, "alice");
        assert_eq!(photos.categories.get("get_obj").unwrap().ops, 4);
        assert_eq!(photos.total.ops, 1 + 1 + 4 + 1 + 3);
    }

    #[test]
    fn any_block_size_gives_the_same_report_or_the_same_error() {
        let json = fixture("admin-usage-all.json");
        let whole = parse(&json, fixture_hour(), true).unwrap();
        let cut = &json[..json.len() * 2 / 3];
        let broken = parse(cut, fixture_hour(), true).unwrap_err().to_string();
        assert!(broken.contains("(truncated?)"), "{broken}");
        for block in (1..64).chain([1000, 4096]) {
            let walk = |doc| Walker::with_sizes(doc, block, 1 << 20);
            let r =
                parse_walking(walk(&json[..]), fixture_hour(), true, DEFAULT_MAX_BUCKETS).unwrap();
            assert_eq!(r, whole, "block {block}");
            let e =
                parse_walking(walk(cut), fixture_hour(), true, DEFAULT_MAX_BUCKETS).unwrap_err();
            assert_eq!(e.to_string(), broken, "block {block}");
        }
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
    fn duplicate_or_missing_parts_are_named() {
        for (body, want) in [
            (
                r#"{"summary":[],"summary":[]}"#,
                "at byte 24: `summary` appears twice",
            ),
            (
                r#"{"entries":[],"entries":[],"summary":[]}"#,
                "`entries` appears twice",
            ),
            (
                r#"{"entries":[{"buckets":[]}],"summary":[]}"#,
                "at byte 12: a per-user entry has no `user`",
            ),
            (
                r#"{"entries":[{"user":"u"}],"summary":[]}"#,
                "the entry of user \"u\" has no `buckets`",
            ),
            (
                r#"{"entries":[]}"#,
                "at byte 14: the answer has no `summary`",
            ),
        ] {
            let err = parse(body.as_bytes(), fixture_hour(), true).unwrap_err();
            assert!(err.to_string().contains(want), "{body}: {err}");
        }
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
            Err(UsageError::Overflow { .. })
        ));
    }
}
