//! The read side: answers from the archive (`report`) and whether it is complete (`audit`).
//!
//! Both read a period of one or more job instances back from the bucket the exporter writes
//! to, and sit beside the pipeline, never in it:
//!
//! | file | its one job |
//! | --- | --- |
//! | [`read`] | list under the key template's prefix, fetch with bounded concurrency, hand over each object decoded and checked (I/O) |
//! | [`decode`] | an object's bytes in any format (text, json, records, gzip) to one value (pure) |
//! | [`usage`] | usage sums: filters, grouping, each window counted once (pure) |
//! | [`capacity`] | capacity per root: first, last, least, most, growth, fill date (pure) |
//! | [`audit`] | missing windows and fires, conflicts, disagreeing objects (pure) |
//! | [`render`] | rows as a table, CSV or JSON lines (pure) |
//! | [`repair`] | backfills missing usage windows through the pipeline's explicit-window run |

pub mod audit;
pub mod capacity;
pub mod decode;
pub mod read;
pub mod render;
pub mod repair;
pub mod usage;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{IsTerminal, Write};

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::{Config, JobConfig, JobKind};
use crate::s3::{S3Client, S3Error};
use crate::window::Window;
use audit::Finding;
use decode::{Data, Kind};
use read::{Item, Limits, Source};
use render::{Cell, Output, Table};
use usage::{Counted, Dim, Query, UsageSums};

/// Which part of the archive: instances and period.
#[derive(clap::Args, Debug, Clone)]
pub struct Scope {
    /// Only this job instance (repeatable); default: every usage instance for `report`, every
    /// instance for `audit`.
    #[arg(long = "job", value_name = "NAME")]
    pub jobs: Vec<String>,
    /// Start of the period (RFC 3339, on a whole hour).
    #[arg(long)]
    pub from: DateTime<Utc>,
    /// End of the period (RFC 3339, exclusive, on a whole hour).
    #[arg(long)]
    pub to: DateTime<Utc>,
    /// Objects fetched at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Keys listed under a job's prefix before the listing is given up as endless.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_listed: u64,
}

/// `report`: sums from the archive.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub scope: Scope,
    /// Only this user (usage).
    #[arg(long)]
    pub user: Option<String>,
    /// Only this bucket (usage; needs objects with a per-bucket breakdown).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Only this category (usage: put_obj, get_obj, list_bucket, ...).
    #[arg(long)]
    pub category: Option<String>,
    /// Group usage by these columns, in order (comma-separated or repeated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub by: Vec<Dim>,
    /// Only the N largest groups by bytes sent and received.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// How rows are written; default: table on a terminal, CSV otherwise.
    #[arg(long, value_enum)]
    pub output: Option<Output>,
}

/// `audit`: is the archive complete for the period?
#[derive(clap::Args, Debug, Clone)]
pub struct AuditArgs {
    #[command(flatten)]
    pub scope: Scope,
    /// Capacity fires that may be missing per instance before the audit fails.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub capacity_tolerance: u64,
    /// Backfill missing usage windows from RGW's usage log (which still has them unless it
    /// was trimmed), then audit again.
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("--job {name}: no such enabled job (enabled: {})", enabled.join(", "))]
    UnknownJob { name: String, enabled: Vec<String> },
    #[error("no {0} job is enabled")]
    NoJobs(&'static str),
    #[error(
        "--job selects both usage and capacity instances ({usage} and {capacity}): a report \
         sums one kind at a time"
    )]
    MixedKinds { usage: String, capacity: String },
    #[error("--from {from} must come before --to {to}, both on whole hours")]
    Period {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error("{job}: {reason}")]
    Windows { job: String, reason: String },
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Read(Box<read::ReadError>),
    #[error("writing the report: {0}")]
    Write(#[from] std::io::Error),
    #[error("repair: {0}")]
    Repair(String),
}

impl From<read::ReadError> for ReportError {
    fn from(e: read::ReadError) -> Self {
        ReportError::Read(Box::new(e))
    }
}

/// What a report read, besides its rows.
#[derive(Debug, Default)]
pub struct ReportSummary {
    pub objects: u64,
    pub counted: u64,
    pub duplicates: u64,
    /// What could not be counted, and why: (key, reason).
    pub skipped: Vec<(String, String)>,
    pub conflicts: Vec<usage::Conflict>,
    /// Usage windows of the period with no object, per job.
    pub missing_windows: u64,
}

