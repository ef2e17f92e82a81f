//! The full-screen view: a tab line, the pane's source and state, its table (rates, trend,
//! sparkline), and the keys. Drawing is a pure function of the model and the view state
//! ([`draw`]), tested on ratatui's `TestBackend`; [`run`] owns the terminal, restoring it on
//! every way out (q, Ctrl-C, SIGTERM, SIGINT, SIGHUP, a panic).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row as TableRow, Table, Wrap};
use ratatui::Frame;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::rates::{Trend, HISTORY};
use super::sources::{SourceId, Update};
use super::view::{rate_text, shown, sparkline, Model, PaneId, PaneView, Sort, SortBy};

/// The trend column's width, and the least the sparkline gets before names are cut.
const TREND: u16 = 5;
const MIN_SPARK: u16 = 6;

/// What the person chose: pane, order, filter, scroll, pause.
pub struct Ui {
    pub pane: PaneId,
    sorts: [Sort; 4],
    filters: [String; 4],
    scroll: [usize; 4],
    /// Typing a filter.
    editing: bool,
    pub paused: bool,
    interval: Duration,
}

impl Ui {
    pub fn new(interval: Duration) -> Ui {
        Ui {
            pane: PaneId::Pools,
            sorts: Default::default(),
            filters: Default::default(),
            scroll: [0; 4],
            editing: false,
            paused: false,
            interval,
        }
    }

