//! The RGW usage log as counters for the engine: which hours to read now, each hour's figures per
//! (owner, bucket) summed over categories, stitched across hour rollovers, and summed per user.
//! Pure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::rates::HourStitch;
use crate::usage::UsageReport;
use crate::window::Window;

/// A bucket: its owner and its name (`""` holds service calls such as list_buckets, `"-"`
/// requests for missing buckets).
pub type Bucket = (Arc<str>, Arc<str>);
/// Ops, bytes sent, bytes received.
pub type Figures = [u64; 3];

/// The hours of the usage log to read at `now`: the current one and, for `grace` after it began,
/// the previous one, whose last writes can still arrive.
pub fn hours_to_read(now: DateTime<Utc>, grace: Duration) -> Vec<Window> {
    let hour = TimeDelta::hours(1);
    // Truncating to an hour cannot fail for a clock reading.
    let start = now.duration_trunc(hour).unwrap_or(now);
    let current = Window {
        start,
        end: start + hour,
    };
    let grace = TimeDelta::from_std(grace).unwrap_or(TimeDelta::MAX);
    if now - start < grace {
        let previous = Window {
            start: start - hour,
            end: start,
        };
        vec![previous, current]
    } else {
        vec![current]
    }
}

/// One hour's figures per bucket, its categories summed.
pub fn hour_figures(report: UsageReport) -> HashMap<Bucket, Figures> {
    let mut figures = HashMap::new();
    for b in report.buckets.into_iter().flatten() {
        let mut sum: Figures = [0; 3];
        for c in b.categories.values() {
            for (s, v) in sum.iter_mut().zip([c.ops, c.bytes_sent, c.bytes_received]) {
                *s = s.saturating_add(v);
            }
        }
        figures.insert((b.owner, Arc::from(b.bucket)), sum);
    }
    figures
}

/// Totals per user and per bucket that only grow across hours.
#[derive(Default)]
pub struct UsageTotals {
    stitch: HourStitch<Bucket, 3>,
}

/// Counters as the engine reads them.
pub type Counters = [f64; 3];

impl UsageTotals {
    /// The figures of the hours read now, by hour; returns the totals per user and per bucket.
    #[allow(clippy::type_complexity)]
    pub fn update(
        &mut self,
        hours: Vec<(DateTime<Utc>, HashMap<Bucket, Figures>)>,
    ) -> (Vec<(Arc<str>, Counters)>, Vec<(Bucket, Counters)>) {
        let hours = hours.into_iter().map(|(h, f)| (h.timestamp(), f)).collect();
        let buckets = self.stitch.update(hours);
        let mut users: HashMap<Arc<str>, Figures> = HashMap::new();
        for ((owner, _), figures) in &buckets {
            let sum = users.entry(owner.clone()).or_default();
            for (s, v) in sum.iter_mut().zip(figures) {
                *s = s.saturating_add(*v);
            }
        }
        let counters = |f: Figures| f.map(|v| v as f64);
        (
            users.into_iter().map(|(u, f)| (u, counters(f))).collect(),
            buckets.into_iter().map(|(b, f)| (b, counters(f))).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_previous_hour_is_read_during_the_grace_only() {
        let grace = Duration::from_secs(70);
        let hours = hours_to_read(at("2026-12-01T14:01:09Z"), grace);
        let starts: Vec<_> = hours.iter().map(|w| w.start).collect();
        assert_eq!(
            starts,
            [at("2026-12-01T13:00:00Z"), at("2026-12-01T14:00:00Z")]
        );
        assert_eq!(hours[1].end, at("2026-12-01T15:00:00Z"));
        let hours = hours_to_read(at("2026-12-01T14:01:10Z"), grace);
        assert_eq!(hours.len(), 1);
        assert_eq!(hours[0].start, at("2026-12-01T14:00:00Z"));
    }

    #[test]
    fn an_answer_becomes_totals_per_bucket_and_user_across_the_rollover() {
        let json = |hour: &str, epoch: i64, put: u64| {
            format!(
                r#"{{"entries":[{{"user":"alice","buckets":[
                {{"bucket":"photos","time":"{hour}","epoch":{epoch},"owner":"alice","categories":[
                  {{"category":"put_obj","bytes_sent":0,"bytes_received":{put},"ops":2,"successful_ops":2}},
                  {{"category":"get_obj","bytes_sent":300,"bytes_received":0,"ops":1,"successful_ops":1}}]}},
                {{"bucket":"","time":"{hour}","epoch":{epoch},"owner":"alice","categories":[
                  {{"category":"list_buckets","bytes_sent":10,"bytes_received":0,"ops":1,"successful_ops":1}}]}}]}}],
                "summary":[{{"user":"alice","categories":[],"total":{{"bytes_sent":310,"bytes_received":{put},"ops":4,"successful_ops":4}}}}]}}"#
            )
        };
        let report = |hour: &str, epoch, put| {
            let window = Window {
                start: at(hour),
                end: at(hour) + TimeDelta::hours(1),
            };
            let report = usage::parse(json(hour, epoch, put).as_bytes(), window, true).unwrap();
            hour_figures(report)
        };
        let thirteen = report("2026-12-01T13:00:00Z", 1796130000, 1000);
        let photos: Bucket = ("alice".into(), "photos".into());
        assert_eq!(thirteen[&photos], [3, 300, 1000]);
        assert_eq!(thirteen[&("alice".into(), "".into())], [1, 10, 0]);

        let mut totals = UsageTotals::default();
        let (users, buckets) = totals.update(vec![(at("2026-12-01T13:00:00Z"), thirteen)]);
        assert_eq!(users, vec![("alice".into(), [4.0, 310.0, 1000.0])]);
        assert_eq!(buckets.len(), 2);
        // After 14:00 both hours are read, then 13:00 alone no more: the totals go on.
        let both = vec![
            (
                at("2026-12-01T13:00:00Z"),
                report("2026-12-01T13:00:00Z", 1796130000, 1500),
            ),
            (
                at("2026-12-01T14:00:00Z"),
                report("2026-12-01T14:00:00Z", 1796133600, 50),
            ),
        ];
        let (users, _) = totals.update(both);
        assert_eq!(users, vec![("alice".into(), [8.0, 620.0, 1550.0])]);
        let (users, _) = totals.update(vec![(
            at("2026-12-01T14:00:00Z"),
            report("2026-12-01T14:00:00Z", 1796133600, 70),
        )]);
        assert_eq!(users, vec![("alice".into(), [8.0, 620.0, 1570.0])]);
    }
}
