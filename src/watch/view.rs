//! What `watch` shows, apart from how: four panes (pools, gateways, users, buckets), each an
//! engine of series with its columns and its source's status; a pane's rows filtered, sorted
//! and cut to a page; a row as a JSON line; names made safe for a terminal. Pure.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::hash::Hash;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::gateways::Gateway;
use super::rates::{Engine, Params, Reading, Series, Trend};
use super::sources::{Data, SourceId, Update};
use super::usage::Bucket;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaneId {
    Pools,
    Gateways,
    Users,
    Buckets,
}

impl PaneId {
    pub const ALL: [PaneId; 4] = [
        PaneId::Pools,
        PaneId::Gateways,
        PaneId::Users,
        PaneId::Buckets,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn title(self) -> &'static str {
        match self {
            PaneId::Pools => "Pools",
            PaneId::Gateways => "Gateways",
            PaneId::Users => "Users",
            PaneId::Buckets => "Buckets",
        }
    }

    /// The pane's name in JSON lines.
    pub fn json(self) -> &'static str {
        match self {
            PaneId::Pools => "pools",
            PaneId::Gateways => "gateways",
            PaneId::Users => "users",
            PaneId::Buckets => "buckets",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Count,
}

/// A rate column.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub title: &'static str,
    /// Its key in JSON lines.
    pub json: &'static str,
    pub unit: Unit,
}

const fn col(title: &'static str, json: &'static str, unit: Unit) -> Column {
    Column { title, json, unit }
}

/// What a pane knows of its source.
#[derive(Debug, Default)]
pub struct Status {
    /// What the pane shows, from where, and how late.
    pub note: String,
    /// When the last answer came.
    pub updated: Option<Instant>,
    /// Why the last poll failed, when it did.
    pub error: Option<String>,
}

/// A series' name: one part, or two (owner and bucket; gateway and instance), each a field of
/// its JSON line.
pub trait Name: Hash + Eq + Clone {
    fn parts(&self) -> (&str, Option<&str>);

    /// As the filter sees it: the parts joined by `/`.
    fn joined(&self) -> Cow<'_, str> {
        match self.parts() {
            (one, None) => Cow::Borrowed(one),
            (a, Some(b)) => Cow::Owned(format!("{a}/{b}")),
        }
    }
}

impl Name for Box<str> {
    fn parts(&self) -> (&str, Option<&str>) {
        (self, None)
    }
}

impl Name for Arc<str> {
    fn parts(&self) -> (&str, Option<&str>) {
        (self, None)
    }
}

impl<A: AsRef<str> + Hash + Eq + Clone, B: AsRef<str> + Hash + Eq + Clone> Name for (A, B) {
    fn parts(&self) -> (&str, Option<&str>) {
        (self.0.as_ref(), Some(self.1.as_ref()))
    }
}

/// How rows are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortBy {
    /// By the smoothed main rate, highest first.
    #[default]
    Busiest,
    /// By a rate column, highest first.
    Column(usize),
    Name,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sort {
    pub by: SortBy,
    pub reverse: bool,
}

impl Sort {
    /// The next order `s` gives: busiest, each column, name, busiest again.
    pub fn next(self, columns: usize) -> Sort {
        let by = match self.by {
            SortBy::Busiest => SortBy::Column(0),
            SortBy::Column(i) if i + 1 < columns => SortBy::Column(i + 1),
            SortBy::Column(_) => SortBy::Name,
            SortBy::Name => SortBy::Busiest,
        };
        Sort { by, ..self }
    }
}

/// A row as shown.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Safe to print: see [`shown`].
    pub name: String,
    pub rates: Vec<f64>,
    pub trend: Trend,
    pub history: Vec<f64>,
    /// Missing from the source's last answer.
    pub missing: bool,
}

/// A page of a pane's rows.
#[derive(Debug, Default)]
pub struct Page {
    pub rows: Vec<Row>,
    /// Rows that pass the filter, and all rows.
    pub matching: usize,
    pub total: usize,
}

/// A pane, whatever its series' names and counters.
pub trait PaneView {
    fn id(&self) -> PaneId;
    fn columns(&self) -> &[Column];
    fn status(&self) -> &Status;
    /// Answers applied so far (counters have rates from the second on).
    fn polls(&self) -> u64;
    /// Rows whose name contains `filter` (ignoring case), in `sort` order, `limit` from `offset`.
    fn page(&self, filter: &str, sort: Sort, offset: usize, limit: usize) -> Page;
    /// A JSON line per series (or one with the error of a failed poll), sorted by name.
    fn write_jsonl(&self, time: &str, out: &mut dyn Write) -> io::Result<()>;
}

