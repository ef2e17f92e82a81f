//! Synthetic `/admin/usage` answers of any size, in the exact shape RGW returns (entries per
//! user, bucket records per hour with their categories, and a summary that agrees with them),
//! for benchmarks and tests. Counters are deterministic, so the expected totals are known.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::usage::{BucketUsage, Counters, UsageReport, UserUsage};
use crate::window::Window;

/// Category names RGW uses.
const CATEGORIES: &[&str] = &[
    "get_obj",
    "put_obj",
    "list_bucket",
    "delete_obj",
    "create_bucket",
    "list_buckets",
    "copy_obj",
    "multi_object_delete",
    "init_multipart",
    "complete_multipart",
    "stat_bucket",
    "get_bucket_location",
];

/// N users x M buckets x K categories x H hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub users: usize,
    pub buckets_per_user: usize,
    pub categories: usize,
    pub hours: usize,
    /// Epoch of the first hour (a multiple of 3600).
    pub start_epoch: i64,
}

impl Shape {
    /// A shape of about `bytes` bytes: the given users, buckets and categories, and as many
    /// hours as it takes (so the aggregated state stays the same whatever the size).
    pub fn sized(bytes: u64, users: usize, buckets_per_user: usize, categories: usize) -> Shape {
        // One category is about 100 bytes, a bucket record's own fields about 110.
        let record = 110 + 100 * categories as u64;
        let per_hour = record * (users * buckets_per_user) as u64;
        Shape {
            users,
            buckets_per_user,
            categories: categories.min(CATEGORIES.len()),
            hours: (bytes / per_hour.max(1)).max(1) as usize,
            start_epoch: 1_795_366_800,
        }
    }

    /// The counters of one category of one bucket record: deterministic, varied, small enough
    /// never to overflow when summed.
    fn counters(user: usize, bucket: usize, category: usize, hour: usize) -> Counters {
        let x = (user * 7919 + bucket * 104_729 + category * 1_299_709 + hour * 15_485_863) as u64;
        let ops = x % 997 + 1;
        Counters {
            ops,
            successful_ops: ops - x % 3 % ops,
            bytes_sent: x % 1_000_003 * 17,
            bytes_received: x % 999_983 * 13,
        }
    }

    /// The hours the answer covers.
    pub fn window(&self) -> Window {
        let at = |epoch| chrono::DateTime::from_timestamp(epoch, 0).unwrap_or_default();
        Window {
            start: at(self.start_epoch),
            end: at(self.start_epoch + 3600 * self.hours as i64),
        }
    }

    /// The report the answer must parse to (with entries), worked out from the counters
    /// themselves, not from the answer: what a parser's output is checked against.
    pub fn report(&self) -> UsageReport {
        let mut users = BTreeMap::new();
        let mut buckets = Vec::new();
        for u in 0..self.users {
            let owner: std::sync::Arc<str> = format!("user{u:05}").into();
            let mut per_category = vec![Counters::default(); self.categories];
            for b in 0..self.buckets_per_user {
                let categories: Vec<_> = (0..self.categories)
                    .map(|c| {
                        let sum = (0..self.hours)
                            .map(|h| Shape::counters(u, b, c, h))
                            .fold(Counters::default(), add);
                        per_category[c] = add(per_category[c], sum);
                        (CATEGORIES[c], sum)
                    })
                    .collect();
                buckets.push(BucketUsage {
                    owner: owner.clone(),
                    bucket: format!("{owner}-bucket{b:03}").into(),
                    total: categories
                        .iter()
                        .map(|(_, c)| *c)
                        .fold(Counters::default(), add),
                    categories: categories.into_iter().collect(),
                });
            }
            let usage = UserUsage {
                total: per_category.iter().copied().fold(Counters::default(), add),
                categories: (CATEGORIES.iter().map(|n| n.to_string()))
                    .zip(per_category)
                    .collect(),
            };
            users.insert(owner.to_string(), usage);
        }
        UsageReport {
            window: self.window(),
            total: users
                .values()
                .map(|u| u.total)
                .fold(Counters::default(), add),
            users,
            buckets: Some(buckets),
        }
    }

    /// The expected total of the whole answer.
    pub fn total(&self) -> Counters {
        let mut t = Counters::default();
        for u in 0..self.users {
            for b in 0..self.buckets_per_user {
                for c in 0..self.categories {
                    for h in 0..self.hours {
                        t = add(t, Shape::counters(u, b, c, h));
                    }
                }
            }
        }
        t
    }

