//! The daemon's loop: fire each job on its schedule until told to stop.
//!
//! `tokio-cron-scheduler` triggers the jobs. Around it, this module adds what the exporter's
//! promises need and that crate does not give: the *scheduled* fire time of each firing (it
//! polls and fires a little late), no two collections of one job at once (a late fire is
//! skipped and logged; a capacity fire only waits for the previous one's collection, not its
//! upload), duplicate triggers ignored, missed fires counted, a panicking run counted as a
//! failure, and a shutdown that lets runs in flight finish within a bounded time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, RwLock};
use tokio_cron_scheduler::{Job as CronJob, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::pipeline::{self, Context, JobSpec};

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("scheduler: {0:?}")]
    Cron(JobSchedulerError),
    #[error("runs still going {0:?} after the shutdown signal; exiting without waiting longer")]
    ShutdownTimeout(Duration),
}

/// The last fire time a job started, shared between its firings; held while a run collects.
type Guard = Arc<Mutex<Option<DateTime<Utc>>>>;

/// Held (shared) by every run until it has delivered; shutdown takes it exclusively to wait
/// for them all.
type InFlight = Arc<RwLock<()>>;

/// Runs until `shutdown` is cancelled, then waits up to `grace` for runs in flight and for the
/// spool flusher to finish the entry it is uploading. The spool is drained in the background
/// every `flush_interval`.
pub async fn run(
    specs: Vec<JobSpec>,
    cx: Arc<Context>,
    metrics: Arc<Metrics>,
    grace: Duration,
    flush_interval: Duration,
    shutdown: CancellationToken,
) -> Result<(), SchedulerError> {
    let mut sched = JobScheduler::new().await.map_err(SchedulerError::Cron)?;
    let in_flight: InFlight = Arc::new(RwLock::new(()));
    for spec in specs {
        let guard: Guard = Arc::new(Mutex::new(None));
        let (cx, metrics, in_flight) = (cx.clone(), metrics.clone(), in_flight.clone());
        let shutdown = shutdown.clone();
        tracing::info!(
            job = spec.job.name(),
            schedule = spec.schedule.expr(),
            key = spec.key.as_str(),
            "scheduled"
        );
        let expr = spec.schedule.expr().to_string();
        let job = CronJob::new_async(expr.as_str(), move |_, _| {
            let (spec, cx, guard, metrics) =
                (spec.clone(), cx.clone(), guard.clone(), metrics.clone());
            let (in_flight, shutdown) = (in_flight.clone(), shutdown.clone());
            Box::pin(async move { fire(&spec, &cx, &metrics, guard, in_flight, shutdown).await })
        })
        .map_err(SchedulerError::Cron)?;
        sched.add(job).await.map_err(SchedulerError::Cron)?;
    }
    if let Some(timeout) = sd_notify::watchdog_enabled() {
        // Pinged by the scheduler itself, so a daemon whose scheduler hangs gets restarted.
        let every = ping_interval(timeout);
        let ping = CronJob::new_async(format!("*/{every} * * * * *").as_str(), |_, _| {
            Box::pin(async {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            })
        })
        .map_err(SchedulerError::Cron)?;
        sched.add(ping).await.map_err(SchedulerError::Cron)?;
        tracing::info!("systemd watchdog: {timeout:?}, pinged every {every}s");
    }
    sched.start().await.map_err(SchedulerError::Cron)?;
    tracing::info!(sink = %cx.delivery.describe(), "running");
    // No-op outside systemd (no $NOTIFY_SOCKET).
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let flusher = {
        let (cx, stop) = (cx.clone(), shutdown.clone());
        tokio::spawn(async move { cx.delivery.run_flusher(flush_interval, stop).await })
    };

    shutdown.cancelled().await;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!("shutting down: no new runs; waiting up to {grace:?} for runs in flight");
    sched.shutdown().await.map_err(SchedulerError::Cron)?;
    // The flusher stops after the entry it is uploading (a multipart upload is completed or
    // aborted, never cut); what is still spooled stays on disk for the next start.
    let finished = tokio::time::timeout(grace, async {
        let _ = flusher.await;
        in_flight.write().await
    })
    .await
    .is_ok();
    if finished {
        Ok(())
    } else {
        Err(SchedulerError::ShutdownTimeout(grace))
    }
}

/// One trigger of one job.
async fn fire(
    spec: &JobSpec,
    cx: &Arc<Context>,
    metrics: &Metrics,
    guard: Guard,
    in_flight: InFlight,
    shutdown: CancellationToken,
) {
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
    *last = Some(fire_time);
    let Ok(_running) = in_flight.try_read_owned() else {
        return; // shutting down
    };
    let started = Instant::now();
    let outcome = pipeline::run_fire_caught(spec, fire_time, cx, last, shutdown).await;
    let took = started.elapsed();
    metrics.record(name, &outcome, took, Utc::now());
    let ms = took.as_millis() as u64;
    for key in &outcome.stored {
        tracing::info!(job = name, %fire_time, key, ms, "stored");
    }
    for key in &outcome.spooled {
        tracing::warn!(job = name, %fire_time, key, "spooled, not yet in S3");
    }
    for e in &outcome.errors {
        tracing::error!(job = name, %fire_time, ms, "run failed: {e}");
    }
}

/// Seconds between watchdog pings: a divisor of 60 (so cron spaces them evenly) at most a
/// third of the watchdog timeout.
fn ping_interval(timeout: Duration) -> u64 {
    let third = timeout.as_secs() / 3;
    [30, 20, 15, 10, 6, 5, 4, 3, 2, 1]
        .into_iter()
        .find(|d| *d <= third)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_pings_come_well_within_the_timeout() {
        assert_eq!(ping_interval(Duration::from_secs(60)), 20);
        assert_eq!(ping_interval(Duration::from_secs(30)), 10);
        assert_eq!(ping_interval(Duration::from_secs(10)), 3);
        assert_eq!(ping_interval(Duration::from_millis(1500)), 1);
    }
}
