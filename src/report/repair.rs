//! `audit --repair`: missing usage windows are read again from RGW (which keeps its usage log
//! until it is trimmed) and archived through the pipeline's explicit-window run, under the key
//! the schedule would have given them, so that a repaired archive looks like one never broken.

use std::collections::BTreeMap;

use crate::app;
use crate::config::Config;
use crate::pipeline::{self, JobSpec};
use crate::window::Window;

/// What a repair did, window by window.
#[derive(Debug, Default)]
pub struct Repaired {
    /// (job, window, key stored).
    pub stored: Vec<(String, Window, String)>,
    /// (job, window, why not).
    pub failed: Vec<(String, Window, String)>,
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
    let outcome = pipeline::run_explicit(spec, pipeline::explicit_fire(spec, window), cx).await;
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
