//! `watch`: live traffic per pool, gateway, user and bucket, as rates with trends, in the
//! terminal (or as JSON lines for scripts).
//!
//! [`sources`] polls pool stats, the mgr's RGW counters and the usage log, each on its own task;
//! [`rates`] turns their counters into rates, trends and histories; [`view`] holds the four
//! panes; [`tui`] draws them. The parsers ([`pools`], [`prom`], [`gateways`], [`usage`]) are
//! pure.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use chrono::SecondsFormat;
use tokio::sync::mpsc;
use url::Url;

use crate::config::Config;

pub mod gateways;
pub mod pools;
pub mod prom;
pub mod rates;
pub mod sources;
pub mod tui;
pub mod usage;
pub mod view;

use sources::{Source, WatchError};
use view::{Model, Setup};

/// How often the mgr prometheus module refreshes what it serves (its `scrape_interval`).
const PROMETHEUS_REFRESH: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// The full-screen view (JSON lines when standard output is not a terminal).
    Tui,
    /// One JSON line per series per interval.
    Jsonl,
}

#[derive(Clone, Debug, clap::Args)]
pub struct WatchArgs {
    /// How often each source is read.
    #[arg(long, default_value = "5s", value_parser = at_least_a_second)]
    pub interval: Duration,
    #[arg(long, value_enum, default_value_t = Output::Tui)]
    pub output: Output,
    /// Stop after this many intervals.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// The mgr prometheus module's metrics, for the gateways' counters.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:9283/metrics"
    )]
    pub prometheus: Url,
    /// How often RGW writes its usage log (its rgw_usage_log_tick_interval): user and bucket
    /// figures lag by up to this much.
    #[arg(long, default_value = "30s", value_parser = at_least_a_second)]
    pub usage_lag: Duration,
}

fn at_least_a_second(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}

impl WatchArgs {
    /// Whether this run takes the terminal (and so must keep log lines off it).
    pub fn full_screen(&self) -> bool {
        self.output == Output::Tui && io::stdout().is_terminal()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Setup(#[from] WatchError),
    #[error("the terminal: {0}")]
    Terminal(io::Error),
    #[error("writing JSON lines: {0}")]
    Output(io::Error),
}

/// Runs `watch` until quit, a signal, or `--count` intervals.
pub async fn run(config: &Config, args: &WatchArgs) -> Result<(), RunError> {
    let sources = Source::all(
        config,
        args.prometheus.clone(),
        args.interval,
        args.usage_lag,
    )?;
    let [pools, gateways, usage] = sources.each_ref().map(Source::describe);
    let setup = Setup {
        usage_lag: args.usage_lag.as_secs_f64(),
        prometheus_refresh: PROMETHEUS_REFRESH.as_secs_f64(),
        notes: [pools, gateways, usage.clone(), usage],
    };
    let model = Model::new(setup, Instant::now());
    let (tx, rx) = mpsc::channel(8);
    let tasks: Vec<_> = sources
        .into_iter()
        .map(|s| sources::spawn(s, args.interval, args.count, tx.clone()))
        .collect();
    drop(tx);
    let result = if args.full_screen() {
        tui::run(model, rx, args.interval)
            .await
            .map_err(RunError::Terminal)
    } else {
        jsonl(model, rx, io::stdout().lock()).await
    };
    for t in tasks {
        t.abort();
    }
    result
}

/// Each answer's panes as JSON lines, as they come. A reader that goes away (`| head`) ends
/// the run quietly.
async fn jsonl(
    mut model: Model,
    mut updates: mpsc::Receiver<sources::Update>,
    mut out: impl Write,
) -> Result<(), RunError> {
    while let Some(update) = updates.recv().await {
        let time = update.time.to_rfc3339_opts(SecondsFormat::Millis, true);
        let written = model
            .apply(update)
            .iter()
            .try_for_each(|id| model.pane(*id).write_jsonl(&time, &mut out))
            .and_then(|()| out.flush());
        match written {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(RunError::Output(e)),
            Ok(()) => {}
        }
    }
    Ok(())
}
