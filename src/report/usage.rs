//! Summing archived usage windows: filters, a grouping, and each window counted once.
//!
//! A window can be archived more than once (a catch-up and a manual `--from/--to` run, or a
//! key template changed between the two): the first object read for a (job, window) is counted,
//! a later identical one is noted as a duplicate, and a later one whose numbers differ is a
//! conflict that the report and the audit name. Memory grows with the groups asked for and the
//! windows seen, never with the objects' sizes or number.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use md5::{Digest, Md5};

use super::decode::{Detail, Row};
use crate::window::Window;

/// A column to group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dim {
    /// The instance's `zone` label.
    Zone,
    /// The job instance.
    Job,
    User,
    Bucket,
    Category,
    /// The window's start in `exporter.time_zone`: YYYY-MM.
    Month,
    /// YYYY-MM-DD.
    Day,
    /// YYYY-MM-DDTHH (a longer window counts at its start).
    Hour,
}

impl Dim {
    pub fn name(self) -> &'static str {
        match self {
            Dim::Zone => "zone",
            Dim::Job => "job",
            Dim::User => "user",
            Dim::Bucket => "bucket",
            Dim::Category => "category",
            Dim::Month => "month",
            Dim::Day => "day",
            Dim::Hour => "hour",
        }
    }
}

/// What to sum: rows matching every filter, grouped by `by` (in that order).
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub by: Vec<Dim>,
    pub user: Option<String>,
    pub bucket: Option<String>,
    pub category: Option<String>,
    /// Days and months are this zone's.
    pub time_zone: Tz,
}

/// How finely usage is broken down, coarsest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Breakdown {
    Totals,
    Users,
    Buckets,
}

impl Query {
    /// The breakdown the query needs.
    fn needs(&self) -> Breakdown {
        let bucket = self.bucket.is_some() || self.by.contains(&Dim::Bucket);
        let user = self.user.is_some()
            || self.category.is_some()
            || self
                .by
                .iter()
                .any(|d| matches!(d, Dim::User | Dim::Category));
        match (bucket, user) {
            (true, _) => Breakdown::Buckets,
            (false, true) => Breakdown::Users,
            (false, false) => Breakdown::Totals,
        }
    }

    fn keeps(&self, row: &Row) -> bool {
        let matches = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == have)
        };
        matches(&self.user, Some(&row.owner))
            && matches(&self.bucket, row.bucket.as_deref())
            && matches(&self.category, Some(&row.category))
    }
}

/// Summed counters. `successful_ops` is unknown (`None`) once any part came from a text body,
/// which does not carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    pub ops: u64,
    pub successful_ops: Option<u64>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Tally {
    pub const ZERO: Tally = Tally {
        ops: 0,
        successful_ops: Some(0),
        bytes_sent: 0,
        bytes_received: 0,
    };

    fn add(&mut self, o: Tally) -> Result<(), Refused> {
        let sum = |a: u64, b: u64| a.checked_add(b).ok_or(Refused::Overflow);
        *self = Tally {
            ops: sum(self.ops, o.ops)?,
            successful_ops: match (self.successful_ops, o.successful_ops) {
                (Some(a), Some(b)) => Some(sum(a, b)?),
                _ => None,
            },
            bytes_sent: sum(self.bytes_sent, o.bytes_sent)?,
            bytes_received: sum(self.bytes_received, o.bytes_received)?,
        };
        Ok(())
    }

    fn of(row: &Row) -> Tally {
        let c = row.counters;
        Tally {
            ops: c.ops,
            successful_ops: Some(c.successful_ops),
            bytes_sent: c.bytes_sent,
            bytes_received: c.bytes_received,
        }
    }

    /// Bytes both ways: what `--top` ranks by.
    pub fn bytes(&self) -> u128 {
        u128::from(self.bytes_sent) + u128::from(self.bytes_received)
    }
}

/// Why an object could not be counted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error(
        "its body carries the window's totals only (the original text format): it cannot be \
         split or filtered by user, bucket or category"
    )]
    TotalsOnly,
    #[error(
        "its body breaks the window down by user and category, not by bucket (a json object of \
         a job without show_entries)"
    )]
    NoBuckets,
    #[error("a sum overflows 64 bits")]
    Overflow,
}

