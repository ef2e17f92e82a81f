//! Is the archive complete for a period? What a billing run must not start without: every
//! usage window has an object, no window has two that disagree, every object reads and says
//! the same of itself as its key does, and capacity fires are missing no more than tolerated.
//! Pure: the caller lists and reads the archive, this decides what is wrong with it.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::usage::Conflict;
use crate::schedule::Schedule;
use crate::window::{Window, WindowError, WindowLength};

/// Periods longer than this many windows or fires are refused rather than walked.
pub const MAX_STEPS: usize = 10_000_000;

/// One thing wrong with the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A usage window of the period with no object.
    MissingWindow { job: String, window: Window },
    /// A window archived twice with different numbers.
    Conflict(Conflict),
    /// An object that could not be read as one of the job's snapshots.
    Unreadable { key: String, reason: String },
    /// An object whose key, metadata and body do not agree.
    Mismatch { key: String, reason: String },
    /// Capacity fires of the schedule with no object (`first` shows the earliest few).
    MissingFires {
        job: String,
        missing: u64,
        tolerance: u64,
        first: Vec<DateTime<Utc>>,
    },
}

impl Finding {
    /// Whether this finding makes the archive incomplete (tolerated gaps do not).
    pub fn fails(&self) -> bool {
        match self {
            Finding::MissingFires {
                missing, tolerance, ..
            } => missing > tolerance,
            _ => true,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = |w: &Window| format!("{} .. {}", w.start.to_rfc3339(), w.end.to_rfc3339());
        match self {
            Finding::MissingWindow { job, window } => {
                write!(f, "{job}: window {} has no object", span(window))
            }
            Finding::Conflict(c) => write!(
                f,
                "{}: window {} is archived twice with different numbers: {} (counted) and {}",
                c.job,
                span(&c.window),
                c.counted,
                c.other
            ),
            Finding::Unreadable { key, reason } => write!(f, "{key}: unreadable: {reason}"),
            Finding::Mismatch { key, reason } => write!(f, "{key}: {reason}"),
            Finding::MissingFires {
                job,
                missing,
                tolerance,
                first,
            } => {
                let shown: Vec<String> = first.iter().map(|t| t.to_rfc3339()).collect();
                write!(
                    f,
                    "{job}: {missing} capacity fire(s) have no object (tolerated: {tolerance}); \
                     first: {}",
                    shown.join(", ")
                )
            }
        }
    }
}

/// The windows of `length` lying inside `[from, to)`, oldest first.
pub fn expected_windows(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    length: WindowLength,
    tz: Tz,
) -> Result<Vec<Window>, WindowError> {
    let mut windows = Vec::new();
    let mut w = Window::last_complete(to, length, tz)?;
    while w.start >= from && windows.len() < MAX_STEPS {
        windows.push(w);
        w = Window::last_complete(w.start, length, tz)?;
    }
    windows.reverse();
    Ok(windows)
}

/// The expected windows of `job` that no object holds.
pub fn missing_windows(job: &str, expected: &[Window], present: &BTreeSet<Window>) -> Vec<Finding> {
    expected
        .iter()
        .filter(|w| !present.contains(w))
        .map(|w| Finding::MissingWindow {
            job: job.to_string(),
            window: *w,
        })
        .collect()
}

/// How many fires of `schedule` in `[from, to)` have no object, and the earliest few.
pub fn missing_fires(
    job: &str,
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    present: &HashSet<DateTime<Utc>>,
    tolerance: u64,
) -> Option<Finding> {
    const SHOWN: usize = 5;
    let (mut missing, mut first) = (0u64, Vec::new());
    let mut fire = schedule.next_after(from - chrono::TimeDelta::seconds(1));
    let mut steps = 0;
    while let Some(t) = fire.filter(|t| *t < to && steps < MAX_STEPS) {
        if !present.contains(&t) {
            missing += 1;
            if first.len() < SHOWN {
                first.push(t);
            }
        }
        fire = schedule.next_after(t);
        steps += 1;
    }
    (missing > 0).then(|| Finding::MissingFires {
        job: job.to_string(),
        missing,
        tolerance,
        first,
    })
}

/// What one object says of itself, from each place that says it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Claims<'a> {
    /// The fire time its key renders, when the template can be read back.
    pub key_fire: Option<DateTime<Utc>>,
    pub meta_fire: Option<DateTime<Utc>>,
    pub body_fire: Option<DateTime<Utc>>,
    pub meta_window: Option<Window>,
    pub body_window: Option<Window>,
    pub meta_job: Option<&'a str>,
    pub body_job: Option<&'a str>,
}

