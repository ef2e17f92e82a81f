//! Catch-up: which usage windows one fire must deliver.
//!
//! Usage windows are history, so a window missed while the exporter (or RGW, or S3) was down
//! can be fetched late. The state directory remembers `delivered_until`: every window ending at
//! or before it has been delivered. A fire then delivers, oldest first, each window between
//! that instant and its own window, each under the key of the *first scheduled fire that asks
//! for it*, exactly the key it would have had, and then its own window. Pure: the caller
//! supplies the schedule and the job's fire-time-to-window mapping.

use chrono::{DateTime, TimeDelta, Utc};

use crate::schedule::Schedule;
use crate::window::Window;

/// One delivery to make: the fire time that names it and the window it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    pub fire_time: DateTime<Utc>,
    pub window: Window,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Missed windows, oldest first, at most the limit.
    pub backlog: Vec<Planned>,
    /// More windows are missed than the limit let into `backlog`; later fires take them.
    pub more: bool,
    /// The walk over the schedule gave up at this fire time, [`MAX_STEPS`] fires after the
    /// checkpoint, short of the current window (`more` is set too). Worth a warning: with
    /// nothing in `backlog`, every later fire gives up at the same place.
    pub gave_up_at: Option<DateTime<Utc>>,
    pub current: Planned,
}

/// Fires are walked one by one; a checkpoint this far behind is left to a manual backfill.
pub const MAX_STEPS: usize = 1_000_000;

/// Plans the deliveries of the fire at `fire` for a job whose fire times read
/// `window_at(fire time)`.
pub fn plan<E>(
    schedule: &Schedule,
    window_at: impl Fn(DateTime<Utc>) -> Result<Window, E>,
    fire: DateTime<Utc>,
    delivered_until: Option<DateTime<Utc>>,
    limit: usize,
) -> Result<Plan, E> {
    plan_walking(schedule, window_at, fire, delivered_until, limit, MAX_STEPS)
}

/// [`plan`], walking at most `max_steps` fire times (tests lower it to reach the cap).
fn plan_walking<E>(
    schedule: &Schedule,
    window_at: impl Fn(DateTime<Utc>) -> Result<Window, E>,
    fire: DateTime<Utc>,
    delivered_until: Option<DateTime<Utc>>,
    limit: usize,
    max_steps: usize,
) -> Result<Plan, E> {
    let current = Planned {
        fire_time: fire,
        window: window_at(fire)?,
    };
    let mut plan = Plan {
        backlog: Vec::new(),
        more: false,
        gave_up_at: None,
        current,
    };
    let Some(mut expected) = delivered_until else {
        return Ok(plan);
    };
    // A window's fire comes after the window ends, so the search starts at `expected`.
    let mut t = schedule.next_after(expected - TimeDelta::seconds(1));
    let mut steps = 0;
    while let Some(f) = t.filter(|f| *f < fire) {
        steps += 1;
        if steps > max_steps {
            plan.more = true;
            plan.gave_up_at = Some(f);
            break;
        }
        let w = window_at(f)?;
        if w.start >= current.window.start {
            break;
        }
        if w.start >= expected {
            if plan.backlog.len() == limit {
                plan.more = true;
                break;
            }
            plan.backlog.push(Planned {
                fire_time: f,
                window: w,
            });
            expected = w.end;
        }
        // A fire asks for one window, ended before it: the next missed one is a later fire's.
        t = schedule.next_after(f);
    }
    Ok(plan)
}

/// The new `delivered_until` after delivering `window`: it only moves over contiguous windows,
/// so a window that failed is fetched again by a later fire.
pub fn advance(delivered_until: Option<DateTime<Utc>>, window: Window) -> Option<DateTime<Utc>> {
    match delivered_until {
        None => Some(window.end),
        Some(until) if until >= window.start => Some(until.max(window.end)),
        Some(until) => Some(until),
    }
}