/// One usage object to count.
pub struct Counted<'a> {
    pub key: &'a str,
    pub job: &'a str,
    pub zone: Option<&'a str>,
    pub window: Window,
    pub detail: &'a Detail,
}

/// What [`UsageSums::add`] did with an object.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    Counted,
    /// The window was counted already from an object with the same numbers.
    Duplicate {
        of: String,
    },
    /// The window was counted already from an object whose numbers differ: not counted again.
    Conflict {
        with: String,
    },
}

/// A window archived twice with different numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub job: String,
    pub window: Window,
    pub counted: String,
    pub other: String,
}

#[derive(Debug, Default)]
pub struct UsageSums {
    pub groups: BTreeMap<Vec<String>, Tally>,
    /// Per (job, window): the key counted and a digest of its numbers.
    windows: BTreeMap<(String, Window), (String, [u8; 16])>,
    pub duplicates: u64,
    pub conflicts: Vec<Conflict>,
}

impl UsageSums {
    /// Counts `object`, once per (job, window).
    pub fn add(&mut self, query: &Query, object: &Counted<'_>) -> Result<Added, Refused> {
        let id = (object.job.to_string(), object.window);
        let digest = digest(object.detail);
        if let Some((first, seen)) = self.windows.get(&id) {
            if *seen == digest {
                self.duplicates += 1;
                return Ok(Added::Duplicate { of: first.clone() });
            }
            self.conflicts.push(Conflict {
                job: id.0,
                window: object.window,
                counted: first.clone(),
                other: object.key.to_string(),
            });
            return Ok(Added::Conflict {
                with: first.clone(),
            });
        }
        let (rows, have) = match object.detail {
            Detail::Totals { .. } => (&[][..], Breakdown::Totals),
            Detail::Users(rows) => (&rows[..], Breakdown::Users),
            Detail::Buckets(rows) => (&rows[..], Breakdown::Buckets),
        };
        if have < query.needs() {
            return Err(match have {
                Breakdown::Totals => Refused::TotalsOnly,
                _ => Refused::NoBuckets,
            });
        }
        // Summed apart first, so that an overflow leaves the sums as they were.
        let mut adding: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
        let group = |row: Option<&Row>| -> Vec<String> {
            query
                .by
                .iter()
                .map(|d| column(*d, row, object, query.time_zone))
                .collect()
        };
        if let Detail::Totals {
            ops,
            bytes_sent,
            bytes_received,
        } = *object.detail
        {
            let tally = Tally {
                ops,
                successful_ops: None,
                bytes_sent,
                bytes_received,
            };
            adding
                .entry(group(None))
                .or_insert(Tally::ZERO)
                .add(tally)?;
        }
        for row in rows.iter().filter(|r| query.keeps(r)) {
            adding
                .entry(group(Some(row)))
                .or_insert(Tally::ZERO)
                .add(Tally::of(row))?;
        }
        let mut updated = Vec::with_capacity(adding.len());
        for (g, t) in adding {
            let mut sum = self.groups.get(&g).copied().unwrap_or(Tally::ZERO);
            sum.add(t)?;
            updated.push((g, sum));
        }
        self.groups.extend(updated);
        self.windows.insert(id, (object.key.to_string(), digest));
        Ok(Added::Counted)
    }

    /// The windows counted, per job.
    pub fn windows(&self) -> impl Iterator<Item = (&str, Window)> {
        self.windows.keys().map(|(job, w)| (job.as_str(), *w))
    }

    /// The groups, largest first by bytes both ways (ties by name), at most `top`.
    pub fn top(&self, top: Option<usize>) -> Vec<(&Vec<String>, &Tally)> {
        let mut all: Vec<_> = self.groups.iter().collect();
        if let Some(n) = top {
            all.sort_by(|a, b| b.1.bytes().cmp(&a.1.bytes()).then_with(|| a.0.cmp(b.0)));
            all.truncate(n);
        }
        all
    }
}

