//! `audit --repair`: missing usage windows are read again from RGW (which keeps its usage log
//! until it is trimmed) and archived through the pipeline's explicit-window run, under the key
//! the schedule would have given them, so that a repaired archive looks like one never broken.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::app;
use crate::config::Config;
use crate::jobs::{Fire, Windowed};
use crate::pipeline::{self, JobSpec};
use crate::schedule::Schedule;
use crate::window::Window;

/// Fires walked past a window's end looking for the one that reads it.
const MAX_STEPS: usize = 100_000;

/// What a repair did, window by window.
#[derive(Debug, Default)]
pub struct Repaired {
    /// (job, window, key stored).
    pub stored: Vec<(String, Window, String)>,
    /// (job, window, why not).
    pub failed: Vec<(String, Window, String)>,
}

/// The fire time whose scheduled run reads `window`: the first at or after its end for which
/// `window_at` gives it back. `None` when the schedule never asks for it (its key is then the
/// window's end, as for `--from/--to`).
pub fn fire_for(
    schedule: &Schedule,
    windows: &dyn Windowed,
    window: Window,
) -> Option<DateTime<Utc>> {
    let mut fire = schedule.next_after(window.end - chrono::TimeDelta::seconds(1));
    for _ in 0..MAX_STEPS {
        let t = fire?;
        match windows.window_at(t) {
            Ok(w) if w == window => return Some(t),
            Ok(w) if w.start > window.start => return None,
            _ => fire = schedule.next_after(t),
        }
    }
    None
}

/// Archives each of `missing` (per job) again.
pub async fn repair(
    config: &Config,
    missing: &BTreeMap<String, Vec<Window>>,
) -> Result<Repaired, app::AppError> {
    let mut repaired = Repaired::default();
    if missing.is_empty() {
        return Ok(repaired);
    }
    let jobs: Vec<String> = missing.keys().cloned().collect();
    let assembly = app::assemble(config, false, &jobs)?;
    for spec in &assembly.specs {
        let name = spec.job.name().to_string();
        for window in missing.get(&name).into_iter().flatten() {
            match repair_one(spec, *window, &assembly.context).await {
                Ok(key) => repaired.stored.push((name.clone(), *window, key)),
                Err(reason) => repaired.failed.push((name.clone(), *window, reason)),
            }
        }
    }
    Ok(repaired)
}

async fn repair_one(
    spec: &JobSpec,
    window: Window,
    cx: &pipeline::Context,
) -> Result<String, String> {
    let time = spec
        .job
        .windows()
        .and_then(|w| fire_for(&spec.schedule, w, window))
        .unwrap_or(window.end);
    let fire = Fire {
        time,
        window: Some(window),
    };
    let outcome = pipeline::run_explicit(spec, fire, cx).await;
    if let Some(e) = outcome.errors.first() {
        return Err(e.to_string());
    }
    if let Some(key) = outcome.spooled.first() {
        return Err(format!(
            "{key} is spooled, not in the bucket yet: the daemon or the next --once uploads it"
        ));
    }
    outcome
        .stored
        .into_iter()
        .next()
        .ok_or_else(|| "nothing was stored".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobError;
    use crate::testutil::utc;
    use crate::window::WindowLength;

    /// Hourly windows read 5 minutes past the hour, after 3 minutes of settling.
    struct Hourly;

    impl Windowed for Hourly {
        fn window_at(&self, fire: DateTime<Utc>) -> Result<Window, JobError> {
            let settled = fire - chrono::TimeDelta::minutes(3);
            Ok(Window::last_complete(
                settled,
                WindowLength::Hours(1),
                chrono_tz::UTC,
            )?)
        }
    }

    fn hour(start: &str) -> Window {
        let start = utc(start);
        Window {
            start,
            end: start + chrono::TimeDelta::hours(1),
        }
    }

    #[test]
    fn a_missing_window_gets_the_key_of_the_fire_that_reads_it() {
        let at_five = Schedule::cron("0 5 * * * *").unwrap();
        assert_eq!(
            fire_for(&at_five, &Hourly, hour("2026-11-01T10:00:00Z")),
            Some(utc("2026-11-01T11:05:00Z"))
        );
        // A fire on the hour itself reads the hour before (the settle time has not passed):
        // the window's own fire is the next one.
        let on_the_hour = Schedule::cron("0 0 * * * *").unwrap();
        assert_eq!(
            fire_for(&on_the_hour, &Hourly, hour("2026-11-01T10:00:00Z")),
            Some(utc("2026-11-01T12:00:00Z"))
        );
        // A daily schedule never reads hour windows other than the one before it.
        let daily = Schedule::cron("0 5 0 * * *").unwrap();
        assert_eq!(
            fire_for(&daily, &Hourly, hour("2026-11-01T10:00:00Z")),
            None
        );
        assert_eq!(
            fire_for(&daily, &Hourly, hour("2026-11-01T23:00:00Z")),
            Some(utc("2026-11-02T00:05:00Z"))
        );
    }
}