    /// Handles a key; returns true to quit.
    pub fn on_key(&mut self, key: KeyEvent, model: &Model) -> bool {
        let i = self.pane.index();
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return matches!(key.code, KeyCode::Char('c' | 'd'));
        }
        if self.editing {
            match key.code {
                KeyCode::Enter => self.editing = false,
                KeyCode::Esc => {
                    self.filters[i].clear();
                    self.editing = false;
                }
                KeyCode::Backspace => {
                    self.filters[i].pop();
                }
                KeyCode::Char(c) if !c.is_control() => self.filters[i].push(c),
                _ => {}
            }
            self.scroll[i] = 0;
            return false;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return true,
            KeyCode::Tab => self.pane = PaneId::ALL[(i + 1) % 4],
            KeyCode::BackTab => self.pane = PaneId::ALL[(i + 3) % 4],
            KeyCode::Char(c @ '1'..='4') => {
                self.pane = PaneId::ALL[usize::from(c as u8 - b'1')];
            }
            KeyCode::Char('s') => {
                self.sorts[i] = self.sorts[i].next(model.pane(self.pane).columns().len())
            }
            KeyCode::Char('r') => self.sorts[i].reverse = !self.sorts[i].reverse,
            KeyCode::Char('/') => self.editing = true,
            KeyCode::Char('p') => self.paused = !self.paused,
            KeyCode::Down => self.scroll[i] += 1,
            KeyCode::Up => self.scroll[i] = self.scroll[i].saturating_sub(1),
            KeyCode::PageDown => self.scroll[i] += 10,
            KeyCode::PageUp => self.scroll[i] = self.scroll[i].saturating_sub(10),
            KeyCode::Home => self.scroll[i] = 0,
            _ => {}
        }
        false
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, model: &Model, ui: &Ui, now: Instant) {
    let [tabs, state, note, table, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Min(2),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let pane = model.pane(ui.pane);
    frame.render_widget(tab_line(ui), tabs);
    let page = draw_table(frame, table, pane, ui);
    frame.render_widget(state_line(pane, ui, &page, now), state);
    frame.render_widget(
        Paragraph::new(shown(&pane.status().note).into_owned())
            .style(Style::new().fg(Color::DarkGray))
            .wrap(Wrap { trim: true }),
        note,
    );
    frame.render_widget(key_line(ui), keys);
}

fn tab_line(ui: &Ui) -> Line<'static> {
    let mut spans = vec![];
    for (n, id) in PaneId::ALL.iter().enumerate() {
        let style = if *id == ui.pane {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new()
        };
        spans.push(Span::styled(format!(" {} {} ", n + 1, id.title()), style));
        spans.push(Span::raw(" "));
    }
    spans.push(Span::styled(
        format!("every {}", humantime::format_duration(ui.interval)),
        Style::new().fg(Color::DarkGray),
    ));
    if ui.paused {
        spans.push(Span::styled(
            "  PAUSED",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans)
}

/// How many rows there are and how fresh, or why the source failed.
fn state_line(
    pane: &dyn PaneView,
    ui: &Ui,
    page: &super::view::Page,
    now: Instant,
) -> Line<'static> {
    let status = pane.status();
    let age = |t: Instant| format!("{}s ago", now.saturating_duration_since(t).as_secs());
    if let Some(e) = &status.error {
        let mut text = format!("error: {}", shown(e));
        if let Some(t) = status.updated {
            text = format!("{text} (last answer {})", age(t));
        }
        return Line::styled(text, Style::new().fg(Color::Red));
    }
    let Some(updated) = status.updated else {
        return Line::raw("waiting for the first answer...");
    };
    let mut text = format!("updated {}, {} rows", age(updated), page.total);
    let filter = &ui.filters[ui.pane.index()];
    if !filter.is_empty() {
        text.push_str(&format!(", {} matching /{}", page.matching, shown(filter)));
    }
    text.push_str(&format!(
        ", sorted by {}{}",
        match ui.sorts[ui.pane.index()].by {
            SortBy::Busiest => "busiest",
            SortBy::Name => "name",
            SortBy::Column(i) => pane.columns().get(i).map_or("?", |c| c.title),
        },
        if ui.sorts[ui.pane.index()].reverse {
            " (reversed)"
        } else {
            ""
        }
    ));
    if pane.polls() < 2 {
        text.push_str("; rates from the next answer on");
    }
    Line::raw(text)
}

fn key_line(ui: &Ui) -> Line<'static> {
    if ui.editing {
        return Line::from(vec![
            Span::styled("filter: ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!("{}_", shown(&ui.filters[ui.pane.index()]))),
            Span::styled(
                "  (Enter keeps it, Esc clears it)",
                Style::new().fg(Color::DarkGray),
            ),
        ]);
    }
    Line::styled(
        "Tab/1-4 pane  s sort  r reverse  / filter  p pause  q quit",
        Style::new().fg(Color::DarkGray),
    )
}

fn draw_table(frame: &mut Frame, area: Rect, pane: &dyn PaneView, ui: &Ui) -> super::view::Page {
    let i = ui.pane.index();
    let limit = usize::from(area.height.saturating_sub(1));
    let mut page = pane.page(&ui.filters[i], ui.sorts[i], ui.scroll[i], limit);
    if page.rows.is_empty() && ui.scroll[i] > 0 && page.matching > 0 {
        // Scrolled past the end (rows went away): show the last page.
        let from = page.matching.saturating_sub(limit.max(1));
        page = pane.page(&ui.filters[i], ui.sorts[i], from, limit);
    }
    let columns = pane.columns();
    let name_title = match ui.pane {
        PaneId::Pools => "pool",
        PaneId::Gateways => "gateway/instance",
        PaneId::Users => "user",
        PaneId::Buckets => "owner/bucket",
    };
    // The name takes what the rates, the trend and a short sparkline leave, and no more than
    // the longest name needs; a name cut short ends in `…`.
    let rate_widths: Vec<u16> = columns
        .iter()
        .map(|c| c.title.len().max(6) as u16)
        .collect();
    let fixed = rate_widths.iter().sum::<u16>() + TREND + rate_widths.len() as u16 + 2;
    let room = area.width.saturating_sub(fixed);
    let longest = page
        .rows
        .iter()
        .map(|r| r.name.chars().count())
        .chain([name_title.len()])
        .max()
        .unwrap_or(0);
    let name_width = (longest as u16).min(room.saturating_sub(MIN_SPARK)).max(8);
    let spark_width = room.saturating_sub(name_width).min(HISTORY as u16);
    let mut header = vec![Cell::from(name_title)];
    header.extend(
        columns
            .iter()
            .map(|c| Cell::from(Line::from(c.title).right_aligned())),
    );
    header.push(Cell::from("trend"));
    header.push(Cell::from("recent"));
    let rows = page.rows.iter().map(|row| {
        let dim = Style::new().fg(Color::DarkGray);
        let mut cells = vec![Cell::from(cut(&row.name, usize::from(name_width)))];
        cells.extend(
            columns
                .iter()
                .zip(&row.rates)
                .map(|(c, r)| Cell::from(Line::from(rate_text(*r, c.unit)).right_aligned())),
        );
        let (trend, style) = match (row.missing, row.trend) {
            (true, _) => ("gone", dim),
            (_, Trend::Rising) => ("↑", Style::new().fg(Color::Green)),
            (_, Trend::Falling) => ("↓", Style::new().fg(Color::Yellow)),
            (_, Trend::Steady) => ("→", Style::new()),
            (_, Trend::Idle) => ("idle", dim),
        };
        cells.push(Cell::from(Span::styled(trend, style)));
        cells.push(Cell::from(Span::styled(
            sparkline(&row.history, usize::from(spark_width)),
            Style::new().fg(Color::Cyan),
        )));
        let row_style = if row.missing || row.trend == Trend::Idle {
            dim
        } else {
            Style::new()
        };
        TableRow::new(cells).style(row_style)
    });
    let mut widths = vec![Constraint::Length(name_width)];
    widths.extend(rate_widths.iter().map(|w| Constraint::Length(*w)));
    widths.push(Constraint::Length(TREND));
    widths.push(Constraint::Length(spark_width));
    let table = Table::new(rows, widths)
        .header(TableRow::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .column_spacing(1);
    frame.render_widget(table, area);
    page
}

/// `name` in at most `width` characters, ending in `…` when cut.
fn cut(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        return name.to_string();
    }
    let mut out: String = name.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Runs the view until the person quits, a signal comes, or the sources are done (`--count`).
pub async fn run(
    mut model: Model,
    mut updates: mpsc::Receiver<Update>,
    interval: Duration,
) -> io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    // ratatui's hook restores the terminal; a panic in any task then ends the process, rather
    // than leave a view drawing over the restored screen.
    let restore_and_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_and_report(info);
        std::process::exit(101);
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let (events_tx, events) = mpsc::channel(64);
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || read_events(events_tx, &stop))
    };
    let result = view_loop(&mut terminal, &mut model, &mut updates, events, interval).await;
    stop.store(true, Ordering::Relaxed);
    ratatui::restore();
    let _ = reader.join();
    result
}