/// The fire time whose scheduled run reads `window`: the first at or after its end for which
/// `window_at` gives it back, so that a window fetched by hand (`--from/--to`, `audit
/// --repair`) gets the key the schedule gives it, never the key of another window. `None`
/// when the schedule never asks for that window (a length of its own, say).
pub fn fire_reading<E>(
    schedule: &Schedule,
    window_at: impl Fn(DateTime<Utc>) -> Result<Window, E>,
    window: Window,
) -> Option<DateTime<Utc>> {
    // Fire times are whole seconds: the one at the window's end itself counts.
    let mut fire = schedule.next_after(window.end - TimeDelta::seconds(1));
    for _ in 0..MAX_STEPS {
        let t = fire?;
        match window_at(t) {
            Ok(w) if w == window => return Some(t),
            Ok(w) if w.start > window.start => return None,
            _ => fire = schedule.next_after(t),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{hour, utc};
    use crate::window::WindowLength;
    use chrono_tz::Tz;
    use std::convert::Infallible;

    fn hourly(settle_secs: i64) -> impl Fn(DateTime<Utc>) -> Result<Window, Infallible> {
        move |f| {
            Ok(Window::last_complete(
                f - TimeDelta::seconds(settle_secs),
                WindowLength::Hours(1),
                Tz::UTC,
            )
            .unwrap())
        }
    }

    /// (fire time, window start) of each missed window.
    fn backlog(p: &Plan) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        p.backlog
            .iter()
            .map(|b| (b.fire_time, b.window.start))
            .collect()
    }

    #[test]
    fn without_a_checkpoint_only_the_current_window() {
        let s = Schedule::cron("0 5 * * * *").unwrap();
        let p = plan(&s, hourly(60), utc("2026-11-22T13:05:00Z"), None, 24).unwrap();
        assert!(p.backlog.is_empty());
        assert_eq!(p.current.window.start, utc("2026-11-22T12:00:00Z"));
    }

    #[test]
    fn missed_windows_come_oldest_first_with_the_keys_their_fires_would_have_had() {
        let s = Schedule::cron("0 5 * * * *").unwrap();
        // Delivered up to 09:00; down from 09:05 to 13:04.
        let p = plan(
            &s,
            hourly(60),
            utc("2026-11-22T13:05:00Z"),
            Some(utc("2026-11-22T09:00:00Z")),
            24,
        )
        .unwrap();
        assert_eq!(
            backlog(&p),
            [
                (utc("2026-11-22T10:05:00Z"), utc("2026-11-22T09:00:00Z")),
                (utc("2026-11-22T11:05:00Z"), utc("2026-11-22T10:00:00Z")),
                (utc("2026-11-22T12:05:00Z"), utc("2026-11-22T11:00:00Z")),
            ]
        );
        assert!(!p.more);
        assert_eq!(p.current.window.start, utc("2026-11-22T12:00:00Z"));
    }

    #[test]
    fn frequent_fires_ask_each_window_once_under_its_first_fire() {
        let s = Schedule::cron("*/10 * * * * *").unwrap();
        let p = plan(
            &s,
            hourly(60),
            utc("2026-11-22T13:30:00Z"),
            Some(utc("2026-11-22T11:00:00Z")),
            24,
        )
        .unwrap();
        // 11:00-12:00 is first asked at 12:01:00 (settle 60 s).
        assert_eq!(
            backlog(&p),
            [(utc("2026-11-22T12:01:00Z"), utc("2026-11-22T11:00:00Z"))]
        );
        // Already delivered up to the current window: nothing more.
        let p = plan(
            &s,
            hourly(60),
            utc("2026-11-22T13:30:00Z"),
            Some(utc("2026-11-22T13:00:00Z")),
            24,
        )
        .unwrap();
        assert!(p.backlog.is_empty());
    }

    #[test]
    fn the_limit_leaves_the_rest_for_later_fires() {
        let s = Schedule::cron("0 5 * * * *").unwrap();
        let p = plan(
            &s,
            hourly(60),
            utc("2026-11-22T13:05:00Z"),
            Some(utc("2026-11-21T13:00:00Z")),
            5,
        )
        .unwrap();
        assert_eq!(p.backlog.len(), 5);
        assert!(p.more);
        assert_eq!(p.gave_up_at, None);
        assert_eq!(p.backlog[4].window.end, utc("2026-11-21T18:00:00Z"));
    }

    #[test]
    fn a_checkpoint_too_far_behind_sets_more_and_says_where_the_walk_stopped() {
        // Every second, daily windows: each of a day's 86,400 fires asks for the day before,
        // so a walk of 1,000 fires from midnight finds no missed window at all.
        let s = Schedule::cron("* * * * * *").unwrap();
        let daily =
            |f| Ok::<_, Infallible>(Window::last_complete(f, WindowLength::Day, Tz::UTC).unwrap());
        let p = plan_walking(
            &s,
            daily,
            utc("2026-11-22T13:05:00Z"),
            Some(utc("2026-11-20T00:00:00Z")),
            24,
            1_000,
        )
        .unwrap();
        assert!(p.backlog.is_empty());
        assert!(p.more);
        // The 1,001st fire from midnight is where it stopped.
        assert_eq!(p.gave_up_at, Some(utc("2026-11-20T00:16:40Z")));
        assert_eq!(p.current.window.start, utc("2026-11-21T00:00:00Z"));
    }

    #[test]
    fn the_step_cap_counts_each_fire_walked_once() {
        let s = Schedule::cron("0 5 * * * *").unwrap();
        let behind = |max_steps| {
            plan_walking(
                &s,
                hourly(60),
                utc("2026-11-22T13:05:00Z"),
                Some(utc("2026-11-22T09:00:00Z")),
                24,
                max_steps,
            )
            .unwrap()
        };
        // Four fires to walk: 09:05 (asks for 08:00, delivered), then one per missed window.
        let p = behind(4);
        assert_eq!(p.backlog.len(), 3);
        assert!(!p.more);
        assert_eq!(p.gave_up_at, None);
        // Three are not enough: the third missed window's fire is where it stops.
        let p = behind(3);
        assert_eq!(
            backlog(&p),
            [
                (utc("2026-11-22T10:05:00Z"), utc("2026-11-22T09:00:00Z")),
                (utc("2026-11-22T11:05:00Z"), utc("2026-11-22T10:00:00Z")),
            ]
        );
        assert!(p.more);
        assert_eq!(p.gave_up_at, Some(utc("2026-11-22T12:05:00Z")));
    }

    #[test]
    fn the_checkpoint_moves_only_over_contiguous_windows() {
        let w = |a: &str, b: &str| Window {
            start: utc(a),
            end: utc(b),
        };
        let nine = Some(utc("2026-11-22T09:00:00Z"));
        assert_eq!(
            advance(nine, w("2026-11-22T09:00:00Z", "2026-11-22T10:00:00Z")),
            Some(utc("2026-11-22T10:00:00Z"))
        );
        // A gap stays a gap: 09:00-10:00 is still missing.
        assert_eq!(
            advance(nine, w("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z")),
            nine
        );
        // An old window again changes nothing.
        assert_eq!(
            advance(nine, w("2026-11-22T07:00:00Z", "2026-11-22T08:00:00Z")),
            nine
        );
        assert_eq!(
            advance(None, w("2026-11-22T07:00:00Z", "2026-11-22T08:00:00Z")),
            Some(utc("2026-11-22T08:00:00Z"))
        );
    }

    #[test]
    fn a_window_fetched_by_hand_gets_the_key_of_the_fire_that_reads_it() {
        let at_five = Schedule::cron("0 5 * * * *").unwrap();
        let window = hour("2026-11-01T10:00:00Z");
        assert_eq!(
            fire_reading(&at_five, hourly(180), window),
            Some(utc("2026-11-01T11:05:00Z"))
        );
        // On the hour, the fire at the window's end reads the hour before (it has not settled):
        // naming the window by its end would overwrite that hour's object.
        let on_the_hour = Schedule::cron("0 0 * * * *").unwrap();
        assert_eq!(
            fire_reading(&on_the_hour, hourly(60), window),
            Some(utc("2026-11-01T12:00:00Z"))
        );
        assert_eq!(
            fire_reading(&on_the_hour, hourly(0), window),
            Some(utc("2026-11-01T11:00:00Z"))
        );
        // A daily schedule reads only the last hour of the day; other hours have no fire.
        let daily = Schedule::cron("0 5 0 * * *").unwrap();
        assert_eq!(fire_reading(&daily, hourly(180), window), None);
        assert_eq!(
            fire_reading(&daily, hourly(180), hour("2026-11-01T23:00:00Z")),
            Some(utc("2026-11-02T00:05:00Z"))
        );
        // Nor has a window of a length the job does not use.
        let two_hours = Window {
            end: window.end + TimeDelta::hours(1),
            ..window
        };
        assert_eq!(fire_reading(&at_five, hourly(180), two_hours), None);
    }
}
