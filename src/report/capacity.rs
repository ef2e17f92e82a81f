//! Capacity over a period, per CRUSH root: first and last used, the least and the most, the
//! growth per day between the first and the last fire, and when the root fills at that rate.
//! Memory grows with the roots, not with the fires.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::decode::Root;

const KIB: u64 = 1024;

/// One root at one fire, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub used: u64,
    pub avail: u64,
}

/// A root's history over the period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct History {
    pub first: Sample,
    pub last: Sample,
    pub min_used: u64,
    pub max_used: u64,
    pub samples: u64,
}

impl History {
    /// Bytes used more per day, from the first fire to the last (negative: shrinking); `None`
    /// with fewer than two fires apart in time.
    pub fn growth_per_day(&self) -> Option<i64> {
        let seconds = (self.last.at - self.first.at).num_seconds();
        if seconds <= 0 {
            return None;
        }
        let delta = i128::from(self.last.used) - i128::from(self.first.used);
        i64::try_from(delta * 86_400 / i128::from(seconds)).ok()
    }

    /// When the root is full if it keeps growing as it did: its last free bytes at that rate.
    pub fn full_at(&self) -> Option<DateTime<Utc>> {
        let growth = self.growth_per_day().filter(|g| *g > 0)?;
        let seconds = i128::from(self.last.avail) * 86_400 / i128::from(growth);
        let delta = TimeDelta::try_seconds(i64::try_from(seconds).ok()?)?;
        self.last.at.checked_add_signed(delta)
    }
}

/// Per (job, root), their histories.
#[derive(Debug, Default)]
pub struct CapacitySums {
    pub roots: BTreeMap<(String, String), History>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("root {root}: {what} KiB is more bytes than 64 bits hold")]
pub struct TooLarge {
    root: String,
    what: &'static str,
}

impl CapacitySums {
    /// Adds one fire's roots (in any order of fires).
    pub fn add(&mut self, job: &str, at: DateTime<Utc>, roots: &[Root]) -> Result<(), TooLarge> {
        let mut samples = Vec::with_capacity(roots.len());
        for r in roots {
            let bytes = |kb: u64, what| {
                kb.checked_mul(KIB).ok_or_else(|| TooLarge {
                    root: r.name.clone(),
                    what,
                })
            };
            let sample = Sample {
                at,
                used: bytes(r.kb_used, "kb_used")?,
                avail: bytes(r.kb_avail, "kb_avail")?,
            };
            samples.push(((job.to_string(), r.name.clone()), sample));
        }
        for (id, s) in samples {
            let h = self.roots.entry(id).or_insert(History {
                first: s,
                last: s,
                min_used: s.used,
                max_used: s.used,
                samples: 0,
            });
            if s.at < h.first.at {
                h.first = s;
            }
            if s.at >= h.last.at {
                h.last = s;
            }
            h.min_used = h.min_used.min(s.used);
            h.max_used = h.max_used.max(s.used);
            h.samples += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::utc;

    fn root(used_kb: u64, avail_kb: u64) -> Vec<Root> {
        vec![Root {
            name: "default".into(),
            kb: used_kb + avail_kb,
            kb_used: used_kb,
            kb_avail: avail_kb,
        }]
    }

    #[test]
    fn a_root_growing_a_gib_a_day_with_ten_left_fills_in_ten_days() {
        let mut sums = CapacitySums::default();
        let gib_kb = 1 << 20;
        // Fed out of order: first and last go by time, not by arrival.
        sums.add(
            "pool_df",
            utc("2026-11-03T00:00:00Z"),
            &root(3 * gib_kb, 10 * gib_kb),
        )
        .unwrap();
        sums.add(
            "pool_df",
            utc("2026-11-01T00:00:00Z"),
            &root(gib_kb, 12 * gib_kb),
        )
        .unwrap();
        sums.add(
            "pool_df",
            utc("2026-11-02T00:00:00Z"),
            &root(5 * gib_kb, 8 * gib_kb),
        )
        .unwrap();
        let h = sums.roots[&("pool_df".to_string(), "default".to_string())];
        assert_eq!(h.first.used, 1 << 30);
        assert_eq!(h.last.used, 3 << 30);
        assert_eq!((h.min_used, h.max_used, h.samples), (1 << 30, 5 << 30, 3));
        assert_eq!(h.growth_per_day(), Some(1 << 30));
        assert_eq!(h.full_at(), Some(utc("2026-11-13T00:00:00Z")));
    }

    #[test]
    fn a_shrinking_or_single_sample_root_has_no_fill_date() {
        let mut sums = CapacitySums::default();
        sums.add("p", utc("2026-11-01T00:00:00Z"), &root(10, 5))
            .unwrap();
        let id = ("p".to_string(), "default".to_string());
        assert_eq!(sums.roots[&id].growth_per_day(), None);
        sums.add("p", utc("2026-11-02T00:00:00Z"), &root(8, 7))
            .unwrap();
        assert_eq!(sums.roots[&id].growth_per_day(), Some(-2048));
        assert_eq!(sums.roots[&id].full_at(), None);
    }

    #[test]
    fn kib_beyond_64_bits_of_bytes_is_an_error_and_nothing_is_added() {
        let mut sums = CapacitySums::default();
        let err = sums
            .add("p", utc("2026-11-01T00:00:00Z"), &root(u64::MAX / 2, 1))
            .unwrap_err();
        assert!(err.to_string().contains("kb_used"), "{err}");
        assert!(sums.roots.is_empty());
    }
}
