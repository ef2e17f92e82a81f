//! One fire of one job: plan (catch-up of missed usage windows), collect, format, name,
//! deliver, and remember what was delivered. The scheduler and `--once` both call [`run_fire`];
//! nothing here knows when or why it was called.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::catchup;
use crate::delivery::{Delivered, Delivery, DeliveryError, Object};
use crate::format::{self, Compression, Format};
use crate::jobs::{Fire, Job, JobError};
use crate::keys::KeyTemplate;
use crate::payload::PayloadWriter;
use crate::schedule::Schedule;
use crate::snapshot::{Snapshot, SnapshotData};
use crate::state::{JobState, StateDir};
use crate::window::Window;
use tokio_util::sync::CancellationToken;

/// A configured job: what it collects and how its objects are named and formatted.
#[derive(Clone)]
pub struct JobSpec {
    pub job: Arc<dyn Job>,
    pub schedule: Schedule,
    pub key: KeyTemplate,
    pub format: Format,
    pub compression: Compression,
    /// At most this many missed windows are fetched per fire.
    pub catch_up_limit: usize,
}

mod trim;

pub use trim::Archive;

/// What a run needs besides the job.
pub struct Context {
    pub delivery: Delivery,
    /// Where job state is kept; `None` (dry runs) keeps none and catches nothing up.
    pub state: Option<StateDir>,
    /// The bucket read back before a usage window is trimmed; `None` trims nothing.
    pub archive: Option<Archive>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("collecting: {0}")]
    Collect(#[from] JobError),
    #[error(
        "rendering object {key} into a temporary file: {source} (is TMPDIR writable, with room?)"
    )]
    Render { key: String, source: std::io::Error },
    #[error("storing object {key}: {source}")]
    Deliver { key: String, source: DeliveryError },
    #[error("job state: {0}")]
    State(#[from] crate::state::StateError),
    #[error("the run panicked (a bug, please report it): {0}")]
    Panicked(String),
}

impl RunError {
    /// A short, stable name for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RunError::Collect(JobError::CephSource(_)) => "ceph_source",
            RunError::Collect(JobError::Rgw(_)) => "rgw",
            RunError::Collect(JobError::OsdDf { .. } | JobError::Usage { .. }) => "bad_answer",
            RunError::Collect(JobError::Window(_)) => "window",
            RunError::Collect(JobError::Task(_)) => "internal",
            RunError::Render { .. } => "render",
            RunError::Deliver { .. } => "lost",
            RunError::State(_) => "state",
            RunError::Panicked(_) => "panic",
        }
    }
}

/// What one fire did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Keys stored in the sink.
    pub stored: Vec<String>,
    /// Bytes of the objects stored.
    pub stored_bytes: u64,
    /// Keys kept in the spool, to be uploaded later.
    pub spooled: Vec<String>,
    pub errors: Vec<RunError>,
    /// Scheduled fires before this one that never ran (capacity cannot be taken late).
    pub missed: u32,
    /// Usage windows whose log was trimmed (see [`crate::trim`]).
    pub trimmed: u64,
    /// Windows trimming considered and did not trim, by reason.
    pub trim_refused: Vec<&'static str>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.spooled.is_empty()
    }

    /// Why this fire did not store everything, one reason per problem.
    pub fn failure_reasons(&self) -> Vec<&'static str> {
        let mut reasons: Vec<_> = self.errors.iter().map(RunError::reason).collect();
        if !self.spooled.is_empty() {
            reasons.push("spooled");
        }
        reasons
    }
}

