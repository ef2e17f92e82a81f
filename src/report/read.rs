//! Reading a job's objects of a period back from the bucket: list under the key template's
//! fixed prefix (ListObjectsV2, page after page), keep the keys whose fire time can fall in the
//! period, fetch them with bounded concurrency (each GET with the client's retries), decode
//! each and check that key, metadata and body agree. Objects are handed over one at a time, in
//! key order: memory holds the period's keys and at most `concurrency` bodies.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::stream::{self, StreamExt};

use super::audit::{self, Claims};
use super::decode::{self, Archived, Data, Kind};
use crate::keys::KeyTemplate;
use crate::s3::{Fetched, S3Client, S3Error};
use crate::window::Window;

/// Keys per listing page (S3's most).
const PAGE: u32 = 1000;

/// A usage object is keyed by a fire after its window ends: at most its settle time, a
/// schedule period and a day window later. Keys this long after the period are read too.
pub const USAGE_KEY_LAG: TimeDelta = TimeDelta::days(2);

/// One job instance's part of the archive.
pub struct Source<'a> {
    pub job: &'a str,
    pub kind: Kind,
    pub key: &'a KeyTemplate,
    /// Usage objects keyed this much after their window are still read (settle included).
    pub lag: TimeDelta,
}

/// An object of the period, read and decoded.
pub struct Object {
    pub key: String,
    pub archived: Archived,
    /// Its fire time, from the key, the metadata or the body.
    pub fire_time: DateTime<Utc>,
    /// Usage: its window, from the body or (text bodies, empty records) the metadata.
    pub window: Option<Window>,
    /// Where its key, metadata and body disagree, if they do.
    pub disagreement: Option<String>,
}

/// What one key gave.
pub enum Item {
    Read(Box<Object>),
    /// A key of the period that could not be read or is not one of the job's snapshots.
    Skipped {
        key: String,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("listing bucket {bucket} under {prefix:?}: {source}")]
    List {
        bucket: String,
        prefix: String,
        source: S3Error,
    },
    #[error(
        "listing bucket {bucket} under {prefix:?}: {reason}; the listing is not one S3 would \
         give, so nothing read from it is trusted"
    )]
    BadListing {
        bucket: String,
        prefix: String,
        reason: String,
    },
}

/// Limits of one read.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// GETs in flight at once.
    pub concurrency: usize,
    /// Keys listed under the prefix before the listing is given up as endless.
    pub max_listed: u64,
}

/// Reads `source`'s objects whose fire time can fall in `[from, to)`, calling `each` on every
/// key in key order. Returns how many keys were read.
pub async fn read_period(
    client: &S3Client,
    bucket: &str,
    source: &Source<'_>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    limits: Limits,
    mut each: impl FnMut(Item),
) -> Result<u64, ReadError> {
    let until = match source.kind {
        Kind::Usage => to
            .checked_add_signed(source.lag)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
        Kind::Capacity => to,
    };
    let (readable, exact) = round_trips(source.key);
    let keys = list(client, bucket, source.key, limits.max_listed, |key| {
        may_hold(source.key, key, (from, until), readable)
    })
    .await?;
    let total = keys.len() as u64;
    let mut progress = Progress::new(source.job, total);
    let mut fetches = stream::iter(keys)
        .map(|key| async move {
            let got = client.get_object_with_metadata(bucket, &key).await;
            (key, got)
        })
        .buffered(limits.concurrency.max(1));
    while let Some((key, got)) = fetches.next().await {
        progress.step();
        let item = match got {
            Err(e) => Item::Skipped {
                key,
                reason: e.to_string(),
            },
            Ok(fetched) => match object(source, exact, key.clone(), &fetched) {
                Ok(o) if in_range(&o, source.kind, from, until) => Item::Read(Box::new(o)),
                Ok(_) => continue,
                Err(reason) => Item::Skipped { key, reason },
            },
        };
        each(item);
    }
    progress.done();
    Ok(total)
}

/// Whether `key` can be an object of `[from, until)`: keys name their fire time, or its hour
/// or day; a template without a date keeps every key, and the metadata decides after the GET.
fn may_hold(
    template: &KeyTemplate,
    key: &str,
    (from, until): (DateTime<Utc>, DateTime<Utc>),
    readable: bool,
) -> bool {
    match template.fire_span_of(key) {
        // A key of the far future (a year 262143, say) must not overflow the sum.
        Some((start, span)) => {
            start < until && start.checked_add_signed(span).is_none_or(|end| end > from)
        }
        None => !readable,
    }
}

fn in_range(o: &Object, kind: Kind, from: DateTime<Utc>, until: DateTime<Utc>) -> bool {
    match kind {
        Kind::Usage => true,
        Kind::Capacity => o.fire_time >= from && o.fire_time < until,
    }
}

/// Whether keys of `template` give back the span of their fire time, and the time exactly.
fn round_trips(template: &KeyTemplate) -> (bool, bool) {
    let t = DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default();
    let key = template.render(t);
    (
        template.fire_span_of(&key).is_some(),
        template.fire_time_of(&key) == Some(t),
    )
}