fn column(dim: Dim, row: Option<&Row>, object: &Counted<'_>, tz: Tz) -> String {
    let start: DateTime<Tz> = object.window.start.with_timezone(&tz);
    let named = |f: fn(&Row) -> Option<&str>| row.and_then(f).unwrap_or("").to_string();
    match dim {
        Dim::Zone => object.zone.unwrap_or("").to_string(),
        Dim::Job => object.job.to_string(),
        Dim::User => named(|r| Some(&r.owner)),
        Dim::Bucket => named(|r| r.bucket.as_deref()),
        Dim::Category => named(|r| Some(&r.category)),
        Dim::Month => start.format("%Y-%m").to_string(),
        Dim::Day => start.format("%Y-%m-%d").to_string(),
        Dim::Hour => start.format("%Y-%m-%dT%H").to_string(),
    }
}

/// A digest of an object's numbers, whatever its format: rows sorted, then hashed.
fn digest(detail: &Detail) -> [u8; 16] {
    let mut h = Md5::new();
    let mut rows_of = |tag: &str, rows: &[Row]| {
        let mut sorted: Vec<&Row> = rows.iter().collect();
        sorted.sort();
        h.update(tag);
        for r in sorted {
            let c = r.counters;
            h.update(format!(
                "{:?}\0{:?}\0{:?}\0{} {} {} {}\n",
                r.owner,
                r.bucket,
                r.category,
                c.ops,
                c.successful_ops,
                c.bytes_sent,
                c.bytes_received
            ));
        }
    };
    match detail {
        Detail::Totals {
            ops,
            bytes_sent,
            bytes_received,
        } => h.update(format!("totals {ops} {bytes_sent} {bytes_received}")),
        Detail::Users(rows) => rows_of("users", rows),
        Detail::Buckets(rows) => rows_of("buckets", rows),
    }
    h.finalize().into()
}

