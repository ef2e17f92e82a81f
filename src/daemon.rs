//! The daemon: the scheduler under a shutdown token, signals, and reloads.
//!
//! Every long task gets the token, the way mini-redis hands a `Shutdown` to each connection:
//! a fire stops between catch-up windows, the spool flusher between entries (never in the
//! middle of an upload, so a multipart upload is completed or aborted, never left with its
//! parts behind). SIGTERM and SIGINT cancel the token and the daemon ends once its runs have
//! finished (within `exporter.shutdown_timeout`). SIGHUP does the same to the running
//! scheduler, then [`Daemon::reload`] loads the config again and starts anew, or keeps the
//! running config if the new one is bad. The spool is on disk, so nothing waiting in it is lost
//! across a reload.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::app::{self, Assembly};
use crate::config::Config;
use crate::listener::{self, HttpConfig, Listener, Observed};
use crate::metrics::Metrics;
use crate::pipeline::{Context, JobSpec};
use crate::scheduler;

/// A running daemon's state between two reloads.
pub struct Daemon {
    config_path: PathBuf,
    /// `--job` names (all enabled jobs when empty).
    wanted: Vec<String>,
    dry_run: bool,
    config: Config,
    specs: Vec<JobSpec>,
    cx: Arc<Context>,
    metrics: Arc<Metrics>,
    listening: Option<Listener>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Stop,
    Reload,
}

