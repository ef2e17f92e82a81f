//! Log output on standard error: text for people and journald, or JSON for collectors.
//!
//! Text lines carry values from outside (user, bucket and host names, error answers). One of
//! them holding a newline would start a forged line; a carriage return or an escape sequence
//! would rewrite what a terminal shows. So every text line goes through [`escape_controls`]
//! on its way out, whatever put it together; JSON lines are escaped by the encoder.

use std::io::{self, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `CEPH_STATS_EXPORTER_LOG` sets the level (`info` by default).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CEPH_STATS_EXPORTER_LOG")
        // tokio-cron-scheduler logs its own start-up at info.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_cron_scheduler=warn"));
    // Colour codes only for a person at a terminal: journald stores a line holding escape codes
    // as a binary blob, which journalctl then hides.
    let ansi = io::IsTerminal::is_terminal(&io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_target(false);
    // A panic (a bug) is logged like any other error, in the same format and escaped, instead
    // of the default hook's raw text on stderr.
    std::panic::set_hook(Box::new(|info| tracing::error!("panic: {info}")));
    match format {
        LogFormat::Json => builder.json().with_writer(io::stderr).init(),
        LogFormat::Text => {
            let writer = move || EscapingWriter {
                inner: io::stderr(),
                keep_esc: ansi,
            };
            // journald stamps every line itself.
            if std::env::var_os("JOURNAL_STREAM").is_some() {
                builder.with_writer(writer).without_time().init()
            } else {
                builder.with_writer(writer).init()
            }
        }
    }
}

/// Writes each record it is given (the formatter hands over one whole line per write) with its
/// control characters escaped.
struct EscapingWriter<W> {
    inner: W,
    /// The formatter's own colour codes, when it writes them (a terminal).
    keep_esc: bool,
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_all(&escape_controls(buf, self.keep_esc))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `record` with every ASCII control character but a final newline and tabs written as an
/// escape (`\n`, `\r`, `\x1b`, ...), so that it stays one line and shows as sent.
pub fn escape_controls(record: &[u8], keep_esc: bool) -> std::borrow::Cow<'_, [u8]> {
    let body = record.strip_suffix(b"\n").unwrap_or(record);
    let bad = |b: u8| (b < 0x20 && b != b'\t' && !(keep_esc && b == 0x1b)) || b == 0x7f;
    if !body.iter().any(|&b| bad(b)) {
        return record.into();
    }
    let mut out = Vec::with_capacity(record.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b if bad(b) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    if body.len() < record.len() {
        out.push(b'\n');
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_stays_one_line_whatever_it_carries() {
        let forged = b"ERROR user \"x\" failed: evil\n2026-12-01T00:00:00Z  INFO stored\n";
        assert_eq!(
            &*escape_controls(forged, false),
            b"ERROR user \"x\" failed: evil\\n2026-12-01T00:00:00Z  INFO stored\n"
        );
        assert_eq!(
            &*escape_controls(b"a\rb\x1b[2J\x7f\tc\n", false),
            b"a\\rb\\x1b[2J\\x7f\tc\n"
        );
        // Colour codes survive when the formatter writes them; nothing else changes.
        assert_eq!(
            &*escape_controls(b"\x1b[31mERROR\x1b[0m x\ny\n", true),
            b"\x1b[31mERROR\x1b[0m x\\ny\n"
        );
        let plain = b"INFO stored key=\"pool.2026\"\n";
        assert!(matches!(
            escape_controls(plain, false),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(&*escape_controls(b"no newline\r", false), b"no newline\\r");
    }

    #[test]
    fn the_writer_escapes_each_record_it_is_handed() {
        let mut w = EscapingWriter {
            inner: Vec::new(),
            keep_esc: false,
        };
        w.write_all(b"one\ntwo\n").unwrap();
        w.write_all(b"three\n").unwrap();
        assert_eq!(w.inner, b"one\\ntwo\nthree\n");
    }
}
