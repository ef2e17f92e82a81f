//! Usage windows: which slice of the RGW usage log a fire time asks for.
//!
//! RGW keeps its usage log per user, bucket and **UTC hour**, and compares a query's `start`
//! (inclusive) and `end` (exclusive) with each record's hour start. A window therefore has to
//! begin and end on whole UTC hours, or it silently misses an hour. The window of a fire time is
//! the last *complete* window before it, so the same fire time always asks for the same window.
//! Hour windows (`1h` to `24h`) tile the UTC day; a day window (`1d`) is a calendar day of the
//! configured time zone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// A half-open interval `[start, end)` of the usage log (ordered by start, then end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// How long a usage window is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowLength {
    /// `Nh`, where N divides 24 so that windows tile the day.
    Hours(u32),
    /// `1d`: one calendar day of the configured time zone (23 or 25 hours across DST changes).
    Day,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("window {0:?} is not one of 1h, 2h, 3h, 4h, 6h, 8h, 12h, 24h or 1d")]
    BadLength(String),
    #[error(
        "window boundary {0} is not on a whole UTC hour (the time zone's offset is not whole \
         hours): RGW keeps its usage log per UTC hour, so this window would miss part of an hour"
    )]
    NotOnHour(DateTime<Utc>),
    #[error("local time {0} does not exist in time zone {1}")]
    NoSuchLocalTime(NaiveDateTime, Tz),
    #[error("window start {start} is not before its end {end}")]
    Empty {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

impl FromStr for WindowLength {
    type Err = WindowError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || WindowError::BadLength(s.to_string());
        if s == "1d" {
            return Ok(WindowLength::Day);
        }
        let hours: u32 = s
            .strip_suffix('h')
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?;
        if hours == 0 || 24 % hours != 0 {
            return Err(bad());
        }
        Ok(WindowLength::Hours(hours))
    }
}

impl fmt::Display for WindowLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowLength::Hours(h) => write!(f, "{h}h"),
            WindowLength::Day => f.write_str("1d"),
        }
    }
}