/// When the period's last usage is: a window counts when it lies inside `[from, to)`.
pub fn in_period(window: Window, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    window.start >= from && window.end <= to
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::decode::CountersKey;
    use crate::testutil::hour;

    fn row(owner: &str, bucket: &str, category: &str, ops: u64, sent: u64) -> Row {
        Row {
            owner: owner.into(),
            bucket: Some(bucket.into()),
            category: category.into(),
            counters: CountersKey {
                ops,
                successful_ops: ops,
                bytes_sent: sent,
                bytes_received: 1,
            },
        }
    }

    fn add(sums: &mut UsageSums, q: &Query, key: &str, w: Window, d: &Detail) -> Added {
        let counted = Counted {
            key,
            job: "usage",
            zone: Some("zone-a"),
            window: w,
            detail: d,
        };
        sums.add(q, &counted).unwrap()
    }

    fn query(by: &[Dim]) -> Query {
        Query {
            by: by.to_vec(),
            ..Query::default()
        }
    }

    #[test]
    fn rows_sum_by_the_columns_asked_and_filters_keep_what_they_name() {
        let w = hour("2026-11-01T23:00:00Z");
        let d = Detail::Buckets(vec![
            row("alice", "a1", "put_obj", 2, 100),
            row("alice", "a2", "put_obj", 3, 50),
            row("alice", "a2", "get_obj", 1, 7),
            row("bob", "b1", "put_obj", 4, 1000),
        ]);
        let mut by_user = UsageSums::default();
        add(&mut by_user, &query(&[Dim::User]), "k", w, &d);
        let alice = by_user.groups[&vec!["alice".to_string()]];
        assert_eq!(
            (alice.ops, alice.bytes_sent, alice.bytes_received),
            (6, 157, 3)
        );
        assert_eq!(alice.successful_ops, Some(6));

        let mut filtered = UsageSums::default();
        let q = Query {
            by: vec![Dim::Bucket, Dim::Category],
            user: Some("alice".into()),
            category: Some("put_obj".into()),
            ..Query::default()
        };
        add(&mut filtered, &q, "k", w, &d);
        let groups: Vec<_> = filtered.groups.keys().cloned().collect();
        assert_eq!(groups, [["a1", "put_obj"], ["a2", "put_obj"]]);

        // Days and months are the report's zone's: 23:00 UTC is the next day in Berlin.
        let mut by_day = UsageSums::default();
        let berlin = Query {
            by: vec![Dim::Day, Dim::Zone],
            time_zone: "Europe/Berlin".parse().unwrap(),
            ..Query::default()
        };
        add(&mut by_day, &berlin, "k", w, &d);
        assert!(by_day
            .groups
            .contains_key(&vec!["2026-11-02".to_string(), "zone-a".into()]));

        let top = by_user.top(Some(1));
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].0, &vec!["bob".to_string()], "most bytes first");
    }

    #[test]
    fn a_window_counts_once_however_often_it_was_archived() {
        let w = hour("2026-11-01T10:00:00Z");
        let (a1, b1) = (
            row("alice", "a1", "put_obj", 2, 100),
            row("bob", "b1", "put_obj", 0, 0),
        );
        let d = Detail::Buckets(vec![a1.clone(), b1.clone()]);
        let mut sums = UsageSums::default();
        let q = query(&[]);
        assert_eq!(add(&mut sums, &q, "usage.a", w, &d), Added::Counted);
        // The same numbers in another order (another format) are the same window.
        assert_eq!(
            add(&mut sums, &q, "usage.b", w, &Detail::Buckets(vec![b1, a1])),
            Added::Duplicate {
                of: "usage.a".into()
            }
        );
        let other = Detail::Buckets(vec![row("alice", "a1", "put_obj", 3, 100)]);
        assert_eq!(
            add(&mut sums, &q, "usage.c", w, &other),
            Added::Conflict {
                with: "usage.a".into()
            }
        );
        assert_eq!(sums.groups[&Vec::<String>::new()].ops, 2);
        assert_eq!((sums.duplicates, sums.conflicts.len()), (1, 1));
        assert_eq!(sums.conflicts[0].other, "usage.c");
        // Another window adds.
        add(
            &mut sums,
            &q,
            "usage.d",
            hour("2026-11-01T11:00:00Z"),
            &other,
        );
        assert_eq!(sums.groups[&Vec::<String>::new()].ops, 5);
    }

    #[test]
    fn text_totals_sum_but_cannot_be_split_and_have_no_successful_ops() {
        let w = hour("2026-11-01T10:00:00Z");
        let totals = Detail::Totals {
            ops: 5,
            bytes_sent: 10,
            bytes_received: 20,
        };
        let mut sums = UsageSums::default();
        add(&mut sums, &query(&[Dim::Day]), "t", w, &totals);
        let day = sums.groups[&vec!["2026-11-01".to_string()]];
        assert_eq!(
            (day.ops, day.successful_ops, day.bytes_received),
            (5, None, 20)
        );

        let counted = Counted {
            key: "t",
            job: "usage",
            zone: None,
            window: w,
            detail: &totals,
        };
        let mut split = UsageSums::default();
        assert_eq!(
            split.add(&query(&[Dim::User]), &counted),
            Err(Refused::TotalsOnly)
        );
        let users = Detail::Users(vec![Row {
            bucket: None,
            ..row("alice", "", "put_obj", 1, 1)
        }]);
        let by_bucket = Counted {
            detail: &users,
            ..counted
        };
        assert_eq!(
            split.add(&query(&[Dim::Bucket]), &by_bucket),
            Err(Refused::NoBuckets)
        );
        assert!(split.groups.is_empty() && split.windows().count() == 0);
    }

    #[test]
    fn an_overflowing_sum_is_refused_and_leaves_the_sums_as_they_were() {
        let mut sums = UsageSums::default();
        let q = query(&[]);
        let big = Detail::Buckets(vec![row("alice", "a1", "put_obj", u64::MAX, 1)]);
        add(&mut sums, &q, "a", hour("2026-11-01T10:00:00Z"), &big);
        let counted = Counted {
            key: "b",
            job: "usage",
            zone: None,
            window: hour("2026-11-01T11:00:00Z"),
            detail: &big,
        };
        assert_eq!(sums.add(&q, &counted), Err(Refused::Overflow));
        assert_eq!(sums.groups[&Vec::<String>::new()].ops, u64::MAX);
        assert_eq!(sums.windows().count(), 1);
    }
}