async fn view_loop(
    terminal: &mut ratatui::DefaultTerminal,
    model: &mut Model,
    updates: &mut mpsc::Receiver<Update>,
    mut events: mpsc::Receiver<Event>,
    interval: Duration,
) -> io::Result<()> {
    let mut ui = Ui::new(interval);
    // While paused, the latest answer of each source waits here.
    let mut held: [Option<Update>; 3] = Default::default();
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    let (mut term, mut int, mut hup) = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
        signal(SignalKind::hangup())?,
    );
    loop {
        terminal.draw(|f| draw(f, model, &ui, Instant::now()))?;
        tokio::select! {
            update = updates.recv() => match update {
                Some(u) if ui.paused => {
                    let slot = match u.source {
                        SourceId::Pools => 0,
                        SourceId::Gateways => 1,
                        SourceId::Usage => 2,
                    };
                    held[slot] = Some(u);
                }
                Some(u) => {
                    model.apply(u);
                }
                None => return Ok(()),
            },
            event = events.recv() => match event {
                Some(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                    if ui.on_key(key, model) {
                        return Ok(());
                    }
                    if !ui.paused {
                        for u in held.iter_mut().filter_map(Option::take) {
                            model.apply(u);
                        }
                    }
                }
                // A resize needs nothing but the redraw.
                Some(_) => {}
                None => return Err(io::Error::other("the terminal's input ended")),
            },
            _ = clock.tick() => {}
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => return Ok(()),
        }
    }
}