impl Window {
    /// A window given explicitly (`--from`/`--to`); both ends must be on whole UTC hours.
    pub fn explicit(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Window, WindowError> {
        if start >= end {
            return Err(WindowError::Empty { start, end });
        }
        let w = Window { start, end };
        w.check_on_hours()?;
        Ok(w)
    }

    /// The last complete window of `length` that ends at or before `fire` (`tz` aligns days).
    pub fn last_complete(
        fire: DateTime<Utc>,
        length: WindowLength,
        tz: Tz,
    ) -> Result<Window, WindowError> {
        let w = match length {
            // Hour windows tile the UTC day, RGW's own hours: a local wall clock would repeat
            // or skip an hour at DST changes.
            WindowLength::Hours(n) => {
                let midnight = fire
                    .date_naive()
                    .and_hms_opt(0, 0, 0)
                    .expect("midnight exists")
                    .and_utc();
                let end = midnight + Duration::hours(i64::from(fire.hour() - fire.hour() % n));
                Window {
                    start: end - Duration::hours(i64::from(n)),
                    end,
                }
            }
            // A day is the time zone's calendar day (23 or 25 hours across DST changes).
            WindowLength::Day => {
                let local = fire.with_timezone(&tz).naive_local();
                let midnight = local.date().and_hms_opt(0, 0, 0).expect("midnight exists");
                Window {
                    start: to_utc(midnight - Duration::days(1), tz)?,
                    end: to_utc(midnight, tz)?,
                }
            }
        };
        w.check_on_hours()?;
        Ok(w)
    }

    fn check_on_hours(&self) -> Result<(), WindowError> {
        for t in [self.start, self.end] {
            if t.minute() != 0 || t.second() != 0 || t.nanosecond() != 0 {
                return Err(WindowError::NotOnHour(t));
            }
        }
        Ok(())
    }

    /// A bound as RGW's `start`/`end` parameters want it: `YYYY-MM-DD HH:MM:SS` in UTC.
    /// (Epoch seconds are silently ignored by RGW, which then returns the whole log.)
    pub fn query_bound(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    }

    /// Whether a usage record whose hour starts at `t` belongs to this window.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

fn to_utc(local: NaiveDateTime, tz: Tz) -> Result<DateTime<Utc>, WindowError> {
    // An ambiguous midnight (clocks going back) is taken early. A missing one (clocks going
    // forward at midnight, as in Havana or Santiago) starts the day at its first local time.
    (0..=24 * 60)
        .find_map(|m| {
            tz.from_local_datetime(&(local + Duration::minutes(m)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .ok_or(WindowError::NoSuchLocalTime(local, tz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::utc;

    #[test]
    fn hourly_window_is_the_previous_full_hour() {
        let w = Window::last_complete(utc("2026-11-22T13:05:00Z"), WindowLength::Hours(1), Tz::UTC)
            .unwrap();
        assert_eq!(w.start, utc("2026-11-22T12:00:00Z"));
        assert_eq!(w.end, utc("2026-11-22T13:00:00Z"));
        // On the hour exactly, the hour that just ended is the window.
        let w2 =
            Window::last_complete(utc("2026-11-22T13:00:00Z"), WindowLength::Hours(1), Tz::UTC)
                .unwrap();
        assert_eq!(w, w2);
    }

    #[test]
    fn multi_hour_windows_tile_the_day() {
        let w = Window::last_complete(utc("2026-11-22T13:05:00Z"), WindowLength::Hours(6), Tz::UTC)
            .unwrap();
        assert_eq!(
            (w.start, w.end),
            (utc("2026-11-22T06:00:00Z"), utc("2026-11-22T12:00:00Z"))
        );
        let w = Window::last_complete(utc("2026-11-22T03:00:00Z"), WindowLength::Hours(6), Tz::UTC)
            .unwrap();
        assert_eq!(
            (w.start, w.end),
            (utc("2026-11-21T18:00:00Z"), utc("2026-11-22T00:00:00Z"))
        );
    }

    #[test]
    fn daily_window_follows_the_time_zone_including_dst() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let w = Window::last_complete(utc("2026-11-22T13:05:00Z"), WindowLength::Day, tz).unwrap();
        assert_eq!(
            (w.start, w.end),
            (utc("2026-11-20T23:00:00Z"), utc("2026-11-21T23:00:00Z"))
        );
        // 2026-10-25 has 25 hours in Berlin (CEST -> CET).
        let w = Window::last_complete(utc("2026-10-26T08:00:00Z"), WindowLength::Day, tz).unwrap();
        assert_eq!(
            (w.start, w.end),
            (utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"))
        );
    }

    #[test]
    fn hour_windows_ignore_dst_changes() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // 02:00-03:00 local happens twice on 2026-10-25 and never on 2026-03-29.
        for (fire, start) in [
            ("2026-10-25T01:30:00Z", "2026-10-25T00:00:00Z"),
            ("2026-03-29T01:30:00Z", "2026-03-29T00:00:00Z"),
        ] {
            let w = Window::last_complete(utc(fire), WindowLength::Hours(1), tz).unwrap();
            assert_eq!(
                (w.start, w.end),
                (utc(start), utc(start) + Duration::hours(1))
            );
        }
    }

    #[test]
    fn a_day_whose_midnight_does_not_exist_starts_at_its_first_hour() {
        // Havana springs forward at 00:00 on 2026-03-08: that day starts at 01:00 (05:00Z).
        let havana: Tz = "America/Havana".parse().unwrap();
        let w =
            Window::last_complete(utc("2026-03-09T12:00:00Z"), WindowLength::Day, havana).unwrap();
        assert_eq!(
            (w.start, w.end),
            (utc("2026-03-08T05:00:00Z"), utc("2026-03-09T04:00:00Z"))
        );
    }

    #[test]
    fn a_midnight_in_a_skipped_day_is_the_first_time_after_the_gap() {
        // Apia skipped all of 2011-12-30 (UTC-10 to UTC+14), Kwajalein 1993-08-21 (UTC-12 to
        // UTC+12): the search for a day's first local time has to span a whole day.
        for (zone, midnight, first) in [
            (
                "Pacific/Apia",
                "2011-12-30T00:00:00",
                "2011-12-30T10:00:00Z",
            ),
            (
                "Pacific/Kwajalein",
                "1993-08-21T00:00:00",
                "1993-08-21T12:00:00Z",
            ),
        ] {
            let tz: Tz = zone.parse().unwrap();
            assert_eq!(
                to_utc(midnight.parse().unwrap(), tz),
                Ok(utc(first)),
                "{zone}"
            );
        }
    }

    #[test]
    fn half_hour_zones_are_refused() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        let err =
            Window::last_complete(utc("2026-11-22T13:05:00Z"), WindowLength::Day, tz).unwrap_err();
        assert!(matches!(err, WindowError::NotOnHour(_)), "{err}");
    }

    #[test]
    fn lengths_parse_and_bad_ones_are_named() {
        assert_eq!("1h".parse(), Ok(WindowLength::Hours(1)));
        assert_eq!("6h".parse(), Ok(WindowLength::Hours(6)));
        assert_eq!("1d".parse(), Ok(WindowLength::Day));
        for bad in ["5h", "0h", "90m", "2d", "", "h"] {
            assert_eq!(
                bad.parse::<WindowLength>(),
                Err(WindowError::BadLength(bad.into()))
            );
        }
    }

    #[test]
    fn lengths_print_as_they_are_written() {
        for s in ["1h", "2h", "3h", "4h", "6h", "8h", "12h", "24h", "1d"] {
            assert_eq!(s.parse::<WindowLength>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn explicit_windows_must_be_ordered_and_on_hours() {
        assert!(Window::explicit(utc("2026-11-22T12:00:00Z"), utc("2026-11-22T14:00:00Z")).is_ok());
        assert!(
            Window::explicit(utc("2026-11-22T14:00:00Z"), utc("2026-11-22T12:00:00Z")).is_err()
        );
        assert!(
            Window::explicit(utc("2026-11-22T12:30:00Z"), utc("2026-11-22T14:00:00Z")).is_err()
        );
    }

    #[test]
    fn a_bound_off_the_hour_by_a_minute_a_second_or_a_nanosecond_is_refused() {
        let (before, after) = (utc("2026-11-22T10:00:00Z"), utc("2026-11-22T14:00:00Z"));
        for off in [
            "2026-11-22T12:30:00Z",
            "2026-11-22T12:00:30Z",
            "2026-11-22T12:00:00.5Z",
        ] {
            let off = utc(off);
            assert_eq!(
                Window::explicit(off, after),
                Err(WindowError::NotOnHour(off))
            );
            assert_eq!(
                Window::explicit(before, off),
                Err(WindowError::NotOnHour(off))
            );
        }
    }

    #[test]
    fn a_window_holds_records_of_its_start_hour_but_not_of_its_end_hour() {
        let w = Window::explicit(utc("2026-11-22T12:00:00Z"), utc("2026-11-22T14:00:00Z")).unwrap();
        assert!(!w.contains(utc("2026-11-22T11:00:00Z")));
        assert!(w.contains(utc("2026-11-22T12:00:00Z")));
        assert!(w.contains(utc("2026-11-22T13:00:00Z")));
        // The end hour is the next window's first: a record there is not this window's.
        assert!(!w.contains(utc("2026-11-22T14:00:00Z")));
    }

    #[test]
    fn query_bounds_are_utc_datetimes_not_epochs() {
        assert_eq!(
            Window::query_bound(utc("2026-11-22T17:00:00Z")),
            "2026-11-22 17:00:00"
        );
    }
}
