//! The command line: parse arguments, load the config, then run once or as a daemon.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use clap::{CommandFactory, Parser, Subcommand};

use ceph_stats_exporter::config::{Config, JobKind};
use ceph_stats_exporter::jobs::Fire;
use ceph_stats_exporter::listener::HttpConfig;
use ceph_stats_exporter::listener::{self, Listener, Observed};
use ceph_stats_exporter::logging::{self, LogFormat};
use ceph_stats_exporter::metrics::Metrics;
use ceph_stats_exporter::pipeline::{self, Context, JobSpec};
use ceph_stats_exporter::window::Window;
use ceph_stats_exporter::{app, scheduler};

/// Archive Ceph capacity and RGW usage snapshots as objects in S3.
///
/// Without a subcommand, runs the daemon: each enabled job fires on its schedule until SIGTERM
/// or SIGINT; SIGHUP reloads the configuration.
#[derive(Parser, Debug)]
#[command(name = "ceph-stats-exporter", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The configuration file (see config.example.toml).
    #[arg(
        long,
        short,
        global = true,
        env = "CEPH_STATS_EXPORTER_CONFIG",
        default_value = "/etc/ceph-stats-exporter/config.toml"
    )]
    config: PathBuf,
    /// Run each selected job once, now, then exit (non-zero if any failed).
    #[arg(long)]
    once: bool,
    /// Only this job (repeatable): pool_df, rgw_usage.
    #[arg(long = "job", value_name = "NAME")]
    jobs: Vec<String>,
    /// Print each object's key and body instead of uploading it.
    #[arg(long)]
    dry_run: bool,
    /// Start of an explicit usage window (RFC 3339, on a whole hour); needs --to and --once.
    #[arg(long, requires = "to", requires = "once")]
    from: Option<DateTime<Utc>>,
    /// End of an explicit usage window (RFC 3339, exclusive); it also names the object.
    #[arg(long, requires = "from", requires = "once")]
    to: Option<DateTime<Utc>>,
    /// Log line format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Verify the configuration against the real services, a line each: state directory,
    /// clocks, reachability, credentials, the bucket (a probe object is written and deleted),
    /// the Ceph source, the usage caps. Exits 0 when everything passed.
    Check,
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    Man,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match &cli.command {
        None => {}
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "ceph-stats-exporter",
                &mut std::io::stdout(),
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| format!("writing the man page: {e}"))?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Check) => return Ok(check(&cli.config).await),
    }
    let config = load_config(&cli.config)?;
    let explicit_window = match (cli.from, cli.to) {
        (Some(from), Some(to)) => {
            Some(Window::explicit(from, to).map_err(|e| format!("--from/--to: {e}"))?)
        }
        _ => None,
    };
    let mut wanted = cli.jobs.clone();
    if explicit_window.is_some() {
        // Only usage can be read for the past; without --job, every usage instance.
        let usage: Vec<String> = config
            .jobs
            .iter()
            .filter(|j| matches!(j.kind, JobKind::RgwUsage(_)))
            .map(|j| j.name.to_string())
            .collect();
        if let Some(other) = wanted
            .iter()
            .find(|w| config.job(w).is_some() && !usage.contains(w))
        {
            return Err(format!(
                "--from/--to only apply to rgw_usage jobs, and {other} is not one: capacity \
                 cannot be read for the past"
            ));
        }
        if wanted.is_empty() {
            wanted = usage;
        }
    }
    let assembly = assemble(&cli, &config, &wanted)?;

    if !cli.once {
        run_daemon(&cli, config, assembly, &wanted).await?;
        return Ok(ExitCode::SUCCESS);
    }

    let now = Utc::now()
        .duration_trunc(TimeDelta::seconds(1))
        .map_err(|e| e.to_string())?;
    if let Some(w) = explicit_window {
        if w.end > now {
            tracing::warn!(end = %w.end, "the window is not complete yet: its numbers can still grow");
        }
    }
    Ok(run_once(&assembly.specs, now, explicit_window, &assembly.context).await)
}

/// Loads the config, logging what it warns about.
fn load_config(path: &std::path::Path) -> Result<Config, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