/// SIGTERM and SIGINT stop the daemon; SIGHUP reloads its config.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installed at start, before anything else can be signalled.
    pub fn install() -> Result<Signals, String> {
        use tokio::signal::unix::{signal, SignalKind};
        let install = |kind| signal(kind).map_err(|e| format!("signal handler: {e}"));
        Ok(Signals {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
            hup: install(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => { tracing::info!("SIGTERM"); Signal::Stop }
            _ = self.int.recv() => { tracing::info!("SIGINT"); Signal::Stop }
            _ = self.hup.recv() => { tracing::info!("SIGHUP: reloading the configuration"); Signal::Reload }
        }
    }
}

impl Daemon {
    /// Starts the listener (if configured); the scheduler starts with [`Daemon::run`].
    pub async fn start(
        config_path: PathBuf,
        wanted: Vec<String>,
        dry_run: bool,
        config: Config,
        assembly: Assembly,
    ) -> Result<Daemon, String> {
        let Assembly {
            specs,
            context,
            retries,
        } = assembly;
        let cx = Arc::new(context);
        let metrics = Arc::new(Metrics::new(&periods(&specs), &retries));
        let listening = serve_http(config.http.as_ref(), &metrics, &cx).await?;
        Ok(Daemon {
            config_path,
            wanted,
            dry_run,
            config,
            specs,
            cx,
            metrics,
            listening,
        })
    }

    /// Where the listener is, if there is one.
    pub fn listening_on(&self) -> Option<std::net::SocketAddr> {
        self.listening.as_ref().map(|l| l.addr)
    }

    /// The job instances running now.
    pub fn jobs(&self) -> Vec<String> {
        self.specs
            .iter()
            .map(|s| s.job.name().to_string())
            .collect()
    }

    /// Runs the scheduler until `signals` says stop; each reload signal stops the running
    /// scheduler (runs in flight finish) and [reloads](Daemon::reload).
    pub async fn run(mut self, signals: &mut Signals) -> Result<(), String> {
        loop {
            let token = CancellationToken::new();
            let run = scheduler::run(
                self.specs.clone(),
                self.cx.clone(),
                self.metrics.clone(),
                self.config.shutdown_timeout,
                self.config.flush_interval,
                token.clone(),
            );
            tokio::pin!(run);
            let received = tokio::select! {
                signal = signals.next() => signal,
                // The scheduler only ends early on an error of its own.
                ended = &mut run => return ended.map_err(|e| e.to_string()),
            };
            token.cancel();
            let stopped = run.await;
            match (received, stopped) {
                (Signal::Stop, result) => return result.map_err(|e| e.to_string()),
                (Signal::Reload, Err(e)) => tracing::warn!("reload: {e}"),
                (Signal::Reload, Ok(())) => {}
            }
            if let Err(e) = self.reload().await {
                tracing::error!("reload refused, the running configuration stays: {e}");
            }
        }
    }

    /// Loads the config file again and, if it is good, makes it the running one (the scheduler
    /// must be stopped: [`Daemon::run`] calls this between two schedulers). A bad config
    /// changes nothing.
    pub async fn reload(&mut self) -> Result<(), String> {
        let new = Config::load(&self.config_path).map_err(|e| e.to_string())?;
        for w in &new.warnings {
            tracing::warn!("{w}");
        }
        let mut new = keep_start_only_settings(new, &self.config);
        let a = app::assemble(&new, self.dry_run, &self.wanted).map_err(|e| e.to_string())?;
        self.metrics.set_jobs(&periods(&a.specs));
        let new_cx = Arc::new(a.context);
        if new.http != self.config.http {
            if let Some(old) = self.listening.take() {
                old.stop().await;
            }
            self.listening = match serve_http(new.http.as_ref(), &self.metrics, &new_cx).await {
                Ok(started) => started,
                Err(e) => {
                    tracing::error!("{e}; [http] stays as it was");
                    new.http = self.config.http.clone();
                    serve_http(new.http.as_ref(), &self.metrics, &new_cx)
                        .await
                        .unwrap_or_else(|e| {
                            tracing::error!("{e}: no metrics or health until a reload");
                            new.http = None;
                            None
                        })
                }
            };
        }
        (self.config, self.specs, self.cx) = (new, a.specs, new_cx);
        tracing::info!(jobs = ?self.jobs(), "configuration reloaded");
        Ok(())
    }
}

fn periods(specs: &[JobSpec]) -> Vec<(&str, std::time::Duration)> {
    specs
        .iter()
        .map(|s| (s.job.name(), s.schedule.period()))
        .collect()
}

/// What a reload cannot change: a new state directory would leave the spool and checkpoints of
/// the old one behind, so the running one stays.
fn keep_start_only_settings(mut new: Config, running: &Config) -> Config {
    if new.state_dir != running.state_dir {
        tracing::warn!(
            running = %running.state_dir.display(),
            "exporter.state_dir changes take effect at the next start, not on reload"
        );
        new.state_dir = running.state_dir.clone();
    }
    new
}

/// Starts the listener `[http]` asks for, if any.
async fn serve_http(
    http: Option<&HttpConfig>,
    metrics: &Arc<Metrics>,
    cx: &Arc<Context>,
) -> Result<Option<Listener>, String> {
    let Some(http) = http else {
        return Ok(None);
    };
    let observed = Observed {
        metrics: metrics.clone(),
        unhealthy_after: http.unhealthy_after,
        refresh: spool_gauges(cx.clone(), metrics.clone()),
    };
    let started = listener::start(http.listen, observed)
        .await
        .map_err(|e| format!("http.listen {}: {e}", http.listen))?;
    let at = started.addr;
    tracing::info!("metrics on http://{at}/metrics, health on http://{at}/healthz");
    Ok(Some(started))
}

/// Refreshes the spool gauges from disk at scrape time.
fn spool_gauges(cx: Arc<Context>, metrics: Arc<Metrics>) -> Box<dyn Fn() + Send + Sync> {
    Box::new(move || {
        let Some(spool) = cx.delivery.spool() else {
            return;
        };
        match (spool.depth(), spool.oldest_age()) {
            (Ok(depth), Ok(age)) => metrics.set_spool(depth, age),
            (Err(e), _) | (_, Err(e)) => tracing::warn!("spool gauges: {e}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[s3]\nendpoint = \"http://127.0.0.1:9\"\naccess_key = \"AK\"\n\
                        secret_key = \"SK\"\n[jobs.pool_df]\nevery = \"1h\"\n";

    #[tokio::test]
    async fn a_reload_applies_a_good_config_and_keeps_the_running_one_on_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, BASE).unwrap();
        let config = Config::load(&path).unwrap();
        let assembly = app::assemble(&config, true, &[]).unwrap();
        let mut daemon = Daemon::start(path.clone(), vec![], true, config, assembly)
            .await
            .unwrap();
        assert_eq!(daemon.jobs(), ["pool_df"]);

        let more = format!("{BASE}[jobs.usage_x]\nkind = \"rgw_usage\"\nevery = \"1h\"\n");
        std::fs::write(&path, more).unwrap();
        daemon.reload().await.unwrap();
        assert_eq!(daemon.jobs(), ["pool_df", "usage_x"]);

        std::fs::write(&path, format!("{BASE}[jobs.usage_y]\nevery = \"1h\"\n")).unwrap();
        let err = daemon.reload().await.unwrap_err();
        assert!(
            err.contains("jobs.usage_y") && err.contains("kind"),
            "{err}"
        );
        assert_eq!(
            daemon.jobs(),
            ["pool_df", "usage_x"],
            "the running config stays"
        );
    }
}