/// Turns a snapshot into the object that stores it, rendered into a [`PayloadWriter`] (memory
/// for small objects, a temporary file for large ones). `zone` is the key's: text stamps show
/// the key's wall clock; metadata stays UTC. Only that temporary file can fail.
pub fn to_object(
    snapshot: &Snapshot,
    key: String,
    format: Format,
    compression: Compression,
    zone: Tz,
) -> std::io::Result<Object> {
    let mut metadata = vec![
        ("job".to_string(), snapshot.job.to_string()),
        ("fire-time".to_string(), snapshot.fire_time.to_rfc3339()),
        (
            "collected-at".to_string(),
            snapshot.collected_at.to_rfc3339(),
        ),
        (
            "exporter-version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ];
    metadata.extend(snapshot.labels.metadata());
    if let SnapshotData::Usage(u) = &snapshot.data {
        metadata.push(("window-start".into(), u.window.start.to_rfc3339()));
        metadata.push(("window-end".into(), u.window.end.to_rfc3339()));
    }
    let mut body = PayloadWriter::new();
    format::render_compressed(snapshot, format, compression, zone, &mut body)?;
    Ok(Object {
        key,
        body: body.finish()?,
        content_type: compression.content_type(format).to_string(),
        metadata,
    })
}

/// Collects one snapshot and renders it into the object that stores it.
async fn collect_one(spec: &JobSpec, fire: Fire) -> Result<Object, RunError> {
    let snapshot = spec.job.collect(fire).await?;
    render_one(spec, snapshot).await
}

/// Renders a snapshot into the object that stores it, named by its fire time.
async fn render_one(spec: &JobSpec, snapshot: Snapshot) -> Result<Object, RunError> {
    let key = spec.key.render(snapshot.fire_time);
    let (named, format, compression) = (key.clone(), spec.format, spec.compression);
    let zone = spec.key.zone();
    // Large reports render to a temporary file: keep that off the async threads.
    tokio::task::spawn_blocking(move || to_object(&snapshot, named, format, compression, zone))
        .await
        .map_err(std::io::Error::other)
        .and_then(|rendered| rendered)
        .map_err(|source| RunError::Render { key, source })
}

/// Collects and delivers one snapshot.
async fn deliver_one(
    spec: &JobSpec,
    fire: Fire,
    delivery: &Delivery,
    outcome: &mut Outcome,
) -> Result<(), RunError> {
    let object = collect_one(spec, fire).await?;
    deliver_object(object, delivery, outcome).await
}

async fn deliver_object(
    object: Object,
    delivery: &Delivery,
    outcome: &mut Outcome,
) -> Result<(), RunError> {
    let (key, size) = (object.key.clone(), object.body.len());
    match delivery.deliver(object).await {
        Ok(Delivered::Stored) => {
            outcome.stored.push(key);
            outcome.stored_bytes += size;
        }
        Ok(Delivered::Spooled(_)) => outcome.spooled.push(key),
        Err(source) => return Err(RunError::Deliver { key, source }),
    }
    Ok(())
}

/// The fire of an explicit window: named as the schedule names it (see
/// [`catchup::fire_reading`]), or by the window's end when the schedule never reads it.
pub fn explicit_fire(spec: &JobSpec, window: Window) -> Fire {
    let time = spec
        .job
        .windows()
        .and_then(|w| catchup::fire_reading(&spec.schedule, |t| w.window_at(t), window))
        .unwrap_or(window.end);
    Fire {
        time,
        window: Some(window),
    }
}

/// One explicit run (`--once --from/--to`): no catch-up, no state change.
pub async fn run_explicit(spec: &JobSpec, fire: Fire, cx: &Context) -> Outcome {
    let mut outcome = Outcome::default();
    if let Err(e) = deliver_one(spec, fire, &cx.delivery, &mut outcome).await {
        outcome.errors.push(e);
    }
    outcome
}

/// [`run_fire`] on a task of its own: a panic anywhere in the run (a bug) becomes an error of
/// this run, counted and logged like any other, instead of unwinding through the scheduler.
/// Objects a panicking upload held are spooled by [`Delivery`] itself.
pub async fn run_fire_caught(
    spec: &JobSpec,
    fire_time: DateTime<Utc>,
    cx: &Arc<Context>,
    collecting: impl Send + 'static,
    shutdown: CancellationToken,
) -> Outcome {
    let (spec, cx) = (spec.clone(), cx.clone());
    let run =
        tokio::spawn(async move { run_fire(&spec, fire_time, &cx, collecting, &shutdown).await });
    run.await.unwrap_or_else(|e| Outcome {
        errors: vec![RunError::Panicked(crate::panics::message(e))],
        ..Outcome::default()
    })
}

/// One scheduled fire: missed windows first (oldest first), then the fire's own snapshot.
///
/// `collecting` is held while the job collects; for a job that reads the present (capacity) it
/// is dropped before the object is delivered, so that a slow S3 delays the upload, not the
/// next fire's snapshot. Windowed jobs hold it to the end: their checkpoint follows delivery.
///
/// Once `shutdown` is cancelled no further missed window is fetched; the checkpoint keeps what
/// was delivered, and the next start goes on from there.
pub async fn run_fire(
    spec: &JobSpec,
    fire_time: DateTime<Utc>,
    cx: &Context,
    collecting: impl Send,
    shutdown: &CancellationToken,
) -> Outcome {
    let name = spec.job.name();
    let mut outcome = Outcome::default();
    // A state file that cannot be read is left alone (not overwritten) and the fire runs
    // without catch-up: refusing to run would lose this fire's data too.
    let (mut state, keep_state) = match cx.state.as_ref().map(|s| s.load(name)) {
        None => (JobState::default(), false),
        Some(Ok(st)) => (st, true),
        Some(Err(e)) => {
            outcome.errors.push(e.into());
            (JobState::default(), false)
        }
    };
    if let Some(last) = state.last_fire {
        let missed = count_missed(&spec.schedule, last, fire_time);
        if missed > 0 && spec.job.windows().is_none() {
            outcome.missed = missed;
            tracing::warn!(
                job = name,
                missed,
                after = %last,
                before = %fire_time,
                "scheduled snapshots that never ran (exporter stopped, or an earlier run still busy); capacity cannot be taken late"
            );
        }
    }

    match spec.job.windows() {
        None => {
            let fire = Fire {
                time: fire_time,
                window: None,
            };
            let collected = collect_one(spec, fire).await;
            // Nothing below depends on this fire's delivery: the next fire may collect now.
            if keep_state {
                save_last_fire(cx, name, &mut state, fire_time, &mut outcome);
            }
            drop(collecting);
            match collected {
                Ok(object) => {
                    if let Err(e) = deliver_object(object, &cx.delivery, &mut outcome).await {
                        outcome.errors.push(e);
                    }
                }
                Err(e) => outcome.errors.push(e),
            }
            return outcome;
        }
        Some(windowed) => {
            let planned = catchup::plan(
                &spec.schedule,
                |t| windowed.window_at(t),
                fire_time,
                state.delivered_until,
                spec.catch_up_limit,
            );
            match planned {
                Err(e) => outcome.errors.push(e.into()),
                Ok(plan) => {
                    if let Some(until) = state.delivered_until {
                        if until > plan.current.window.end {
                            tracing::error!(
                                job = name,
                                checkpoint = %until,
                                window_end = %plan.current.window.end,
                                "the checkpoint of delivered windows is in the future (the clock \
                                 went back, or the state file was edited): windows missed before \
                                 it are NOT caught up; fix the clock, or move the job's state \
                                 file away and backfill with --from/--to"
                            );
                        }
                    }
                    if !plan.backlog.is_empty() {
                        tracing::warn!(
                            job = name,
                            windows = plan.backlog.len(),
                            more = plan.more,
                            "catching up missed windows"
                        );
                    }
                    if let (Some(stopped_at), Some(checkpoint)) =
                        (plan.gave_up_at, state.delivered_until)
                    {
                        tracing::warn!(
                            job = name,
                            %checkpoint,
                            %stopped_at,
                            max_fires = catchup::MAX_STEPS,
                            "catch-up gave up walking the schedule short of the current window: the checkpoint is too far behind; if this repeats, backfill from it with --once --from/--to, then remove the job's .state.json"
                        );
                    }
                    let delivered_before = state.delivered_until;
                    let mut gap = false;
                    for p in plan.backlog.iter().chain([&plan.current]) {
                        if shutdown.is_cancelled() {
                            tracing::info!(job = name, "shutting down between catch-up windows");
                            break;
                        }
                        // After a failed missed window, later ones are still fetched, but the
                        // checkpoint stays before the gap so the next fire tries it again.
                        let fire = Fire {
                            time: p.fire_time,
                            window: Some(p.window),
                        };
                        match deliver_one(spec, fire, &cx.delivery, &mut outcome).await {
                            Ok(()) if !gap => {
                                state.delivered_until =
                                    catchup::advance(state.delivered_until, p.window)
                            }
                            Ok(()) => {}
                            Err(e) => {
                                gap = true;
                                outcome.errors.push(e);
                            }
                        }
                    }
                    if !shutdown.is_cancelled() {
                        let first = plan.backlog.first().unwrap_or(&plan.current).window;
                        let from = |st: &JobState, before| {
                            crate::trim::start(st.trimmed_until, before, first)
                        };
                        if keep_state {
                            state.trimmed_until = Some(from(&state, delivered_before));
                            trim::run(spec, cx, &mut state, fire_time, true, &mut outcome).await;
                        } else if let Some(mut seen) = trim::dry_run_state(cx, name) {
                            seen.trimmed_until = Some(from(&seen, seen.delivered_until));
                            trim::run(spec, cx, &mut seen, fire_time, false, &mut outcome).await;
                        }
                    }
                }
            }
        }
    }

    if keep_state {
        save_last_fire(cx, name, &mut state, fire_time, &mut outcome);
    }
    drop(collecting);
    outcome
}

fn save_last_fire(
    cx: &Context,
    name: &str,
    state: &mut JobState,
    fire_time: DateTime<Utc>,
    outcome: &mut Outcome,
) {
    state.last_fire = Some(state.last_fire.map_or(fire_time, |l| l.max(fire_time)));
    if let Some(dir) = &cx.state {
        if let Err(e) = dir.save(name, state) {
            outcome.errors.push(e.into());
        }
    }
}

/// Scheduled instants strictly between two fires (bounded: it only feeds a log line).
pub fn count_missed(schedule: &Schedule, last: DateTime<Utc>, now: DateTime<Utc>) -> u32 {
    let mut n = 0;
    let mut t = last;
    while let Some(next) = schedule.next_after(t) {
        if next >= now || n >= 100_000 {
            break;
        }
        n += 1;
        t = next;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::DryRunSink;
    use async_trait::async_trait;

    /// A job with a bug: it panics while collecting.
    struct Panicking;

    #[async_trait]
    impl Job for Panicking {
        fn name(&self) -> &'static str {
            "pool_df"
        }

        async fn collect(&self, _: Fire) -> Result<Snapshot, JobError> {
            panic!("index out of bounds in a parser")
        }
    }

    #[tokio::test]
    async fn a_panicking_run_is_a_failure_that_says_so() {
        let spec = JobSpec {
            job: Arc::new(Panicking),
            schedule: Schedule::every(std::time::Duration::from_secs(10)).unwrap(),
            key: KeyTemplate::parse("pool.%Y-%m-%d/%H/%M/%S").unwrap(),
            format: Format::Text,
            compression: Compression::None,
            catch_up_limit: 1,
        };
        let cx = Arc::new(Context {
            delivery: Delivery::new(Arc::new(DryRunSink), None),
            state: None,
            archive: None,
        });
        let t = crate::testutil::utc("2026-12-01T07:00:00Z");
        let outcome = run_fire_caught(&spec, t, &cx, (), CancellationToken::new()).await;
        assert!(!outcome.ok());
        assert_eq!(outcome.failure_reasons(), ["panic"]);
        let message = outcome.errors[0].to_string();
        assert!(
            message.contains("index out of bounds in a parser"),
            "{message}"
        );
    }
}
