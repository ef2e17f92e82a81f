//! When to try a request again: the verdict on each failure (retry, correct the clock, or give
//! up), the backoff between tries, and the clock correction learnt from a server's `Date`.
//! Pure, except for the jitter's random draw and the learnt offset [`Clock`] keeps.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use super::error::S3Error;
use super::sign::http_date;
use crate::http::HttpError;

/// The largest clock correction taken from a server's `Date`. A clock that far off is a broken
/// host, not drift; and a `Date` beyond it (year 9999, say) is a broken or hostile server.
const MAX_CLOCK_CORRECTION: Duration = Duration::from_secs(24 * 3600);

/// How often and how patiently a failed request is tried again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// The first backoff; each later one doubles, up to `max`.
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            base: Duration::from_millis(500),
            max: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based): "full jitter", a uniform draw below
    /// the exponential bound, so that many exporters do not retry in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let bound = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        bound.mul_f64(fastrand::f64())
    }
}

/// What to do about a failed attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The server or the network may do better next time.
    Retry,
    /// Our clock is off: learn the server's and sign again (once).
    FixClock,
    /// Retrying cannot help (wrong key, missing bucket, no caps, bad request).
    Fail,
}

pub fn verdict(err: &S3Error, clock_fixed: bool) -> Verdict {
    match err {
        S3Error::Api { code, .. } if code.as_deref() == Some("RequestTimeTooSkewed") => {
            if clock_fixed {
                Verdict::Fail
            } else {
                Verdict::FixClock
            }
        }
        S3Error::Api { status, code, .. } => {
            let transient_code = matches!(
                code.as_deref(),
                Some("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout")
            );
            if *status >= 500 || *status == 429 || transient_code {
                Verdict::Retry
            } else {
                Verdict::Fail
            }
        }
        S3Error::Http {
            source: HttpError::Timeout(_) | HttpError::Transport(_),
            ..
        } => Verdict::Retry,
        S3Error::Http { .. }
        | S3Error::Request { .. }
        | S3Error::ClockRefused { .. }
        | S3Error::Local { .. } => Verdict::Fail,
    }
}

/// The local clock, corrected by the offset learnt from a `RequestTimeTooSkewed` answer.
#[derive(Debug, Default)]
pub struct Clock {
    /// Server time minus local time.
    offset_ms: AtomicI64,
}

impl Clock {
    /// Now, as the server's clock would say (bounded by [`MAX_CLOCK_CORRECTION`] when the
    /// offset was learnt).
    pub fn now(&self) -> SystemTime {
        shifted(SystemTime::now(), self.offset_ms.load(Ordering::Relaxed))
    }

    /// Signs with the server's time from now on, when its `Date` is plausible; the offset set.
    pub fn correct(&self, sent_at: SystemTime, server: SystemTime) -> Result<i64, String> {
        let offset = plausible_offset(sent_at, server)?;
        self.offset_ms.store(offset, Ordering::Relaxed);
        Ok(offset)
    }
}

/// Signed milliseconds from `a` to `b`, saturating.
fn millis_between(a: SystemTime, b: SystemTime) -> i64 {
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match b.duration_since(a) {
        Ok(d) => millis(d),
        Err(e) => -millis(e.duration()),
    }
}

/// The clock offset a server's `Date` implies, if it is one to sign with: within
/// [`MAX_CLOCK_CORRECTION`] of the local clock, and a date an HTTP header can carry.
pub fn plausible_offset(local: SystemTime, server: SystemTime) -> Result<i64, String> {
    let offset = millis_between(local, server);
    let server_text = http_date(server)?;
    if offset.unsigned_abs() > MAX_CLOCK_CORRECTION.as_millis() as u64 {
        return Err(format!(
            "its Date ({server_text}) is {}s from the local clock, more than the {}h this \
             exporter corrects for: fix NTP on this host or on the gateway",
            offset / 1000,
            MAX_CLOCK_CORRECTION.as_secs() / 3600
        ));
    }
    Ok(offset)
}

