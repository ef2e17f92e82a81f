//! When jobs fire, and which *scheduled* fire time a firing stands for.
//!
//! Schedules are 6-field cron expressions (`sec min hour day-of-month month day-of-week`, in
//! UTC), or aligned intervals (`every = "10s"`, `"15m"`, `"1h"`, `"1d"`) which are turned into the
//! equivalent cron expression so that fires land on the clock (:00, :10, ...) whatever time the
//! daemon started. Both are parsed exactly as `tokio-cron-scheduler` parses them, since that
//! crate triggers the jobs. It fires a little late (it polls), so the fire time a run stands
//! for is recomputed here as the latest scheduled instant not after "now": keys and windows
//! come from that, never from the wall clock.

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;

/// A parsed, validated schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    expr: String,
    cron: Cron,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("invalid cron expression {expr:?} (want 6 fields: sec min hour day month weekday): {reason}")]
    BadCron { expr: String, reason: String },
    #[error("cron expression {0:?} never fires")]
    NeverFires(String),
    #[error(
        "interval {0} does not divide a minute, an hour or a day evenly, so its fires could not \
         be aligned on the clock; use a cron expression (`schedule`) instead"
    )]
    Unaligned(String),
}

fn parser() -> CronParser {
    // The same settings tokio-cron-scheduler uses, so both agree on every expression.
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
}

impl Schedule {
    pub fn cron(expr: &str) -> Result<Schedule, ScheduleError> {
        let bad = |reason: String| ScheduleError::BadCron {
            expr: expr.to_string(),
            reason,
        };
        // croner skips empty list items, so a field of commas alone allows no value: the search
        // for a fire below would then walk to the year 5000 (minutes, for seconds or minutes).
        if let Some(i) = expr
            .split_whitespace()
            .position(|field| field.split(',').all(|item| item.trim().is_empty()))
        {
            return Err(bad(format!("field {} lists no value", i + 1)));
        }
        let cron = parser().parse(expr).map_err(|e| bad(e.to_string()))?;
        let s = Schedule {
            expr: expr.to_string(),
            cron,
        };
        // Two fires within the next ten years, or the expression is useless (e.g. 30 February).
        let now = Utc::now();
        let never = || ScheduleError::NeverFires(expr.to_string());
        let first = s.next_after(now).ok_or_else(never)?;
        s.next_after(first).ok_or_else(never)?;
        Ok(s)
    }

    /// An interval aligned on the clock, as a cron expression.
    pub fn every(interval: Duration) -> Result<Schedule, ScheduleError> {
        let secs = interval.as_secs();
        let unaligned =
            || ScheduleError::Unaligned(humantime::format_duration(interval).to_string());
        if interval.subsec_nanos() != 0 || secs == 0 {
            return Err(unaligned());
        }
        let expr = match secs {
            s if s < 60 && 60 % s == 0 => format!("*/{s} * * * * *"),
            s if s % 60 == 0 && s < 3600 && 3600 % s == 0 => format!("0 */{} * * * *", s / 60),
            s if s % 3600 == 0 && s < 86400 && 86400 % s == 0 => {
                format!("0 0 */{} * * *", s / 3600)
            }
            86400 => "0 0 0 * * *".to_string(),
            _ => return Err(unaligned()),
        };
        Schedule::cron(&expr)
    }

    /// The cron expression (for the trigger and for logs).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The scheduled instant a firing observed at `now` stands for: the latest one not after it.
    pub fn fire_time_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let now = now.duration_trunc(TimeDelta::seconds(1)).ok()?;
        self.cron.find_previous_occurrence(&now, true).ok()
    }

    /// The next `n` fire times from now.
    pub fn upcoming(&self, n: usize) -> Vec<DateTime<Utc>> {
        self.upcoming_after(Utc::now(), n)
    }

    /// The next `n` fire times after `t`.
    pub fn upcoming_after(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        std::iter::successors(self.next_after(t), |t| self.next_after(*t))
            .take(n)
            .collect()
    }

    /// The longest gap between consecutive fires over the next hundred, as a period (a cron
    /// expression need not be regular).
    pub fn period(&self) -> Duration {
        let longest = self
            .upcoming(101)
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        longest.to_std().unwrap_or_default()
    }

    /// The first scheduled instant strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::utc;

    #[test]
    fn late_firings_map_back_to_their_scheduled_instant() {
        let s = Schedule::cron("*/10 * * * * *").unwrap();
        let on_time = utc("2026-11-22T13:05:10Z");
        assert_eq!(s.fire_time_at(on_time), Some(on_time));
        assert_eq!(
            s.fire_time_at(utc("2026-11-22T13:05:10.480Z")),
            Some(on_time)
        );
        assert_eq!(
            s.fire_time_at(utc("2026-11-22T13:05:19.999Z")),
            Some(on_time)
        );
        assert_eq!(s.next_after(on_time), Some(utc("2026-11-22T13:05:20Z")));
        assert_eq!(s.period(), Duration::from_secs(10));
        // Irregular: the longest gap counts.
        assert_eq!(
            Schedule::cron("0 0 1,2,23 * * *").unwrap().period(),
            Duration::from_secs(21 * 3600)
        );
    }

    #[test]
    fn intervals_become_aligned_cron_expressions() {
        let cases = [
            (10, "*/10 * * * * *"),
            (1, "*/1 * * * * *"),
            // A minute is the first interval of the minute field, not a step of 60 seconds.
            (60, "0 */1 * * * *"),
            (300, "0 */5 * * * *"),
            (3600, "0 0 */1 * * *"),
            (6 * 3600, "0 0 */6 * * *"),
            (86400, "0 0 0 * * *"),
        ];
        for (secs, expr) in cases {
            assert_eq!(
                Schedule::every(Duration::from_secs(secs)).unwrap().expr(),
                expr
            );
        }
        let hourly = Schedule::every(Duration::from_secs(3600)).unwrap();
        assert_eq!(
            hourly.next_after(utc("2026-11-22T13:05:00Z")),
            Some(utc("2026-11-22T14:00:00Z"))
        );
        for secs in [0, 7, 90, 7 * 60, 5 * 3600, 2 * 86400] {
            assert!(matches!(
                Schedule::every(Duration::from_secs(secs)),
                Err(ScheduleError::Unaligned(_))
            ));
        }
    }

    #[test]
    fn bad_and_never_firing_expressions_are_refused() {
        assert!(matches!(
            Schedule::cron("* * * * *"),
            Err(ScheduleError::BadCron { .. })
        ));
        assert!(matches!(
            Schedule::cron("every minute"),
            Err(ScheduleError::BadCron { .. })
        ));
        assert!(matches!(
            Schedule::cron("0 0 0 30 2 *"),
            Err(ScheduleError::NeverFires(_) | ScheduleError::BadCron { .. })
        ));
    }

    /// Found by fuzzing (`fuzz/`, target `config`, as hangs): croner accepts a field of commas
    /// alone as one that allows no value, and looking for its first fire searched to the year
    /// 5000, which took seconds (hours, days) to minutes (seconds, minutes) before the config was
    /// refused.
    #[test]
    fn a_field_of_commas_alone_is_refused_at_once() {
        for (expr, field) in [
            (", * * * * *", 1),
            ("0 , * * * *", 2),
            ("0 */5 ,, * * *", 3),
            ("0 */5 * , * *", 4),
        ] {
            let err = Schedule::cron(expr).unwrap_err().to_string();
            assert!(
                err.contains(&format!("field {field} lists no value")),
                "{err}"
            );
        }
        assert!(Schedule::cron("0 5, * * * *").is_ok());
    }
}
