//! Trimming RGW's usage log, but only what is safely archived.
//!
//! RGW never trims its usage log by itself; `radosgw-admin usage trim` before the history is
//! archived destroys billing data. An `rgw_usage` instance with `trim_after` trims a window's
//! hours once the window ended `trim_after` ago, is behind the job's checkpoint (delivered), and
//! its archived object matches a fresh read of the window byte for byte; the pipeline does the
//! checking (`pipeline::trim_windows`). This module is the pure part: which windows a fire may
//! consider, and what to remember after each verdict.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::catchup::{Planned, MAX_STEPS};
use crate::schedule::Schedule;
use crate::window::Window;

/// Windows considered per fire when `trim_limit` is not set.
pub const DEFAULT_LIMIT: usize = 24;

/// `trim_after` and `trim_limit` of one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrimSettings {
    /// A window is trimmed no sooner than this long after it ends.
    pub after: Duration,
    /// At most this many windows are considered per fire.
    pub limit: usize,
}

/// Where trimming starts when it has never run: at the checkpoint as it was when trimming was
/// turned on (windows delivered before are left to the operator: nothing says they were
/// archived under the keys this config gives them), or, for a job that never delivered
/// anything, at the first window it delivers.
pub fn start(
    trimmed_until: Option<DateTime<Utc>>,
    delivered_until: Option<DateTime<Utc>>,
    first_window: Window,
) -> DateTime<Utc> {
    trimmed_until
        .or(delivered_until)
        .unwrap_or(first_window.start)
}

/// The windows a fire at `now` may trim, oldest first: each starts at or after `trimmed_until`,
/// ends at or before the checkpoint `delivered_until`, and ended at least `after` before `now`;
/// at most `limit` of them. Each comes with the fire time whose key names its object (the first
/// scheduled fire that asks for it, as catch-up names it).
pub fn plan<E>(
    schedule: &Schedule,
    window_at: impl Fn(DateTime<Utc>) -> Result<Window, E>,
    now: DateTime<Utc>,
    settings: TrimSettings,
    delivered_until: Option<DateTime<Utc>>,
    trimmed_until: DateTime<Utc>,
) -> Result<Vec<Planned>, E> {
    let mut out = Vec::new();
    let Some(delivered) = delivered_until else {
        return Ok(out);
    };
    let Ok(after) = TimeDelta::from_std(settings.after) else {
        return Ok(out);
    };
    let Some(old_enough) = now.checked_sub_signed(after) else {
        return Ok(out);
    };
    let bound = delivered.min(old_enough);
    let mut from = trimmed_until;
    // A window's fire comes after the window ends, so the search starts at `from`.
    let mut t = schedule.next_after(from - TimeDelta::seconds(1));
    let mut steps = 0;
    while let Some(fire) = t {
        steps += 1;
        if out.len() == settings.limit || steps > MAX_STEPS {
            break;
        }
        let window = window_at(fire)?;
        if window.end > bound {
            break;
        }
        if window.start >= from {
            out.push(Planned {
                fire_time: fire,
                window,
            });
            from = window.end;
        }
        t = schedule.next_after(fire);
    }
    Ok(out)
}

/// What became of one planned window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its object matched a fresh read, and its hours were trimmed (or, in a dry run, would be).
    Trimmed,
    /// Its object is not in the bucket (deleted, or archived under another key): left in RGW's
    /// log for good, and trimming goes on past it.
    NotArchived,
    /// The log is empty for it while its object is not: trimmed by someone else. Nothing to do.
    AlreadyTrimmed,
    /// A fresh read renders other bytes than the archived object (a late flush, or `settle` too
    /// short): re-archived and not trimmed; the next fire verifies it again.
    Differs,
    /// RGW refused the trim: the key lacks the admin cap `usage=write`. Tried again next fire.
    Denied,
    /// A request failed (reading the object or the window, or the trim): tried again next fire.
    Failed,
}