/// Whether the claims agree with each other and with `job`; the first disagreement otherwise.
pub fn disagreement(job: &str, c: &Claims<'_>) -> Option<String> {
    let fires = [
        ("key", c.key_fire),
        ("metadata", c.meta_fire),
        ("body", c.body_fire),
    ];
    let known: Vec<_> = fires
        .iter()
        .filter_map(|(from, t)| t.map(|t| (from, t)))
        .collect();
    if let Some(((a, ta), (b, tb))) = known
        .iter()
        .zip(known.iter().skip(1))
        .find(|((_, ta), (_, tb))| ta != tb)
    {
        return Some(format!(
            "its {a} says fire time {} but its {b} says {}",
            ta.to_rfc3339(),
            tb.to_rfc3339()
        ));
    }
    if let (Some(m), Some(b)) = (c.meta_window, c.body_window) {
        if m != b {
            return Some(format!(
                "its metadata says window {} .. {} but its body says {} .. {}",
                m.start.to_rfc3339(),
                m.end.to_rfc3339(),
                b.start.to_rfc3339(),
                b.end.to_rfc3339()
            ));
        }
    }
    for (from, named) in [("metadata", c.meta_job), ("body", c.body_job)] {
        if let Some(other) = named.filter(|n| *n != job) {
            return Some(format!("its {from} says job {other:?}, not {job:?}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{hour, utc};

    #[test]
    fn a_period_expects_every_whole_window_inside_it() {
        let w = expected_windows(
            utc("2026-11-01T22:00:00Z"),
            utc("2026-11-02T01:30:00Z"),
            WindowLength::Hours(1),
            Tz::UTC,
        )
        .unwrap();
        assert_eq!(
            w,
            [
                hour("2026-11-01T22:00:00Z"),
                hour("2026-11-01T23:00:00Z"),
                hour("2026-11-02T00:00:00Z")
            ]
        );
        // Day windows follow the zone's calendar: 25 hours when the clocks go back.
        let days = expected_windows(
            utc("2026-10-24T22:00:00Z"),
            utc("2026-10-26T23:00:00Z"),
            WindowLength::Day,
            "Europe/Berlin".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].end - days[0].start, chrono::TimeDelta::hours(25));
    }

    #[test]
    fn missing_windows_are_those_no_object_holds() {
        let expected = [hour("2026-11-01T00:00:00Z"), hour("2026-11-01T01:00:00Z")];
        let present = BTreeSet::from([hour("2026-11-01T01:00:00Z")]);
        let found = missing_windows("usage", &expected, &present);
        assert_eq!(
            found,
            [Finding::MissingWindow {
                job: "usage".into(),
                window: expected[0]
            }]
        );
        assert!(found[0].fails());
        assert!(found[0].to_string().contains("2026-11-01T00:00:00+00:00"));
    }

    #[test]
    fn capacity_gaps_fail_only_beyond_the_tolerance() {
        let every_hour = Schedule::cron("0 0 * * * *").unwrap();
        let (from, to) = (utc("2026-11-01T00:00:00Z"), utc("2026-11-01T04:00:00Z"));
        let present: HashSet<_> = [utc("2026-11-01T00:00:00Z"), utc("2026-11-01T03:00:00Z")]
            .into_iter()
            .collect();
        let found = missing_fires("pool_df", &every_hour, from, to, &present, 2).unwrap();
        let Finding::MissingFires { missing, first, .. } = &found else {
            panic!("{found:?}")
        };
        assert_eq!(*missing, 2);
        assert_eq!(
            first,
            &[utc("2026-11-01T01:00:00Z"), utc("2026-11-01T02:00:00Z")]
        );
        assert!(!found.fails(), "two missing, two tolerated");
        let strict = missing_fires("pool_df", &every_hour, from, to, &present, 1).unwrap();
        assert!(strict.fails());
        let all: HashSet<_> = (0..4).map(|h| from + chrono::TimeDelta::hours(h)).collect();
        assert_eq!(
            missing_fires("pool_df", &every_hour, from, to, &all, 0),
            None
        );
    }

    #[test]
    fn key_metadata_and_body_must_tell_the_same_story() {
        let t = utc("2026-11-01T01:05:00Z");
        let agreeing = Claims {
            key_fire: Some(t),
            meta_fire: Some(t),
            body_fire: None,
            meta_window: Some(hour("2026-11-01T00:00:00Z")),
            body_window: Some(hour("2026-11-01T00:00:00Z")),
            meta_job: Some("usage"),
            body_job: Some("usage"),
        };
        assert_eq!(disagreement("usage", &agreeing), None);
        let moved = Claims {
            body_fire: Some(utc("2026-11-01T02:05:00Z")),
            ..agreeing
        };
        let said = disagreement("usage", &moved).unwrap();
        assert!(
            said.contains("metadata says fire time 2026-11-01T01:05:00+00:00"),
            "{said}"
        );
        let other_window = Claims {
            body_window: Some(hour("2026-11-01T01:00:00Z")),
            ..agreeing
        };
        assert!(disagreement("usage", &other_window)
            .unwrap()
            .contains("window"));
        let other_job = Claims {
            body_job: Some("usage_b"),
            ..agreeing
        };
        assert!(disagreement("usage", &other_job)
            .unwrap()
            .contains("usage_b"));
    }
}