pub struct Pane<K, const N: usize> {
    id: PaneId,
    /// The JSON keys of the name's parts.
    fields: [&'static str; 2],
    columns: [Column; N],
    pub engine: Engine<K, N>,
    pub status: Status,
}

impl<K: Name, const N: usize> Pane<K, N> {
    fn new(
        id: PaneId,
        fields: [&'static str; 2],
        columns: [Column; N],
        engine: Engine<K, N>,
        note: String,
    ) -> Self {
        Pane {
            id,
            fields,
            columns,
            engine,
            status: Status {
                note,
                ..Status::default()
            },
        }
    }

    fn apply(
        &mut self,
        at: f64,
        now: Instant,
        readings: impl IntoIterator<Item = (K, Reading<N>)>,
    ) {
        self.engine.update(at, readings);
        self.status.updated = Some(now);
        self.status.error = None;
    }

    fn row(key: &K, s: &Series<N>) -> Row {
        Row {
            name: shown(&key.joined()).into_owned(),
            rates: s.rates().to_vec(),
            trend: s.trend(),
            history: s.history().iter().collect(),
            missing: s.missing(),
        }
    }
}

fn by_name<K: Name>(a: &K, b: &K) -> Ordering {
    a.parts().cmp(&b.parts())
}

/// `filter` is lower case.
fn matches<K: Name>(key: &K, filter: &str) -> bool {
    filter.is_empty() || key.joined().to_lowercase().contains(filter)
}

impl<K: Name, const N: usize> PaneView for Pane<K, N> {
    fn id(&self) -> PaneId {
        self.id
    }

    fn columns(&self) -> &[Column] {
        &self.columns
    }

    fn status(&self) -> &Status {
        &self.status
    }

    fn polls(&self) -> u64 {
        self.engine.polls()
    }

    fn page(&self, filter: &str, sort: Sort, offset: usize, limit: usize) -> Page {
        let filter = filter.to_lowercase();
        let mut rows: Vec<(&K, &Series<N>)> = self
            .engine
            .iter()
            .filter(|(k, _)| matches(*k, &filter))
            .collect();
        let matching = rows.len();
        let desc = |a: f64, b: f64| b.total_cmp(&a);
        rows.sort_by(|(ka, a), (kb, b)| {
            let order = match sort.by {
                SortBy::Busiest => desc(a.smooth(), b.smooth()),
                SortBy::Column(i) => desc(
                    a.rates().get(i).copied().unwrap_or(0.0),
                    b.rates().get(i).copied().unwrap_or(0.0),
                ),
                SortBy::Name => Ordering::Equal,
            };
            let order = order.then_with(|| by_name(*ka, *kb));
            if sort.reverse {
                order.reverse()
            } else {
                order
            }
        });
        Page {
            rows: rows
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|(k, s)| Self::row(k, s))
                .collect(),
            matching,
            total: self.engine.len(),
        }
    }

    fn write_jsonl(&self, time: &str, out: &mut dyn Write) -> io::Result<()> {
        let line = |fields: Map<String, Value>, out: &mut dyn Write| {
            serde_json::to_writer(&mut *out, &fields)?;
            out.write_all(b"\n")
        };
        let mut head = Map::new();
        head.insert("time".into(), time.into());
        head.insert("pane".into(), self.id.json().into());
        if let Some(e) = &self.status.error {
            let mut fields = head;
            fields.insert("error".into(), e.as_str().into());
            return line(fields, out);
        }
        let mut series: Vec<_> = self.engine.iter().collect();
        series.sort_by(|(a, _), (b, _)| by_name(*a, *b));
        for (key, s) in series {
            let mut fields = head.clone();
            let (first, second) = key.parts();
            fields.insert(self.fields[0].into(), first.into());
            if let Some(second) = second {
                fields.insert(self.fields[1].into(), second.into());
            }
            for (c, r) in self.columns.iter().zip(s.rates()) {
                fields.insert(c.json.into(), Value::from(*r));
            }
            fields.insert("trend".into(), trend_word(s.trend()).into());
            fields.insert("missing".into(), s.missing().into());
            fields.insert("reset".into(), s.reset().into());
            line(fields, out)?;
        }
        Ok(())
    }
}

pub fn trend_word(t: Trend) -> &'static str {
    match t {
        Trend::Rising => "rising",
        Trend::Falling => "falling",
        Trend::Steady => "steady",
        Trend::Idle => "idle",
    }
}