impl Verdict {
    /// The `reason` label of `usage_trim_refused_total`; `None` for a trimmed window.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Verdict::Trimmed => None,
            Verdict::NotArchived => Some("not_archived"),
            Verdict::AlreadyTrimmed => Some("log_empty"),
            Verdict::Differs => Some("differs"),
            Verdict::Denied => Some("no_cap"),
            Verdict::Failed => Some("failed"),
        }
    }

    /// Whether trimming moves past the window (`trimmed_until` = its end) and goes on with the
    /// next; otherwise it stops, to try this window again next fire.
    pub fn moves_on(self) -> bool {
        matches!(
            self,
            Verdict::Trimmed | Verdict::NotArchived | Verdict::AlreadyTrimmed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::utc;
    use crate::window::WindowLength;
    use chrono_tz::Tz;
    use std::convert::Infallible;

    const HOUR: Duration = Duration::from_secs(3600);

    /// The plan at `now` of an hourly job at five past each hour, reading the previous hour
    /// (settle 1 minute); times are "HH:MM:SS" of one day.
    fn hourly(
        now: &str,
        settings: TrimSettings,
        delivered: Option<&str>,
        trimmed: &str,
    ) -> Vec<Planned> {
        let schedule = Schedule::cron("0 5 * * * *").unwrap();
        let window_at = |f: DateTime<Utc>| {
            Ok::<_, Infallible>(
                Window::last_complete(f - TimeDelta::minutes(1), WindowLength::Hours(1), Tz::UTC)
                    .unwrap(),
            )
        };
        plan(
            &schedule,
            window_at,
            at(now),
            settings,
            delivered.map(at),
            at(trimmed),
        )
        .unwrap()
    }

    fn settings(after_hours: u32, limit: usize) -> TrimSettings {
        TrimSettings {
            after: HOUR * after_hours,
            limit,
        }
    }

    /// (window start, fire time) of each planned window, as "dd HH" and "dd HH:MM".
    fn starts(p: &[Planned]) -> Vec<(String, String)> {
        p.iter()
            .map(|p| {
                (
                    p.window.start.format("%d %H").to_string(),
                    p.fire_time.format("%d %H:%M").to_string(),
                )
            })
            .collect()
    }

    fn at(s: &str) -> DateTime<Utc> {
        utc(&format!("2026-12-03T{s}Z"))
    }

    #[test]
    fn windows_older_than_trim_after_and_delivered_are_trimmed_oldest_first_under_their_keys() {
        // Delivered up to 12:00, trimmed up to 06:00, now 12:30, trim after 3 hours.
        let p = hourly("12:30:00", settings(3, 24), Some("12:00:00"), "06:00:00");
        // 06-07, 07-08, 08-09 ended 3 h before 12:30; 09-10 ends 10:00, only 2.5 h ago.
        assert_eq!(
            starts(&p),
            [
                ("03 06".into(), "03 07:05".into()),
                ("03 07".into(), "03 08:05".into()),
                ("03 08".into(), "03 09:05".into()),
            ]
        );
    }

    #[test]
    fn never_past_the_checkpoint_however_old() {
        // The checkpoint is stuck at 08:00 (a window failing to deliver): nothing after it.
        let p = hourly("23:00:00", settings(1, 24), Some("08:00:00"), "06:00:00");
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].window.end, at("08:00:00"));
        // Nothing delivered: nothing trimmed.
        assert_eq!(hourly("23:00:00", settings(1, 24), None, "06:00:00"), []);
    }

    #[test]
    fn at_most_the_limit_per_fire_and_the_next_fire_goes_on_from_the_last() {
        let first = hourly("23:00:00", settings(1, 4), Some("22:00:00"), "00:00:00");
        assert_eq!(first.len(), 4);
        assert_eq!(first[3].window.end, at("04:00:00"));
        let next = hourly("23:00:00", settings(1, 4), Some("22:00:00"), "04:00:00");
        assert_eq!(next[0].window.start, at("04:00:00"));
    }

    #[test]
    fn a_window_not_old_enough_or_already_trimmed_is_not_planned() {
        // Everything up to the checkpoint is trimmed already.
        assert_eq!(
            hourly("23:00:00", settings(1, 24), Some("12:00:00"), "12:00:00"),
            []
        );
        // trim_after longer than the history.
        let young = hourly(
            "12:30:00",
            settings(90 * 24, 24),
            Some("12:00:00"),
            "06:00:00",
        );
        assert_eq!(young, []);
        // A trim_after beyond what a date can subtract plans nothing rather than panicking.
        let huge = TrimSettings {
            after: Duration::from_secs(u64::MAX),
            limit: 24,
        };
        assert_eq!(hourly("12:30:00", huge, Some("12:00:00"), "06:00:00"), []);
    }

    #[test]
    fn multi_hour_windows_are_trimmed_whole() {
        let schedule = Schedule::cron("0 5 */6 * * *").unwrap();
        let window_at = |f: DateTime<Utc>| {
            Ok::<_, Infallible>(
                Window::last_complete(f - TimeDelta::minutes(1), WindowLength::Hours(6), Tz::UTC)
                    .unwrap(),
            )
        };
        let p = plan(
            &schedule,
            window_at,
            at("23:00:00"),
            settings(2, 24),
            Some(at("18:00:00")),
            at("00:00:00"),
        )
        .unwrap();
        let spans: Vec<_> = p.iter().map(|p| (p.window.start, p.window.end)).collect();
        assert_eq!(
            spans,
            [
                (at("00:00:00"), at("06:00:00")),
                (at("06:00:00"), at("12:00:00")),
                (at("12:00:00"), at("18:00:00")),
            ]
        );
    }

    #[test]
    fn trimming_starts_at_the_checkpoint_it_was_turned_on_at() {
        let w = Window {
            start: at("10:00:00"),
            end: at("11:00:00"),
        };
        assert_eq!(
            start(Some(at("05:00:00")), Some(at("09:00:00")), w),
            at("05:00:00")
        );
        assert_eq!(start(None, Some(at("09:00:00")), w), at("09:00:00"));
        assert_eq!(start(None, None, w), at("10:00:00"));
    }

    #[test]
    fn only_a_verified_trim_or_a_window_that_cannot_be_verified_moves_trimming_on() {
        let on: Vec<_> = [
            Verdict::Trimmed,
            Verdict::NotArchived,
            Verdict::AlreadyTrimmed,
            Verdict::Differs,
            Verdict::Denied,
            Verdict::Failed,
        ]
        .into_iter()
        .map(|v| (v.moves_on(), v.refusal()))
        .collect();
        assert_eq!(
            on,
            [
                (true, None),
                (true, Some("not_archived")),
                (true, Some("log_empty")),
                (false, Some("differs")),
                (false, Some("no_cap")),
                (false, Some("failed")),
            ]
        );
    }
}