impl ReportSummary {
    /// A report whose numbers can be relied on: nothing skipped, nothing in conflict.
    pub fn clean(&self) -> bool {
        self.skipped.is_empty() && self.conflicts.is_empty()
    }
}

/// The instances `scope` names (or `default` ones), checked to exist.
fn select<'c>(
    config: &'c Config,
    scope: &Scope,
    default: impl Fn(&JobConfig) -> bool,
) -> Result<Vec<&'c JobConfig>, ReportError> {
    if Window::explicit(scope.from, scope.to).is_err() {
        return Err(ReportError::Period {
            from: scope.from,
            to: scope.to,
        });
    }
    if let Some(name) = scope.jobs.iter().find(|n| config.job(n).is_none()) {
        return Err(ReportError::UnknownJob {
            name: name.clone(),
            enabled: config.jobs.iter().map(|j| j.name.to_string()).collect(),
        });
    }
    Ok(config
        .jobs
        .iter()
        .filter(|j| {
            if scope.jobs.is_empty() {
                default(j)
            } else {
                scope.jobs.iter().any(|n| **n == *j.name)
            }
        })
        .collect())
}

fn kind_of(job: &JobConfig) -> Kind {
    match job.kind {
        JobKind::PoolDf(_) => Kind::Capacity,
        JobKind::RgwUsage(_) => Kind::Usage,
    }
}

fn source(job: &JobConfig) -> Source<'_> {
    let lag = match &job.kind {
        JobKind::RgwUsage(s) => {
            let settle = TimeDelta::from_std(s.settle).unwrap_or(TimeDelta::MAX);
            read::USAGE_KEY_LAG
                .checked_add(&settle)
                .unwrap_or(TimeDelta::MAX)
        }
        JobKind::PoolDf(_) => TimeDelta::zero(),
    };
    Source {
        job: &job.name,
        kind: kind_of(job),
        key: &job.common.key,
        lag,
    }
}

/// Reads `job`'s objects of the scope's period, handing each to `each`; returns how many.
async fn read_job(
    client: &S3Client,
    config: &Config,
    job: &JobConfig,
    scope: &Scope,
    each: impl FnMut(Item),
) -> Result<u64, ReportError> {
    let limits = Limits {
        concurrency: usize::from(scope.concurrency),
        max_listed: scope.max_listed,
    };
    let period = (scope.from, scope.to);
    Ok(read::read_period(client, &config.bucket, &source(job), period, limits, each).await?)
}

/// `report`: reads the period and writes its rows to `out`.
pub async fn report(
    config: &Config,
    args: &ReportArgs,
    out: &mut impl Write,
) -> Result<ReportSummary, ReportError> {
    let jobs = select(config, &args.scope, |j| kind_of(j) == Kind::Usage)?;
    let usage: Vec<_> = jobs.iter().filter(|j| kind_of(j) == Kind::Usage).collect();
    let capacity: Vec<_> = jobs
        .iter()
        .filter(|j| kind_of(j) == Kind::Capacity)
        .collect();
    if let (Some(u), Some(c)) = (usage.first(), capacity.first()) {
        return Err(ReportError::MixedKinds {
            usage: u.name.to_string(),
            capacity: c.name.to_string(),
        });
    }
    if jobs.is_empty() {
        return Err(ReportError::NoJobs("usage"));
    }
    let output = args.output.unwrap_or(if std::io::stdout().is_terminal() {
        Output::Table
    } else {
        Output::Csv
    });
    let client = S3Client::new(&config.s3)?;
    let (table, summary) = if usage.is_empty() {
        capacity_report(config, &client, &jobs, &args.scope).await?
    } else {
        usage_report(config, &client, &jobs, args).await?
    };
    render::write(out, &table, output)?;
    Ok(summary)
}

