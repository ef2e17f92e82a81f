//! Helpers shared by the unit tests.

use chrono::{DateTime, Utc};

/// A captured answer from tests/fixtures/.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An RFC 3339 instant.
pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// The one-hour window starting at an RFC 3339 instant.
pub fn hour(start: &str) -> crate::window::Window {
    let start = utc(start);
    crate::window::Window {
        start,
        end: start + chrono::TimeDelta::hours(1),
    }
}