/// The main rate of a pool (client bytes read and written), a gateway (bytes got and put), a
/// user or bucket (bytes sent and received).
fn pool_score(r: &[f64; 5]) -> f64 {
    r[0] + r[1]
}

fn gateway_score(r: &[f64; 4]) -> f64 {
    r[2] + r[3]
}

fn usage_score(r: &[f64; 3]) -> f64 {
    r[1] + r[2]
}

/// How long each source may go without a visible change while traffic flows, and what the
/// panes say about it.
pub struct Setup {
    /// RGW's usage log write interval.
    pub usage_lag: f64,
    /// The mgr prometheus module's refresh.
    pub prometheus_refresh: f64,
    pub notes: [String; 4],
}

/// Every pane.
pub struct Model {
    pub pools: Pane<Box<str>, 5>,
    pub gateways: Pane<Gateway, 4>,
    pub users: Pane<Arc<str>, 3>,
    pub buckets: Pane<Bucket, 3>,
    started: Instant,
}

impl Model {
    pub fn new(setup: Setup, started: Instant) -> Model {
        use Unit::{Bytes, Count};
        let [pools, gateways, users, buckets] = setup.notes;
        // A missing series is shown for three polls.
        let params = |refresh, born_at_zero| Params {
            refresh,
            born_at_zero,
            linger: 3,
        };
        let usage = params(setup.usage_lag, true);
        let usage_columns = [
            col("op/s", "ops_per_sec", Count),
            col("sent B/s", "bytes_sent_per_sec", Bytes),
            col("recv B/s", "bytes_received_per_sec", Bytes),
        ];
        Model {
            pools: Pane::new(
                PaneId::Pools,
                ["pool", ""],
                [
                    col("rd B/s", "read_bytes_per_sec", Bytes),
                    col("wr B/s", "write_bytes_per_sec", Bytes),
                    col("rd op/s", "read_ops_per_sec", Count),
                    col("wr op/s", "write_ops_per_sec", Count),
                    col("rec B/s", "recovery_bytes_per_sec", Bytes),
                ],
                Engine::new(params(0.0, false), pool_score),
                pools,
            ),
            gateways: Pane::new(
                PaneId::Gateways,
                ["gateway", "instance_id"],
                [
                    col("req/s", "requests_per_sec", Count),
                    col("fail/s", "failed_requests_per_sec", Count),
                    col("get B/s", "get_bytes_per_sec", Bytes),
                    col("put B/s", "put_bytes_per_sec", Bytes),
                ],
                Engine::new(params(setup.prometheus_refresh, false), gateway_score),
                gateways,
            ),
            users: Pane::new(
                PaneId::Users,
                ["user", ""],
                usage_columns,
                Engine::new(usage, usage_score),
                users,
            ),
            buckets: Pane::new(
                PaneId::Buckets,
                ["owner", "bucket"],
                usage_columns,
                Engine::new(usage, usage_score),
                buckets,
            ),
            started,
        }
    }

    pub fn pane(&self, id: PaneId) -> &dyn PaneView {
        match id {
            PaneId::Pools => &self.pools,
            PaneId::Gateways => &self.gateways,
            PaneId::Users => &self.users,
            PaneId::Buckets => &self.buckets,
        }
    }

    /// A source's answer (or failure); returns the panes it changed.
    pub fn apply(&mut self, update: Update) -> &'static [PaneId] {
        let t = update.at.duration_since(self.started).as_secs_f64();
        let panes: &'static [PaneId] = match update.source {
            SourceId::Pools => &[PaneId::Pools],
            SourceId::Gateways => &[PaneId::Gateways],
            SourceId::Usage => &[PaneId::Users, PaneId::Buckets],
        };
        match update.result {
            Ok(Data::Pools(pools)) => self.pools.apply(
                t,
                update.at,
                pools.into_iter().map(|(k, r)| (k, Reading::Rates(r))),
            ),
            Ok(Data::Gateways(gateways)) => self.gateways.apply(
                t,
                update.at,
                gateways.into_iter().map(|(k, c)| (k, Reading::Counters(c))),
            ),
            Ok(Data::Usage { users, buckets }) => {
                self.users.apply(
                    t,
                    update.at,
                    users.into_iter().map(|(k, c)| (k, Reading::Counters(c))),
                );
                self.buckets.apply(
                    t,
                    update.at,
                    buckets.into_iter().map(|(k, c)| (k, Reading::Counters(c))),
                );
            }
            Err(e) => {
                let message = e.to_string();
                for id in panes {
                    let status = match id {
                        PaneId::Pools => &mut self.pools.status,
                        PaneId::Gateways => &mut self.gateways.status,
                        PaneId::Users => &mut self.users.status,
                        PaneId::Buckets => &mut self.buckets.status,
                    };
                    status.error = Some(message.clone());
                }
            }
        }
        panes
    }
}