/// Reads terminal events on a thread of its own (crossterm's reads block), until `stop`.
fn read_events(tx: mpsc::Sender<Event>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match event::poll(Duration::from_millis(200)) {
            Ok(false) => {}
            Ok(true) => match event::read() {
                Ok(e) => {
                    if tx.blocking_send(e).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::sources::{Data, Update};
    use crate::watch::view::Setup;
    use chrono::Utc;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn model(start: Instant) -> Model {
        Model::new(
            Setup {
                usage_lag: 1.0,
                prometheus_refresh: 15.0,
                notes: [
                    "pools note".into(),
                    "gateways note".into(),
                    "users note".into(),
                    "RGW usage log of the current hour: lags by up to 30s".into(),
                ],
            },
            start,
        )
    }

    fn usage(at: Instant, alice: f64, evil: f64) -> Update {
        let bucket =
            |owner: &str, name: &str, v: f64| ((owner.into(), name.into()), [v / 1000.0, 0.0, v]);
        Update {
            source: SourceId::Usage,
            at,
            time: Utc::now(),
            result: Ok(Data::Usage {
                users: vec![("alice".into(), [alice / 1000.0, 0.0, alice + evil])],
                buckets: vec![
                    bucket("alice", "photos", alice),
                    bucket("alice", "x\x1b[2J\r\nFORGED ROW", evil),
                ],
            }),
        }
    }

    fn screen(model: &Model, ui: &Ui, now: Instant) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|f| draw(f, model, ui, now)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..24)
            .map(|y| {
                (0..80)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect()
    }

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn the_buckets_pane_fits_80x24_with_rates_trends_and_escaped_names() {
        let t0 = Instant::now();
        let mut m = model(t0);
        for (i, v) in [0.0, 2e6, 5e6].into_iter().enumerate() {
            m.apply(usage(t0 + Duration::from_secs(2 * i as u64), v, v / 10.0));
        }
        let mut ui = Ui::new(Duration::from_secs(2));
        assert!(!ui.on_key(key(KeyCode::Char('4')), &m));
        let lines = screen(&m, &ui, t0 + Duration::from_secs(5));
        let text = lines.join("\n");
        assert!(lines[0].contains("4 Buckets"), "{text}");
        assert!(lines[1].starts_with("updated 1s ago, 2 rows"), "{text}");
        assert!(lines[2].contains("lags by up to 30s"), "{text}");
        assert!(
            lines[4].contains("owner/bucket") && lines[4].contains("recv B/s"),
            "{text}"
        );
        // Busiest first: photos got 3 MB in 2 s.
        assert!(lines[5].starts_with("alice/photos"), "{text}");
        assert!(
            lines[5].contains("1.43Mi") && lines[5].contains('↑'),
            "{text}"
        );
        // The hostile name is one row, escaped, and the screen is intact.
        assert!(
            lines[6].starts_with("alice/x\\x1b[2J\\r\\nFORGED"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
        assert!(lines[23].contains("q quit"), "{text}");
        assert_eq!(text.matches("FORGED").count(), 1);
    }

    #[test]
    fn keys_switch_panes_sort_filter_and_pause() {
        let t0 = Instant::now();
        let mut m = model(t0);
        m.apply(usage(t0, 0.0, 0.0));
        m.apply(usage(t0 + Duration::from_secs(2), 2e6, 4e6));
        let mut ui = Ui::new(Duration::from_secs(5));
        ui.on_key(key(KeyCode::Tab), &m);
        ui.on_key(key(KeyCode::Tab), &m);
        assert_eq!(ui.pane, PaneId::Users);
        ui.on_key(key(KeyCode::BackTab), &m);
        assert_eq!(ui.pane, PaneId::Gateways);
        ui.on_key(key(KeyCode::Char('4')), &m);
        // The hostile-named bucket is the busier one; by name, photos comes first.
        let first_row = |ui: &Ui| screen(&m, ui, t0)[5].clone();
        assert!(first_row(&ui).starts_with("alice/x"), "{}", first_row(&ui));
        for _ in 0..4 {
            ui.on_key(key(KeyCode::Char('s')), &m);
        }
        assert_eq!(ui.sorts[3].by, SortBy::Name);
        assert!(first_row(&ui).starts_with("alice/photos"));
        ui.on_key(key(KeyCode::Char('r')), &m);
        assert!(first_row(&ui).starts_with("alice/x"));
        // A filter, typed after `/`, then kept with Enter.
        for c in "/PHO".chars() {
            ui.on_key(key(KeyCode::Char(c)), &m);
        }
        assert!(screen(&m, &ui, t0)[23].starts_with("filter: PHO_"));
        ui.on_key(key(KeyCode::Enter), &m);
        let lines = screen(&m, &ui, t0);
        assert!(lines[1].contains("2 rows, 1 matching /PHO"), "{}", lines[1]);
        assert!(lines[5].starts_with("alice/photos") && lines[6].trim().is_empty());
        // q while typing is text; afterwards it quits, as do Ctrl-C and Esc.
        ui.on_key(key(KeyCode::Char('/')), &m);
        assert!(!ui.on_key(key(KeyCode::Char('q')), &m));
        ui.on_key(key(KeyCode::Esc), &m);
        assert!(ui.filters[3].is_empty());
        assert!(!ui.on_key(key(KeyCode::Char('p')), &m));
        assert!(ui.paused && screen(&m, &ui, t0)[0].contains("PAUSED"));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(ui.on_key(ctrl_c, &m));
        assert!(ui.on_key(key(KeyCode::Char('q')), &m));
    }

    #[test]
    fn a_failing_source_shows_its_error_in_its_pane_only() {
        let t0 = Instant::now();
        let mut m = model(t0);
        m.apply(usage(t0, 0.0, 0.0));
        m.apply(Update {
            source: SourceId::Pools,
            at: t0,
            time: Utc::now(),
            result: Err(super::super::sources::WatchError::NotConfigured("pool_df")),
        });
        let ui = Ui::new(Duration::from_secs(5));
        let pools = screen(&m, &ui, t0);
        assert!(
            pools[1].starts_with("error: no pool_df job in the config"),
            "{}",
            pools[1]
        );
        let mut ui = ui;
        ui.on_key(key(KeyCode::Char('3')), &m);
        let users = screen(&m, &ui, t0);
        assert!(
            users[1].starts_with("updated 0s ago, 1 rows"),
            "{}",
            users[1]
        );
        assert!(users[1].contains("rates from the next answer on"));
    }
}