/// `t` moved by `offset_ms`; unmoved where the result would not fit a `SystemTime`.
pub fn shifted(t: SystemTime, offset_ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(offset_ms.unsigned_abs());
    let moved = if offset_ms >= 0 {
        t.checked_add(magnitude)
    } else {
        t.checked_sub(magnitude)
    };
    moved.unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<&str>) -> S3Error {
        S3Error::Api {
            op: "PUT object",
            url: "u".into(),
            status,
            code: code.map(str::to_string),
            hint: None,
        }
    }

    #[test]
    fn retry_only_what_retrying_can_fix() {
        use Verdict::*;
        let http = |source| S3Error::Http {
            op: "GET",
            url: "u".into(),
            source,
        };
        let cases = [
            (api(503, Some("SlowDown")), Retry),
            (api(500, None), Retry),
            (api(502, None), Retry),
            (api(429, None), Retry),
            (api(400, Some("RequestTimeout")), Retry),
            (http(HttpError::Timeout(Duration::from_secs(1))), Retry),
            (
                http(HttpError::Transport("connection refused".into())),
                Retry,
            ),
            (api(403, Some("AccessDenied")), Fail),
            (api(403, Some("InvalidAccessKeyId")), Fail),
            (api(403, Some("SignatureDoesNotMatch")), Fail),
            (api(404, Some("NoSuchBucket")), Fail),
            (api(400, Some("BadDigest")), Fail),
            (http(HttpError::TooLarge { limit: 1 }), Fail),
            // Local failures: a full temporary directory does not empty itself on a retry.
            (
                http(HttpError::Write(std::io::ErrorKind::StorageFull.into())),
                Fail,
            ),
            (
                S3Error::Local {
                    what: "object k".into(),
                    source: std::io::ErrorKind::StorageFull.into(),
                },
                Fail,
            ),
            (api(403, Some("RequestTimeTooSkewed")), FixClock),
        ];
        for (err, want) in cases {
            assert_eq!(verdict(&err, false), want, "{err}");
        }
        // The clock is corrected once; a second skew answer is final.
        assert_eq!(verdict(&api(403, Some("RequestTimeTooSkewed")), true), Fail);
    }

    #[test]
    fn a_redirect_is_not_retried() {
        assert_eq!(verdict(&api(307, None), false), Verdict::Fail);
        assert_eq!(verdict(&api(302, None), false), Verdict::Fail);
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_below_the_cap() {
        let p = RetryPolicy {
            retries: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 1..=10 {
            let bound = Duration::from_millis(100 * (1 << (attempt - 1))).min(p.max);
            for _ in 0..50 {
                assert!(p.delay(attempt) <= bound, "attempt {attempt}");
            }
        }
        // Jitter: draws differ.
        let draws: std::collections::HashSet<_> = (0..20).map(|_| p.delay(5)).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn clock_offsets_are_signed() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(millis_between(t, t + Duration::from_millis(1500)), 1500);
        assert_eq!(millis_between(t + Duration::from_secs(2), t), -2000);
    }

    #[test]
    fn only_a_plausible_server_date_becomes_a_clock_offset() {
        let local = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let hour = Duration::from_secs(3600);
        assert_eq!(plausible_offset(local, local + hour), Ok(3_600_000));
        assert_eq!(plausible_offset(local, local - 2 * hour), Ok(-7_200_000));
        assert_eq!(plausible_offset(local, local + 24 * hour), Ok(86_400_000));
        let err = plausible_offset(local, local + 25 * hour).unwrap_err();
        assert!(err.contains("90000s") && err.contains("NTP"), "{err}");
        assert!(plausible_offset(local, local - 25 * hour).is_err());
        // `Date: Fri, 31 Dec 9999 23:59:59 GMT` parses, and is refused.
        let y9999 = httpdate::parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT").unwrap();
        assert!(plausible_offset(local, y9999).is_err());
    }

    #[test]
    fn dates_that_http_cannot_carry_are_errors_not_panics() {
        let y10000 = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert!(http_date(y10000).unwrap_err().contains("10000-01-01"));
        let last = y10000 - Duration::from_secs(1);
        assert_eq!(http_date(last).unwrap(), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert!(http_date(SystemTime::UNIX_EPOCH - Duration::from_secs(1)).is_err());
        // Shifting by any offset is defined (`SystemTime + Duration` panics on overflow).
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        assert_eq!(
            shifted(t, -4_000),
            SystemTime::UNIX_EPOCH + Duration::from_secs(6)
        );
        assert!(shifted(t, i64::MAX) > t);
        assert!(shifted(t, i64::MIN) < t);
    }
}
