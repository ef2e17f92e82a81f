//! The daemon's loop: fire each job on its schedule until told to stop.
//!
//! `tokio-cron-scheduler` triggers the jobs. Around it, this module adds what the exporter's
//! promises need and that crate does not give: the *scheduled* fire time of each firing (it
//! polls and fires a little late), no two runs of one job at once (a late run is skipped and
//! logged), duplicate triggers ignored, missed fires counted, and a shutdown that lets runs in
//! flight finish within a bounded time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job as CronJob, JobScheduler, JobSchedulerError};

use crate::jobs::Fire;
use crate::pipeline::{self, JobSpec};
use crate::sink::Sink;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("scheduler: {0:?}")]
    Cron(JobSchedulerError),
    #[error("{0} still running {1:?} after the shutdown signal; exiting without waiting longer")]
    ShutdownTimeout(String, Duration),
}

/// The last fire time a job started, shared between its firings; held while a run is going.
type Guard = Arc<Mutex<Option<DateTime<Utc>>>>;

/// Runs until `shutdown` completes, then waits up to `grace` for runs in flight.
pub async fn run(
    specs: Vec<JobSpec>,
    sink: Arc<dyn Sink>,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), SchedulerError> {
    let mut sched = JobScheduler::new().await.map_err(SchedulerError::Cron)?;
    let mut guards = Vec::new();
    for spec in specs {
        let guard: Guard = Arc::new(Mutex::new(None));
        guards.push((spec.job.name(), guard.clone()));
        let sink = sink.clone();
        tracing::info!(
            job = spec.job.name(),
            schedule = spec.schedule.expr(),
            key = spec.key.as_str(),
            "scheduled"
        );
        let expr = spec.schedule.expr().to_string();
        let job = CronJob::new_async(expr.as_str(), move |_, _| {
            let (spec, sink, guard) = (spec.clone(), sink.clone(), guard.clone());
            Box::pin(async move { fire(&spec, sink.as_ref(), guard).await })
        })
        .map_err(SchedulerError::Cron)?;
        sched.add(job).await.map_err(SchedulerError::Cron)?;
    }
    sched.start().await.map_err(SchedulerError::Cron)?;
    tracing::info!(sink = %sink.describe(), "running");

    shutdown.await;
    tracing::info!("shutting down: no new runs; waiting up to {grace:?} for runs in flight");
    sched.shutdown().await.map_err(SchedulerError::Cron)?;
    let deadline = Instant::now() + grace;
    for (name, guard) in guards {
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, guard.lock()).await.is_err() {
            return Err(SchedulerError::ShutdownTimeout(name.to_string(), grace));
        }
    }
    Ok(())
}

/// One trigger of one job.
async fn fire(spec: &JobSpec, sink: &dyn Sink, guard: Guard) {
    let name = spec.job.name();
    let Some(fire_time) = spec.schedule.fire_time_at(Utc::now()) else {
        tracing::error!(job = name, "no scheduled fire time before now; skipping");
        return;
    };
    let Ok(mut last) = guard.try_lock_owned() else {
        tracing::warn!(job = name, %fire_time, "previous run still going: skipping this fire");
        return;
    };
    if *last == Some(fire_time) {
        return; // the trigger fired twice for one scheduled instant
    }
    if let Some(prev) = *last {
        let missed = missed_between(spec, prev, fire_time);
        if missed > 0 {
            tracing::warn!(job = name, missed, after = %prev, before = %fire_time, "missed fires");
        }
    }
    *last = Some(fire_time);
    let started = Instant::now();
    let result = pipeline::run(
        spec,
        Fire {
            time: fire_time,
            window: None,
        },
        sink,
    )
    .await;
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(key) => tracing::info!(job = name, %fire_time, key, ms, "stored"),
        Err(e) => tracing::error!(job = name, %fire_time, ms, "run failed: {e}"),
    }
}

/// How many scheduled instants lie strictly between two fires (bounded: it only logs).
fn missed_between(spec: &JobSpec, prev: DateTime<Utc>, now: DateTime<Utc>) -> u32 {
    let mut n = 0;
    let mut t = prev;
    while let Some(next) = spec.schedule.next_after(t) {
        if next >= now || n >= 10_000 {
            break;
        }
        n += 1;
        t = next;
    }
    n
}