async fn usage_report(
    config: &Config,
    client: &S3Client,
    jobs: &[&JobConfig],
    args: &ReportArgs,
) -> Result<(Table, ReportSummary), ReportError> {
    let scope = &args.scope;
    let query = Query {
        by: args.by.clone(),
        user: args.user.clone(),
        bucket: args.bucket.clone(),
        category: args.category.clone(),
        time_zone: config.time_zone,
    };
    let mut sums = UsageSums::default();
    let mut summary = ReportSummary::default();
    for job in jobs {
        summary.objects += read_job(client, config, job, scope, |item| {
            let Some(o) = readable(item, &mut summary.skipped) else {
                return;
            };
            match count_usage(&mut sums, &query, job, scope, &o) {
                Some(Ok(usage::Added::Counted)) => summary.counted += 1,
                Some(Ok(_)) | None => {}
                Some(Err(refused)) => summary.skipped.push((o.key, refused.to_string())),
            }
        })
        .await?;
        summary.missing_windows += missing_windows(job, &sums, scope)?.len() as u64;
    }
    summary.duplicates = sums.duplicates;
    summary.conflicts = sums.conflicts.clone();
    let mut header: Vec<&'static str> = args.by.iter().map(|d| d.name()).collect();
    header.extend(["ops", "successful_ops", "bytes_sent", "bytes_received"]);
    let rows = sums
        .top(args.top)
        .into_iter()
        .map(|(group, t)| {
            let mut row: Vec<Cell> = group.iter().map(|g| Cell::Text(g.clone())).collect();
            row.extend([
                Cell::Count(t.ops),
                t.successful_ops.map_or(Cell::Unknown, Cell::Count),
                Cell::Bytes(t.bytes_sent),
                Cell::Bytes(t.bytes_received),
            ]);
            row
        })
        .collect();
    Ok((Table { header, rows }, summary))
}

/// Adds a usage object of the period to `sums`; `None` for an object that is not usage or
/// whose window lies outside the period.
fn count_usage(
    sums: &mut UsageSums,
    query: &Query,
    job: &JobConfig,
    scope: &Scope,
    o: &read::Object,
) -> Option<Result<usage::Added, usage::Refused>> {
    let (Some(window), Data::Usage { detail, .. }) = (o.window, &o.archived.data) else {
        return None;
    };
    if !usage::in_period(window, scope.from, scope.to) {
        return None;
    }
    let counted = Counted {
        key: &o.key,
        job: &job.name,
        zone: job.labels.zone.as_deref(),
        window,
        detail,
    };
    Some(sums.add(query, &counted))
}

/// An object that can be used, or its key and why not noted in `skipped`.
fn readable(item: Item, skipped: &mut Vec<(String, String)>) -> Option<read::Object> {
    match item {
        Item::Skipped { key, reason } => {
            skipped.push((key, reason));
            None
        }
        Item::Read(o) => match &o.disagreement {
            Some(d) => {
                skipped.push((o.key.clone(), d.clone()));
                None
            }
            None => Some(*o),
        },
    }
}

/// The usage windows of the period `job` should have archived and has not.
fn missing_windows(
    job: &JobConfig,
    sums: &UsageSums,
    scope: &Scope,
) -> Result<Vec<Finding>, ReportError> {
    let JobKind::RgwUsage(s) = &job.kind else {
        return Ok(Vec::new());
    };
    let expected =
        audit::expected_windows(scope.from, scope.to, s.window, s.time_zone).map_err(|e| {
            ReportError::Windows {
                job: job.name.to_string(),
                reason: e.to_string(),
            }
        })?;
    let present: BTreeSet<Window> = sums
        .windows()
        .filter(|(j, _)| *j == &*job.name)
        .map(|(_, w)| w)
        .collect();
    Ok(audit::missing_windows(&job.name, &expected, &present))
}

async fn capacity_report(
    config: &Config,
    client: &S3Client,
    jobs: &[&JobConfig],
    scope: &Scope,
) -> Result<(Table, ReportSummary), ReportError> {
    let mut sums = capacity::CapacitySums::default();
    let mut summary = ReportSummary::default();
    for job in jobs {
        summary.objects += read_job(client, config, job, scope, |item| {
            let Some(o) = readable(item, &mut summary.skipped) else {
                return;
            };
            if let Data::Capacity(roots) = &o.archived.data {
                match sums.add(&job.name, o.fire_time, roots) {
                    Ok(()) => summary.counted += 1,
                    Err(e) => summary.skipped.push((o.key, e.to_string())),
                }
            }
        })
        .await?;
    }
    let header = vec![
        "job",
        "root",
        "first_at",
        "first_used",
        "last_at",
        "last_used",
        "min_used",
        "max_used",
        "growth_per_day",
        "full_at",
    ];
    let rows = sums
        .roots
        .iter()
        .map(|((job, root), h)| {
            vec![
                Cell::Text(job.clone()),
                Cell::Text(root.clone()),
                Cell::Time(h.first.at),
                Cell::Bytes(h.first.used),
                Cell::Time(h.last.at),
                Cell::Bytes(h.last.used),
                Cell::Bytes(h.min_used),
                Cell::Bytes(h.max_used),
                h.growth_per_day().map_or(Cell::Unknown, Cell::SignedBytes),
                h.full_at().map_or(Cell::Unknown, Cell::Time),
            ]
        })
        .collect();
    Ok((Table { header, rows }, summary))
}