    /// Writes the answer; returns its size in bytes.
    pub fn write(&self, out: impl Write) -> io::Result<u64> {
        let mut out = Counting { inner: out, n: 0 };
        out.write_all(b"{\"entries\":[")?;
        for u in 0..self.users {
            if u > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{{\"user\":\"user{u:05}\",\"buckets\":[")?;
            let mut first = true;
            for h in 0..self.hours {
                let epoch = self.start_epoch + 3600 * h as i64;
                let time = chrono::DateTime::from_timestamp(epoch, 0)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%S.000000Z").to_string())
                    .unwrap_or_default();
                for b in 0..self.buckets_per_user {
                    if !first {
                        out.write_all(b",")?;
                    }
                    first = false;
                    write!(
                        out,
                        "{{\"bucket\":\"user{u:05}-bucket{b:03}\",\"time\":\"{time}\",\"epoch\":{epoch},\"owner\":\"user{u:05}\",\"categories\":["
                    )?;
                    for (c, name) in CATEGORIES[..self.categories].iter().enumerate() {
                        if c > 0 {
                            out.write_all(b",")?;
                        }
                        write_category(&mut out, name, Shape::counters(u, b, c, h))?;
                    }
                    out.write_all(b"]}")?;
                }
            }
            out.write_all(b"]}")?;
        }
        out.write_all(b"],\"summary\":[")?;
        for u in 0..self.users {
            if u > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{{\"user\":\"user{u:05}\",\"categories\":[")?;
            let mut total = Counters::default();
            for (c, name) in CATEGORIES[..self.categories].iter().enumerate() {
                let mut cat = Counters::default();
                for b in 0..self.buckets_per_user {
                    for h in 0..self.hours {
                        cat = add(cat, Shape::counters(u, b, c, h));
                    }
                }
                total = add(total, cat);
                if c > 0 {
                    out.write_all(b",")?;
                }
                write_category(&mut out, name, cat)?;
            }
            write!(
                out,
                "],\"total\":{{\"bytes_sent\":{},\"bytes_received\":{},\"ops\":{},\"successful_ops\":{}}}}}",
                total.bytes_sent, total.bytes_received, total.ops, total.successful_ops
            )?;
        }
        out.write_all(b"]}")?;
        out.flush()?;
        Ok(out.n)
    }
}

fn add(a: Counters, b: Counters) -> Counters {
    Counters {
        ops: a.ops + b.ops,
        successful_ops: a.successful_ops + b.successful_ops,
        bytes_sent: a.bytes_sent + b.bytes_sent,
        bytes_received: a.bytes_received + b.bytes_received,
    }
}

fn write_category(out: &mut impl Write, name: &str, c: Counters) -> io::Result<()> {
    write!(
        out,
        "{{\"category\":\"{name}\",\"bytes_sent\":{},\"bytes_received\":{},\"ops\":{},\"successful_ops\":{}}}",
        c.bytes_sent, c.bytes_received, c.ops, c.successful_ops
    )
}

/// Counts what passes through.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage;
    use crate::window::Window;

    #[test]
    fn synthetic_answers_parse_to_their_known_totals() {
        let shape = Shape {
            users: 3,
            buckets_per_user: 2,
            categories: 4,
            hours: 5,
            start_epoch: 1_795_366_800,
        };
        let mut json = Vec::new();
        let n = shape.write(&mut json).unwrap();
        assert_eq!(n, json.len() as u64);
        let window = Window {
            start: chrono::DateTime::from_timestamp(shape.start_epoch, 0).unwrap(),
            end: chrono::DateTime::from_timestamp(shape.start_epoch + 5 * 3600, 0).unwrap(),
        };
        assert_eq!(shape.window(), window);
        let report = usage::parse(&json, window, true).unwrap();
        assert_eq!(report, shape.report());
        assert_eq!(report.total, shape.total());
        assert_eq!(report.users.len(), 3);
        let buckets = report.buckets.unwrap();
        assert_eq!(buckets.len(), 6, "hours summed per bucket");
        assert_eq!(buckets[0].categories.len(), 4);
        // The streaming reader gives the same report.
        let streamed =
            usage::parse_reader(&json[..], window, true, usage::DEFAULT_MAX_BUCKETS).unwrap();
        assert_eq!(streamed.total, shape.total());
    }

    #[test]
    fn sized_shapes_come_near_the_size_asked() {
        let shape = Shape::sized(2_000_000, 20, 3, 6);
        let n = shape.write(io::sink()).unwrap();
        assert!((1_500_000..2_600_000).contains(&n), "{n}");
    }
}
