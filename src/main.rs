//! The command line: parse arguments, load the config, then run once or as a daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use clap::{CommandFactory, Parser, Subcommand};

use ceph_stats_exporter::app;
use ceph_stats_exporter::check::{Finding, Level};
use ceph_stats_exporter::config::{Config, JobKind};
use ceph_stats_exporter::daemon::{Daemon, Signals};
use ceph_stats_exporter::logging::{self, LogFormat};
use ceph_stats_exporter::pipeline::{self, Context, JobSpec};
use ceph_stats_exporter::report;
use ceph_stats_exporter::window::Window;
use tokio_util::sync::CancellationToken;

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
    /// End of an explicit usage window (RFC 3339, exclusive). The object gets the key of the
    /// scheduled fire that reads this window, or, for a window the schedule never reads (another
    /// length), the key of --to.
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
    /// Live traffic per pool, gateway, user and bucket: rates, trends and recent history in a
    /// full-screen view (keys: Tab or 1-4 pane, s sort, r reverse, / filter, p pause, q quit),
    /// or one JSON line per series per interval.
    Watch(ceph_stats_exporter::watch::WatchArgs),
    /// Sums from the archive for a period: usage by user, bucket, category, hour, day, month,
    /// zone or job, or capacity per root (growth and fill date). Each window counts once.
    /// Exits 1 when objects had to be skipped (each is named on standard error).
    Report(report::ReportArgs),
    /// Is the archive complete for a period? Lists missing usage windows, windows archived
    /// twice with different numbers, objects that do not read or disagree with their key, and
    /// missing capacity fires. Exits 0 only when complete.
    Audit(report::AuditArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The full-screen view owns the terminal: log lines would tear it (errors show in its panes).
    if !matches!(&cli.command, Some(Command::Watch(w)) if w.full_screen()) {
        logging::init(cli.log_format);
    }
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
        Some(Command::Report(args)) => return report(&load_config(&cli.config)?, args).await,
        Some(Command::Audit(args)) => return audit(&load_config(&cli.config)?, args).await,
        Some(Command::Watch(args)) => {
            let config = load_config(&cli.config)?;
            ceph_stats_exporter::watch::run(&config, args)
                .await
                .map_err(|e| format!("watch: {e}"))?;
            return Ok(ExitCode::SUCCESS);
        }
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
    let assembly = app::assemble(&config, cli.dry_run, &wanted)
        .map_err(|e| format!("{}: {e}", cli.config.display()))?;

    if !cli.once {
        // Before anything else, so that no signal is missed.
        let mut signals = Signals::install()?;
        let daemon = Daemon::start(cli.config.clone(), wanted, cli.dry_run, config, assembly);
        daemon.await?.run(&mut signals).await?;
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
        .map(|e| Finding::fail("a secret is readable", e.to_string()))
        .collect();
    for w in &config.warnings {
        println!("warn {w}");
    }
    findings.extend(ceph_stats_exporter::check::run(&config).await);
    for f in &findings {
        match f.level {
            Level::Pass => println!("ok   {}", f.what),
            Level::Warn => println!("warn {}\n     {}", f.what, f.detail),
            Level::Fail => println!("FAIL {}\n     {}", f.what, f.detail),
        }
    }
    let count = |l| findings.iter().filter(|f| f.level == l).count();
    let (failed, warned) = (count(Level::Fail), count(Level::Warn));
    let warnings = match warned {
        0 => String::new(),
        1 => " (1 warning)".to_string(),
        n => format!(" ({n} warnings)"),
    };
    if failed == 0 {
        println!("all {} checks passed{warnings}", findings.len() + 1);
        ExitCode::SUCCESS
    } else {
        println!("{failed} of {} checks failed{warnings}", findings.len() + 1);
        ExitCode::FAILURE
    }
}

/// `report`: rows on stdout; what was skipped, and why, on stderr.
async fn report(config: &Config, args: &report::ReportArgs) -> Result<ExitCode, String> {
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let summary = report::report(config, args, &mut out)
        .await
        .map_err(|e| format!("report: {e}"))?;
    std::io::Write::flush(&mut out).map_err(|e| format!("report: writing: {e}"))?;
    for (key, reason) in &summary.skipped {
        tracing::warn!(key, "skipped: {reason}");
    }
    for c in &summary.conflicts {
        tracing::warn!(
            job = c.job,
            counted = c.counted,
            other = c.other,
            "window {} .. {} is archived twice with different numbers: the first is counted",
            c.window.start,
            c.window.end
        );
    }
    if summary.missing_windows > 0 {
        tracing::warn!(
            "{} window(s) of the period have no object: these sums are short (run audit)",
            summary.missing_windows
        );
    }
    tracing::info!(
        objects = summary.objects,
        counted = summary.counted,
        duplicates = summary.duplicates,
        skipped = summary.skipped.len(),
        "report read the archive"
    );
    Ok(if summary.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `audit` (and `--repair`): findings on stdout, exit 0 only when complete.
async fn audit(config: &Config, args: &report::AuditArgs) -> Result<ExitCode, String> {
    let mut found = report::audit(config, args)
        .await
        .map_err(|e| format!("audit: {e}"))?;
    let mut stdout = std::io::stdout();
    let print = |found: &report::AuditReport, out: &mut std::io::Stdout| {
        found
            .write_to(out)
            .map_err(|e| format!("audit: writing: {e}"))
    };
    print(&found, &mut stdout)?;
    let missing = report::missing_usage_windows(&found.findings);
    if args.repair && !missing.is_empty() {
        let repaired = report::repair::repair(config, &missing)
            .await
            .map_err(|e| format!("audit --repair: {e}"))?;
        for (job, w, key) in &repaired.stored {
            println!(
                "repaired {job}: window {} .. {} stored as {key}",
                w.start, w.end
            );
        }
        for (job, w, reason) in &repaired.failed {
            // The reason can quote an answer: one line, escaped.
            let reason = ceph_stats_exporter::watch::view::shown(reason);
            println!(
                "could not repair {job}: window {} .. {}: {reason}",
                w.start, w.end
            );
        }
        println!("auditing again");
        found = report::audit(config, args)
            .await
            .map_err(|e| format!("audit: {e}"))?;
        print(&found, &mut stdout)?;
    }
    Ok(if found.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
            Some(w) => pipeline::run_explicit(spec, pipeline::explicit_fire(spec, w), cx).await,
            None => pipeline::run_fire(spec, now, cx, (), &CancellationToken::new()).await,
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