/// A name from outside (a bucket, a user, a pool), safe to print on a terminal: control
/// characters (a newline, an escape sequence, C1 codes) and the characters that reorder text
/// (bidirectional overrides) are written as escapes, so no name can move the cursor, clear the
/// screen or forge a row.
pub fn shown(name: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !name.contains(unsafe_char) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A rate in at most 6 characters: three significant digits and a binary (bytes) or decimal
/// (counts) prefix: `0`, `0.25`, `12.5`, `999`, `1.21Ki`, `45.0M`.
pub fn rate_text(x: f64, unit: Unit) -> String {
    if x <= 0.0 || !x.is_finite() {
        return "0".into();
    }
    let (step, prefixes): (f64, [&str; 5]) = match unit {
        Unit::Bytes => (1024.0, ["", "Ki", "Mi", "Gi", "Ti"]),
        Unit::Count => (1000.0, ["", "k", "M", "G", "T"]),
    };
    let mut m = x;
    let mut p = 0;
    while m >= 999.5 && p + 1 < prefixes.len() {
        m /= step;
        p += 1;
    }
    let digits = if m < 9.995 {
        2
    } else if m < 99.95 {
        1
    } else {
        0
    };
    let text = format!("{m:.digits$}");
    // Whole numbers of plain units need no decimals (3 requests, not 3.00).
    let text = if p == 0 && m.fract() == 0.0 {
        format!("{m:.0}")
    } else {
        text
    };
    format!("{text}{}", prefixes[p])
}

/// The last `width` scores as a sparkline of block characters, scaled to their own peak.
pub fn sparkline(history: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let recent = &history[history.len().saturating_sub(width)..];
    let peak = recent.iter().copied().fold(0.0, f64::max);
    recent
        .iter()
        .map(|&v| {
            if peak <= 0.0 || v <= 0.0 {
                ' '
            } else {
                let level = ((v / peak) * (BARS.len() - 1) as f64).round() as usize;
                BARS[level.min(BARS.len() - 1)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_move_the_cursor_or_forge_rows() {
        assert_eq!(shown("photos-2026"), "photos-2026");
        assert!(matches!(shown("фото"), Cow::Borrowed(_)));
        assert_eq!(shown("a\x1b[2J\r\nb"), "a\\x1b[2J\\r\\nb");
        assert_eq!(shown("x\u{9b}31m\u{7f}"), "x\\u{9b}31m\\x7f");
        assert_eq!(shown("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
    }

    #[test]
    fn rates_fit_six_characters() {
        let cases = [
            (0.0, Unit::Bytes, "0"),
            (f64::NAN, Unit::Bytes, "0"),
            (3.0, Unit::Count, "3"),
            (0.25, Unit::Count, "0.25"),
            (12.5, Unit::Count, "12.5"),
            (999.0, Unit::Bytes, "999"),
            (1000.0, Unit::Bytes, "0.98Ki"),
            (1234.0, Unit::Bytes, "1.21Ki"),
            (1_667_035.0, Unit::Bytes, "1.59Mi"),
            (45_000_000.0, Unit::Count, "45.0M"),
        ];
        for (x, unit, text) in cases {
            assert_eq!(rate_text(x, unit), text, "{x}");
        }
        for i in 0..2000 {
            let x = 1.37f64.powi(i % 120) * (i as f64);
            if x < 1e15 {
                assert!(rate_text(x, Unit::Bytes).chars().count() <= 6, "{x}");
            }
        }
    }

    #[test]
    fn sparklines_scale_to_their_peak() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 4.0, 8.0], 4), "▂▃▅█");
        assert_eq!(sparkline(&[0.0, 0.0], 8), "  ");
        assert_eq!(sparkline(&[], 8), "");
    }

    #[test]
    fn sort_cycles_through_the_columns() {
        let mut s = Sort::default();
        let mut seen = vec![];
        for _ in 0..6 {
            s = s.next(3);
            seen.push(s.by);
        }
        assert_eq!(
            seen,
            [
                SortBy::Column(0),
                SortBy::Column(1),
                SortBy::Column(2),
                SortBy::Name,
                SortBy::Busiest,
                SortBy::Column(0)
            ]
        );
    }
}