/// The keys under the template's fixed prefix that `keep` keeps, in key order.
async fn list(
    client: &S3Client,
    bucket: &str,
    template: &KeyTemplate,
    max_listed: u64,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<String>, ReadError> {
    let prefix = template.fixed_prefix();
    let bad = |reason: String| ReadError::BadListing {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        reason,
    };
    let (mut kept, mut listed, mut last) = (Vec::new(), 0u64, None::<String>);
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_objects(bucket, prefix, token.as_deref(), PAGE)
            .await
            .map_err(|source| ReadError::List {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                source,
            })?;
        if page.next.is_some() && page.next == token {
            return Err(bad(format!(
                "the continuation token {:?} came back again",
                token.unwrap_or_default()
            )));
        }
        for o in page.objects {
            // S3 lists in key order, each key once: anything else would loop or skip.
            if last.as_ref().is_some_and(|l| *l >= o.key) {
                return Err(bad(format!(
                    "key {:?} comes after {:?}: keys must come in order, each once",
                    o.key,
                    last.unwrap_or_default()
                )));
            }
            if !o.key.starts_with(prefix) {
                return Err(bad(format!("key {:?} is not under the prefix", o.key)));
            }
            listed += 1;
            if keep(&o.key) {
                kept.push(o.key.clone());
            }
            last = Some(o.key);
        }
        if listed > max_listed {
            return Err(bad(format!(
                "more than {max_listed} keys (--max-listed): the listing does not end"
            )));
        }
        match page.next {
            Some(next) if token.as_deref() == Some(next.as_str()) => {
                return Err(bad(format!(
                    "the continuation token {next:?} came back again"
                )))
            }
            Some(next) => token = Some(next),
            None => return Ok(kept),
        }
    }
}

/// Decodes a fetched object and gathers what it says of itself.
fn object(
    source: &Source<'_>,
    exact: bool,
    key: String,
    fetched: &Fetched,
) -> Result<Object, String> {
    let archived = decode::decode(&fetched.body, source.kind).map_err(|e| e.to_string())?;
    let meta_time = |name: &str| -> Result<Option<DateTime<Utc>>, String> {
        fetched
            .meta(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.to_utc())
                    .map_err(|e| format!("metadata {name} {v:?}: {e}"))
            })
            .transpose()
    };
    let meta_window = match (meta_time("window-start")?, meta_time("window-end")?) {
        (Some(start), Some(end)) => {
            Some(Window::explicit(start, end).map_err(|e| format!("metadata window: {e}"))?)
        }
        _ => None,
    };
    let body_window = match &archived.data {
        Data::Usage { window, .. } => *window,
        Data::Capacity(_) => None,
    };
    let claims = Claims {
        key_fire: exact.then(|| source.key.fire_time_of(&key)).flatten(),
        meta_fire: meta_time("fire-time")?,
        body_fire: archived.fire_time,
        meta_window,
        body_window,
        meta_job: fetched.meta("job"),
        body_job: archived.job.as_deref(),
    };
    let fire_time = claims
        .key_fire
        .or(claims.meta_fire)
        .or(claims.body_fire)
        .ok_or("neither its key, its metadata nor its body gives its fire time")?;
    let window = body_window.or(meta_window);
    if source.kind == Kind::Usage && window.is_none() {
        return Err("neither its body nor its metadata gives its window".into());
    }
    Ok(Object {
        disagreement: audit::disagreement(source.job, &claims),
        key,
        archived,
        fire_time,
        window,
    })
}

/// Objects read / total on standard error: a counter in place on a terminal, a line every ten
/// seconds otherwise.
struct Progress {
    job: String,
    total: u64,
    done: u64,
    terminal: bool,
    last: Instant,
}

impl Progress {
    fn new(job: &str, total: u64) -> Progress {
        Progress {
            job: job.to_string(),
            total,
            done: 0,
            terminal: std::io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }

    fn step(&mut self) {
        self.done += 1;
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if self.last.elapsed() >= every {
            self.last = Instant::now();
            self.show();
        }
    }

    fn show(&self) {
        if self.terminal {
            eprint!("\r{}: {}/{} objects read", self.job, self.done, self.total);
        } else {
            eprintln!("{}: {}/{} objects read", self.job, self.done, self.total);
        }
    }

    fn done(&self) {
        if self.terminal && self.total > 0 {
            self.show();
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::utc;

    #[test]
    fn keys_are_kept_when_their_fire_time_can_fall_in_the_period() {
        let period = (utc("2026-11-01T00:00:00Z"), utc("2026-11-02T00:00:00Z"));
        let exact = KeyTemplate::parse("usage.%Y-%m-%d/%H/%M/%S").unwrap();
        let keep = |t: &KeyTemplate, key: &str| may_hold(t, key, period, true);
        assert!(keep(&exact, "usage.2026-11-01/00/00/00"));
        assert!(keep(&exact, "usage.2026-11-01/23/59/59"));
        assert!(!keep(&exact, "usage.2026-11-02/00/00/00"));
        assert!(!keep(&exact, "usage.2026-10-31/23/59/59"));
        assert!(!keep(&exact, "usage.262143-12-31/23/59/59"), "no overflow");
        assert!(!keep(&exact, "usage.notes.txt"));
        // An hour key holds fires of its whole hour; a day key of its whole day.
        let daily = KeyTemplate::parse("usage/%Y-%m-%d.txt").unwrap();
        assert!(keep(&daily, "usage/2026-11-01.txt"));
        assert!(!keep(&daily, "usage/2026-10-31.txt"));
        assert!(!keep(&daily, "usage/262143-12-31.txt"));
        // A template without a date keeps everything: the metadata decides.
        let undated = KeyTemplate::parse("usage/%H%M%S").unwrap();
        assert!(may_hold(&undated, "usage/010203", period, false));
    }
}