/// What an audit found, per instance.
#[derive(Debug, Default)]
pub struct AuditReport {
    pub findings: Vec<Finding>,
    /// Objects read.
    pub objects: u64,
}

impl AuditReport {
    /// Complete: nothing failing was found.
    pub fn complete(&self) -> bool {
        !self.findings.iter().any(Finding::fails)
    }

    /// A line per finding (`FAIL`, or `warn` for what is tolerated), then the verdict. Keys
    /// and reasons come from the bucket: each finding stays one line, escaped as names are.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        for f in &self.findings {
            let tag = if f.fails() { "FAIL" } else { "warn" };
            writeln!(out, "{tag} {}", crate::watch::view::shown(&f.to_string()))?;
        }
        let failing = self.findings.iter().filter(|f| f.fails()).count();
        if failing == 0 {
            writeln!(out, "complete: {} objects read", self.objects)
        } else {
            writeln!(
                out,
                "incomplete: {failing} finding(s) in {} objects read",
                self.objects
            )
        }
    }
}

/// `audit`: everything wrong with the period's archive.
pub async fn audit(config: &Config, args: &AuditArgs) -> Result<AuditReport, ReportError> {
    let scope = &args.scope;
    let jobs = select(config, scope, |_| true)?;
    if jobs.is_empty() {
        return Err(ReportError::NoJobs("enabled"));
    }
    let client = S3Client::new(&config.s3)?;
    let mut report = AuditReport::default();
    for job in jobs {
        let mut sums = UsageSums::default();
        let mut fires = HashSet::new();
        let mut findings = Vec::new();
        report.objects += read_job(&client, config, job, scope, |item| match item {
            Item::Skipped { key, reason } => findings.push(Finding::Unreadable { key, reason }),
            Item::Read(o) => audit_object(job, scope, *o, &mut sums, &mut fires, &mut findings),
        })
        .await?;
        findings.extend(sums.conflicts.iter().cloned().map(Finding::Conflict));
        findings.extend(missing_windows(job, &sums, scope)?);
        if kind_of(job) == Kind::Capacity {
            findings.extend(audit::missing_fires(
                &job.name,
                &job.common.schedule,
                scope.from,
                scope.to,
                &fires,
                args.capacity_tolerance,
            ));
        }
        report.findings.extend(findings);
    }
    Ok(report)
}

fn audit_object(
    job: &JobConfig,
    scope: &Scope,
    o: read::Object,
    sums: &mut UsageSums,
    fires: &mut HashSet<DateTime<Utc>>,
    findings: &mut Vec<Finding>,
) {
    if let Some(reason) = o.disagreement {
        findings.push(Finding::Mismatch { key: o.key, reason });
        return;
    }
    if let Data::Capacity(_) = o.archived.data {
        fires.insert(o.fire_time);
        return;
    }
    // An audit groups by nothing: only an overflow refuses an object.
    if let Some(Err(e)) = count_usage(sums, &Query::default(), job, scope, &o) {
        findings.push(Finding::Unreadable {
            key: o.key,
            reason: e.to_string(),
        });
    }
}

/// Per job, the missing usage windows among `findings`.
pub fn missing_usage_windows(findings: &[Finding]) -> BTreeMap<String, Vec<Window>> {
    let mut missing: BTreeMap<String, Vec<Window>> = BTreeMap::new();
    for f in findings {
        if let Finding::MissingWindow { job, window } = f {
            missing.entry(job.clone()).or_default().push(*window);
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_from_the_bucket_cannot_forge_an_audit_line() {
        let report = AuditReport {
            findings: vec![Finding::Unreadable {
                key: "usage.x\ncomplete: 0 objects read".into(),
                reason: "not UTF-8".into(),
            }],
            objects: 1,
        };
        let mut out = Vec::new();
        report.write_to(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "FAIL usage.x\\ncomplete: 0 objects read: unreadable: not UTF-8\n\
             incomplete: 1 finding(s) in 1 objects read\n"
        );
    }
}