/// `check`: a line per verification on stdout.
async fn check(path: &std::path::Path) -> ExitCode {
    // A secret that cannot be read is one failing line; the other checks still run.
    let (config, secret_errors) = match Config::load_in(path, &ceph_stats_exporter::config::Process)
    {
        Ok(loaded) => loaded,
        Err(e) => {
            println!("FAIL config: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ok   config {} parses", path.display());
    let mut findings: Vec<_> = secret_errors
        .iter()
        .map(|e| ceph_stats_exporter::check::Finding {
            ok: false,
            what: "a secret is readable".into(),
            detail: e.to_string(),
        })
        .collect();
    for w in &config.warnings {
        println!("warn {w}");
    }
    findings.extend(ceph_stats_exporter::check::run(&config).await);
    for f in &findings {
        if f.ok {
            println!("ok   {}", f.what);
        } else {
            println!("FAIL {}\n     {}", f.what, f.detail);
        }
    }
    let failed = findings.iter().filter(|f| !f.ok).count();
    if failed == 0 {
        println!("all {} checks passed", findings.len() + 1);
        ExitCode::SUCCESS
    } else {
        println!("{failed} of {} checks failed", findings.len() + 1);
        ExitCode::FAILURE
    }
}

/// The jobs, delivery and state of `config`, keeping only the `wanted` jobs (all if empty).
fn assemble(cli: &Cli, config: &Config, wanted: &[String]) -> Result<app::Assembly, String> {
    let mut assembly = app::assemble(config, cli.dry_run).map_err(|e| e.to_string())?;
    let specs = &mut assembly.specs;
    for w in wanted {
        if !specs.iter().any(|s| s.job.name() == w) {
            let enabled: Vec<_> = specs.iter().map(|s| s.job.name()).collect();
            return Err(format!(
                "--job {w}: no such enabled job (enabled: {})",
                enabled.join(", ")
            ));
        }
    }
    if !wanted.is_empty() {
        specs.retain(|s| wanted.iter().any(|w| w == s.job.name()));
    }
    if specs.is_empty() {
        return Err(format!("{}: no job is enabled", cli.config.display()));
    }
    Ok(assembly)
}

fn periods(specs: &[JobSpec]) -> Vec<(&str, std::time::Duration)> {
    specs
        .iter()
        .map(|s| (s.job.name(), s.schedule.period()))
        .collect()
}

/// The daemon: runs the scheduler until SIGTERM/SIGINT; on SIGHUP, stops it (letting runs in
/// flight finish), loads the config again and starts anew, or keeps the old config if the new
/// one is bad. The spool is on disk, so nothing waiting in it is lost across a reload.
async fn run_daemon(
    cli: &Cli,
    mut config: Config,
    assembly: app::Assembly,
    wanted: &[String],
) -> Result<(), String> {
    let mut signals = Signals::install()?;
    let app::Assembly {
        mut specs,
        context,
        retries,
    } = assembly;
    let mut cx = Arc::new(context);
    let metrics = Arc::new(Metrics::new(&periods(&specs), &retries));
    let mut listening = serve_http(config.http.as_ref(), &metrics, &cx).await?;
    loop {
        let mut received = Signal::Stop;
        let stopped = scheduler::run(
            specs.clone(),
            cx.clone(),
            metrics.clone(),
            config.shutdown_timeout,
            config.flush_interval,
            async { received = signals.next().await },
        )
        .await;
        match (received, stopped) {
            (Signal::Stop, result) => return result.map_err(|e| e.to_string()),
            (Signal::Reload, Err(e)) => tracing::warn!("reload: {e}"),
            (Signal::Reload, Ok(())) => {}
        }
        let reloaded = load_config(&cli.config)
            .map(|new| keep_start_only_settings(new, &config))
            .and_then(|new| assemble(cli, &new, wanted).map(|a| (new, a)));
        match reloaded {
            Ok((mut new, a)) => {
                metrics.set_jobs(&periods(&a.specs));
                let new_cx = Arc::new(a.context);
                if new.http != config.http {
                    if let Some(old) = listening.take() {
                        old.stop().await;
                    }
                    listening = match serve_http(new.http.as_ref(), &metrics, &new_cx).await {
                        Ok(started) => started,
                        Err(e) => {
                            tracing::error!("{e}; [http] stays as it was");
                            new.http = config.http.clone();
                            serve_http(new.http.as_ref(), &metrics, &new_cx)
                                .await
                                .unwrap_or_else(|e| {
                                    tracing::error!("{e}: no metrics or health until a reload");
                                    new.http = None;
                                    None
                                })
                        }
                    };
                }
                (config, specs, cx) = (new, a.specs, new_cx);
                tracing::info!("configuration reloaded");
            }
            Err(e) => tracing::error!("reload refused, the running configuration stays: {e}"),
        }
    }
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

async fn run_once(
    specs: &[JobSpec],
    now: DateTime<Utc>,
    explicit_window: Option<Window>,
    cx: &Context,
) -> ExitCode {
    // What earlier runs spooled goes first, to keep the order.
    match cx.delivery.flush().await {
        Ok(r) if r.stored > 0 || r.left > 0 => {
            tracing::info!(stored = r.stored, left = r.left, "spool from earlier runs")
        }
        Ok(_) => {}
        Err(e) => tracing::error!("spool: {e}"),
    }
    let mut failed = Vec::new();
    for spec in specs {
        let name = spec.job.name();
        let outcome = match explicit_window {
            Some(w) => {
                let fire = Fire {
                    time: w.end,
                    window: Some(w),
                };
                pipeline::run_explicit(spec, fire, cx).await
            }
            None => pipeline::run_fire(spec, now, cx, ()).await,
        };
        for key in &outcome.stored {
            tracing::info!(job = name, key, to = %cx.delivery.describe(), "stored");
        }
        for key in &outcome.spooled {
            tracing::warn!(
                job = name,
                key,
                "spooled, not yet in S3: the next run or the daemon uploads it"
            );
        }
        for e in &outcome.errors {
            tracing::error!(job = name, "failed: {e}");
        }
        if !outcome.ok() {
            failed.push(name);
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        tracing::error!(
            "{} of {} jobs failed: {}",
            failed.len(),
            specs.len(),
            failed.join(", ")
        );
        ExitCode::FAILURE
    }
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

#[derive(Clone, Copy)]
enum Signal {
    Stop,
    Reload,
}

/// SIGTERM and SIGINT stop the daemon; SIGHUP reloads its config.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, String> {
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
