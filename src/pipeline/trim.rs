//! The trimming step of a usage fire (see [`crate::trim`] for the rules and the pure plan):
//! each planned window, oldest first, is verified (its object is in the bucket, and a fresh read
//! of the window renders to the same bytes) before its hours are trimmed from RGW's usage log.

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};

use super::{deliver_object, render_one, JobSpec, Outcome};
use crate::catchup::Planned;
use crate::jobs::{Fire, JobError, Trimmer};
use crate::s3::S3Client;
use crate::snapshot::SnapshotData;
use crate::state::{JobState, StateDir};
use crate::trim::{self, Verdict};

use super::Context;

/// The bucket the objects are archived in, read back before a window is trimmed.
pub struct Archive {
    pub client: S3Client,
    pub bucket: String,
    /// In a dry run, the state directory, read (never written) to plan what would be trimmed.
    pub dry_run_state: Option<StateDir>,
}

/// The job's state as a dry run sees it, when trimming is on.
pub(super) fn dry_run_state(cx: &Context, job: &str) -> Option<JobState> {
    let dir = cx.archive.as_ref()?.dry_run_state.as_ref()?;
    match dir.load(job) {
        Ok(state) => Some(state),
        Err(e) => {
            tracing::warn!(job, "dry run: cannot say what would be trimmed: {e}");
            None
        }
    }
}

/// Considers the windows [`trim::plan`] gives for `now`, in order, from `state.trimmed_until`
/// (set by the caller), and moves `trimmed_until` over each window trimming is done with; it
/// stops at the first window to try again next fire. With `apply` false (a dry run) nothing is
/// trimmed, re-archived or remembered: it logs what it would do.
pub(super) async fn run(
    spec: &JobSpec,
    cx: &Context,
    state: &mut JobState,
    now: DateTime<Utc>,
    apply: bool,
    outcome: &mut Outcome,
) {
    let name = spec.job.name();
    let (Some((settings, trimmer)), Some(windowed), Some(archive), Some(from)) = (
        spec.job.trimmer(),
        spec.job.windows(),
        cx.archive.as_ref(),
        state.trimmed_until,
    ) else {
        return;
    };
    let planned = trim::plan(
        &spec.schedule,
        |t| windowed.window_at(t),
        now,
        settings,
        state.delivered_until,
        from,
    );
    let planned = match planned {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(job = name, "trimming: cannot plan the windows: {e}");
            return;
        }
    };
    for p in planned {
        let verdict = verify_and_trim(spec, cx, archive, trimmer, p, apply, outcome).await;
        match verdict.refusal() {
            None => outcome.trimmed += 1,
            Some(reason) => outcome.trim_refused.push(reason),
        }
        if !verdict.moves_on() {
            break;
        }
        if apply {
            state.trimmed_until = Some(p.window.end);
        }
    }
}

/// One window: the archived object, a fresh read rendered as it was, the comparison, the trim.
async fn verify_and_trim(
    spec: &JobSpec,
    cx: &Context,
    archive: &Archive,
    trimmer: &dyn Trimmer,
    p: Planned,
    apply: bool,
    outcome: &mut Outcome,
) -> Verdict {
    let name = spec.job.name();
    let key = spec.key.render(p.fire_time);
    let (start, end) = (p.window.start.to_rfc3339(), p.window.end.to_rfc3339());
    let archived = match archive.client.get_object(&archive.bucket, &key).await {
        Ok(bytes) => bytes,
        Err(e) if e.code() == Some("NoSuchKey") => {
            tracing::warn!(
                job = name,
                window_start = start,
                window_end = end,
                key,
                "trimming: the window's object is not in the bucket (deleted, or archived under \
                 another key): its usage log is NOT trimmed, and never will be by the exporter; \
                 archive it (--once --from/--to) and trim it by hand"
            );
            return Verdict::NotArchived;
        }
        Err(e) => {
            tracing::warn!(
                job = name,
                window_start = start,
                key,
                "trimming: reading the archived object back failed, trying again next fire: {e}"
            );
            return Verdict::Failed;
        }
    };
    let fire = Fire {
        time: p.fire_time,
        window: Some(p.window),
    };
    let fresh = match spec.job.collect(fire).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                job = name,
                window_start = start,
                "trimming: reading the window again failed, trying again next fire: {e}"
            );
            return Verdict::Failed;
        }
    };
    let empty = matches!(&fresh.data, SnapshotData::Usage(u) if u.users.is_empty());
    let object = match render_one(spec, fresh).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(job = name, window_start = start, "trimming: {e}");
            return Verdict::Failed;
        }
    };
    let same = object.body.len() == archived.len() as u64
        && object.body.md5() == <[u8; 16]>::from(Md5::digest(&archived));
    if !same && empty {
        tracing::warn!(
            job = name,
            window_start = start,
            window_end = end,
            key,
            "trimming: the usage log of this window is empty but its object is not: it was \
             trimmed already (by hand?); the archive is kept as it is"
        );
        return Verdict::AlreadyTrimmed;
    }
    if !same {
        tracing::warn!(
            job = name,
            window_start = start,
            window_end = end,
            key,
            archived_bytes = archived.len(),
            fresh_bytes = object.body.len(),
            "trimming REFUSED: a fresh read of this window differs from its archived object \
             (RGW flushed late, `settle` is too short, or the object was changed): it is \
             archived again and not trimmed; the next fire verifies it again"
        );
        if apply {
            if let Err(e) = deliver_object(object, &cx.delivery, outcome).await {
                outcome.errors.push(e);
            }
        }
        return Verdict::Differs;
    }
    if !apply {
        tracing::info!(
            job = name,
            window_start = start,
            window_end = end,
            key,
            "dry run: would trim this window's usage log (its object matches a fresh read)"
        );
        return Verdict::Trimmed;
    }
    match trimmer.trim(p.window).await {
        Ok(()) => {
            tracing::info!(
                job = name,
                window_start = start,
                window_end = end,
                key,
                "trimmed the usage log of an archived window"
            );
            Verdict::Trimmed
        }
        Err(JobError::Rgw(e)) if e.code() == Some("AccessDenied") => {
            tracing::error!(
                job = name,
                window_start = start,
                "trimming refused by RGW, nothing trimmed (archiving goes on): {e}"
            );
            Verdict::Denied
        }
        Err(e) => {
            tracing::warn!(
                job = name,
                window_start = start,
                "trimming failed, trying again next fire: {e}"
            );
            Verdict::Failed
        }
    }
}
