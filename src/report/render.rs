//! A report's rows as a terminal table, CSV (RFC 4180) or JSON lines. Numbers stay exact
//! integers everywhere; the table adds human units beside byte counts. Names come from the
//! archive, so the table shows them as `watch` does (control and text-reordering characters
//! escaped): a bucket name cannot forge a line.

use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::watch::view::shown as shown_name;

/// How rows are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns for a terminal (bytes also in human units).
    Table,
    /// RFC 4180, with a header line.
    Csv,
    /// One JSON object per line.
    Json,
}

/// One value of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Count(u64),
    /// A byte count: the table shows human units beside it.
    Bytes(u64),
    /// A signed byte count (growth).
    SignedBytes(i64),
    Time(DateTime<Utc>),
    /// Not known (a text body has no `successful_ops`; a root that does not grow has no fill
    /// date): empty in CSV, `null` in JSON, `-` in the table.
    Unknown,
}

/// Rows under a header.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

pub fn write(out: &mut impl Write, table: &Table, output: Output) -> io::Result<()> {
    match output {
        Output::Table => aligned(out, table),
        Output::Csv => csv(out, table),
        Output::Json => json_lines(out, table),
    }
}

fn aligned(out: &mut impl Write, table: &Table) -> io::Result<()> {
    let cells: Vec<Vec<(String, bool)>> = table
        .rows
        .iter()
        .map(|row| row.iter().map(shown).collect())
        .collect();
    let mut widths: Vec<usize> = table.header.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, (text, _)) in widths.iter_mut().zip(row) {
            *w = (*w).max(text.chars().count());
        }
    }
    let line = |out: &mut dyn Write, row: &[(String, bool)]| -> io::Result<()> {
        let mut text = String::new();
        for (i, ((cell, right), width)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = " ".repeat(width - cell.chars().count());
            if *right {
                text.push_str(&pad);
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&pad);
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    let header: Vec<(String, bool)> = table
        .header
        .iter()
        .map(|h| (h.to_string(), false))
        .collect();
    line(out, &header)?;
    for row in &cells {
        line(out, row)?;
    }
    Ok(())
}

/// A cell as the table shows it, and whether it aligns right.
fn shown(cell: &Cell) -> (String, bool) {
    match cell {
        Cell::Text(s) => (shown_name(s).into_owned(), false),
        Cell::Count(n) => (n.to_string(), true),
        Cell::Bytes(n) => (format!("{n} ({})", human(*n as f64)), true),
        Cell::SignedBytes(n) => {
            let sign = if *n < 0 { "-" } else { "" };
            (
                format!("{n} ({sign}{})", human(n.unsigned_abs() as f64)),
                true,
            )
        }
        Cell::Time(t) => (t.to_rfc3339_opts(SecondsFormat::Secs, true), false),
        Cell::Unknown => ("-".into(), true),
    }
}

/// Bytes in IEC units with one decimal (`1.5 GiB`).
pub fn human(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn plain(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => s.clone(),
        Cell::Count(n) | Cell::Bytes(n) => n.to_string(),
        Cell::SignedBytes(n) => n.to_string(),
        Cell::Time(t) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        Cell::Unknown => String::new(),
    }
}

fn csv(out: &mut impl Write, table: &Table) -> io::Result<()> {
    let field = |s: &str| {
        if s.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let header: Vec<String> = table.header.iter().map(|h| field(h)).collect();
    write!(out, "{}\r\n", header.join(","))?;
    for row in &table.rows {
        let cells: Vec<String> = row.iter().map(|c| field(&plain(c))).collect();
        write!(out, "{}\r\n", cells.join(","))?;
    }
    Ok(())
}

fn json_lines(out: &mut impl Write, table: &Table) -> io::Result<()> {
    for row in &table.rows {
        let mut object = serde_json::Map::new();
        for (name, cell) in table.header.iter().zip(row) {
            let value = match cell {
                Cell::Text(s) => s.clone().into(),
                Cell::Count(n) | Cell::Bytes(n) => (*n).into(),
                Cell::SignedBytes(n) => (*n).into(),
                Cell::Time(_) => plain(cell).into(),
                Cell::Unknown => serde_json::Value::Null,
            };
            object.insert(name.to_string(), value);
        }
        serde_json::to_writer(&mut *out, &object)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            header: vec!["user", "ops", "bytes_sent", "successful_ops"],
            rows: vec![
                vec![
                    Cell::Text("alice".into()),
                    Cell::Count(12),
                    Cell::Bytes(3 << 20),
                    Cell::Count(11),
                ],
                vec![
                    Cell::Text("b,\"o\"\nb".into()),
                    Cell::Count(1),
                    Cell::Bytes(u64::MAX),
                    Cell::Unknown,
                ],
            ],
        }
    }

    fn rendered(output: Output) -> String {
        let mut out = Vec::new();
        write(&mut out, &sample(), output).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_table_aligns_numbers_right_and_shows_human_bytes() {
        let text = rendered(Output::Table);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            3,
            "a name's newline is escaped, not a line: {text}"
        );
        assert!(lines[1].contains("3145728 (3.0 MiB)"), "{text}");
        assert!(lines[2].starts_with("b,\"o\"\\nb"), "{text}");
        // Right-aligned: the ops column ends at the same place on every line.
        let end = |l: &str| l.find("ops").map(|i| i + 3);
        let ops_end = end(lines[0]).unwrap();
        assert_eq!(&lines[1][ops_end - 2..ops_end], "12");
        assert_eq!(&lines[2][ops_end - 1..ops_end], "1");
        assert!(lines[2].ends_with('-'));
    }

    #[test]
    fn csv_quotes_what_rfc_4180_says_and_keeps_numbers_exact() {
        let text = rendered(Output::Csv);
        assert_eq!(
            text,
            "user,ops,bytes_sent,successful_ops\r\nalice,12,3145728,11\r\n\
             \"b,\"\"o\"\"\nb\",1,18446744073709551615,\r\n"
        );
    }

    #[test]
    fn json_lines_are_objects_with_integers_and_null_for_unknown() {
        let text = rendered(Output::Json);
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["bytes_sent"].as_u64(), Some(u64::MAX));
        assert_eq!(rows[1]["successful_ops"], serde_json::Value::Null);
        assert_eq!(rows[1]["user"], "b,\"o\"\nb");
    }

    #[test]
    fn human_units_are_iec() {
        assert_eq!(human(512.0), "512 B");
        assert_eq!(human(1536.0), "1.5 KiB");
        assert_eq!(human((5u64 << 40) as f64), "5.0 TiB");
    }
}
