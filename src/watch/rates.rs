//! The rate engine: readings in (a series' cumulative counters, or rates a source computed
//! itself, at a time), rates out, with a smoothed rate, a trend and a short history per series.
//! Pure: times are seconds on a monotonic clock, handed in by the caller.
//!
//! Real counters do not move smoothly, and each rule below answers one way they do not:
//!
//! - **Rates run from change to change, not poll to poll.** RGW writes its usage log once per
//!   `rgw_usage_log_tick_interval`; the mgr's prometheus answer is refreshed every 15 s. A poll
//!   between two writes sees no change although traffic flows. So a series' last rate is *held*
//!   while it stands still, until [`HOLD`] times [`Params::refresh`] after its last change: by
//!   then the next write was due, and a poll that still sees none means there was no traffic
//!   (rate 0). A change is divided by the time since the previous change, but by no more than
//!   `max(refresh, time since the series was last seen)`: one write holds at most that much
//!   traffic, however long the counter stood still before it. So a 10 s poll of a log written
//!   every 30 s shows x, x, x, not 0, 0, 3x, and the rates times the polls' gaps add up to the
//!   counter's growth.
//! - **A counter that goes down starts a new series** (a daemon restart, a trimmed usage log): it
//!   is based at its new value and has no rate until it moves again: never negative, never a
//!   spike. A value that is negative or not a number counts as 0, so as a reset.
//! - **A series first seen after the first poll** is taken, where [`Params::born_at_zero`] says
//!   so (the usage log, which only lists what moved), to have started from zero
//!   `max(refresh, poll gap)` before; elsewhere (a new daemon of unknown age) from its value.
//! - **A series missing from a poll is idle** (rates 0), and dropped once it has been missing for
//!   more than [`Params::linger`] polls; if it comes back before that, it goes on.
//! - **Trend**: each poll the series' score (its main rate) is smoothed,
//!   `s = ALPHA * score + (1 - ALPHA) * s`; the trend is rising when `s` grew by more than
//!   `THRESHOLD` of its previous value, falling when it shrank by more, steady otherwise. A
//!   series whose score is 0 and whose `s` fell below `IDLE_FRACTION` of its recent peak is
//!   idle (and `s` is set to 0), so a stop shows a few polls of falling, then idle.
//!
//! The usage log restarts every UTC hour at zero while the previous hour's last writes can still
//! arrive; [`HourStitch`] turns per-hour figures into one total per key that only grows, so the
//! engine sees one continuous counter across the rollover.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Weight of the newest score in the smoothed rate.
pub const ALPHA: f64 = 0.5;
/// Relative change of the smoothed rate that makes a trend.
pub const THRESHOLD: f64 = 0.1;
/// Below this share of its recent peak, a series whose score is 0 is idle.
pub const IDLE_FRACTION: f64 = 0.05;
/// Scores kept per series, for a sparkline.
pub const HISTORY: usize = 16;
/// How much later than its refresh a source's next write may come (timer jitter) before a
/// standing counter counts as idle.
pub const HOLD: f64 = 1.25;

/// How a source's counters behave.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Seconds a source may go without showing a change while traffic flows (how often it is
    /// written or refreshed); 0 for a source that is always current.
    pub refresh: f64,
    /// A series that appears later started from zero (a log that lists only what moved).
    pub born_at_zero: bool,
    /// Polls a missing series is kept (shown idle) before it is dropped.
    pub linger: u32,
}

/// One series' reading at a poll.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reading<const N: usize> {
    /// Cumulative counters.
    Counters([f64; N]),
    /// Rates per second, as the source computed them.
    Rates([f64; N]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trend {
    Rising,
    Falling,
    Steady,
    Idle,
}

/// The last [`HISTORY`] scores, oldest first.
#[derive(Clone, Debug, Default)]
pub struct History {
    ring: [f32; HISTORY],
    next: u8,
    len: u8,
}

impl History {
    fn push(&mut self, v: f64) {
        let next = usize::from(self.next);
        self.ring[next] = v as f32;
        self.next = ((next + 1) % HISTORY) as u8;
        self.len = (usize::from(self.len) + 1).min(HISTORY) as u8;
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let len = usize::from(self.len);
        let start = (usize::from(self.next) + HISTORY - len) % HISTORY;
        (0..len).map(move |i| f64::from(self.ring[(start + i) % HISTORY]))
    }

    fn peak(&self) -> f64 {
        self.iter().fold(0.0, f64::max)
    }
}

/// One series.
#[derive(Clone, Debug)]
pub struct Series<const N: usize> {
    /// The counters at the last poll that saw the series.
    value: [f64; N],
    /// When the counters last changed (or the series was based).
    changed_at: f64,
    rates: [f64; N],
    smooth: f64,
    trend: Trend,
    history: History,
    /// The poll that last saw it, and when.
    seen: u64,
    seen_at: f64,
    missing: u32,
    reset: bool,
}

impl<const N: usize> Series<N> {
    fn based(value: [f64; N], t: f64, poll: u64) -> Self {
        Series {
            value,
            changed_at: t,
            rates: [0.0; N],
            smooth: 0.0,
            trend: Trend::Idle,
            history: History::default(),
            seen: poll,
            seen_at: t,
            missing: 0,
            reset: false,
        }
    }

    /// Rates per second, never negative.
    pub fn rates(&self) -> &[f64; N] {
        &self.rates
    }

    /// The smoothed score.
    pub fn smooth(&self) -> f64 {
        self.smooth
    }

    pub fn trend(&self) -> Trend {
        self.trend
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Missing from the last poll (shown idle until dropped).
    pub fn missing(&self) -> bool {
        self.missing > 0
    }

    /// The counters went down at the last poll: a new series started there.
    pub fn reset(&self) -> bool {
        self.reset
    }

    /// A reading at `t`, at poll `poll`. A change is divided by no more than `max(refresh,
    /// time since the series was last seen)`: it holds at most one write of the source, or what
    /// came since the series was last seen.
    fn observe(&mut self, reading: Reading<N>, t: f64, poll: u64, params: &Params) {
        let gap = t - self.seen_at;
        self.seen = poll;
        self.seen_at = t;
        self.missing = 0;
        self.reset = false;
        match reading {
            Reading::Rates(r) => {
                self.rates = r.map(clean);
                self.changed_at = t;
            }
            Reading::Counters(v) => {
                let v = v.map(clean);
                if v.iter().zip(&self.value).any(|(now, before)| now < before) {
                    *self = Series {
                        history: std::mem::take(&mut self.history),
                        smooth: self.smooth,
                        reset: true,
                        ..Series::based(v, t, poll)
                    };
                } else if v != self.value {
                    let dt = (t - self.changed_at).min(params.refresh.max(gap));
                    for ((rate, now), before) in self.rates.iter_mut().zip(v).zip(self.value) {
                        *rate = if dt > 0.0 { (now - before) / dt } else { 0.0 };
                    }
                    self.value = v;
                    self.changed_at = t;
                } else if t - self.changed_at > params.refresh * HOLD {
                    self.rates = [0.0; N];
                }
            }
        }
    }

    /// Once per poll, after the readings: smoothing, trend, history.
    fn settle(&mut self, score: f64) {
        let score = clean(score);
        let before = self.smooth;
        self.smooth = ALPHA * score + (1.0 - ALPHA) * before;
        self.history.push(score);
        let peak = self.history.peak();
        self.trend = if score == 0.0 && (self.smooth <= IDLE_FRACTION * peak || peak == 0.0) {
            self.smooth = 0.0;
            Trend::Idle
        } else if self.smooth > before * (1.0 + THRESHOLD) {
            Trend::Rising
        } else if self.smooth < before * (1.0 - THRESHOLD) {
            Trend::Falling
        } else {
            Trend::Steady
        };
    }
}

/// Not a number, infinite or negative: 0.
fn clean(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

/// The series of one source, keyed by `K`, each with `N` counters.
pub struct Engine<K, const N: usize> {
    params: Params,
    /// The series' main rate, from its rates (smoothed, trended, sparklined, sorted by).
    score: fn(&[f64; N]) -> f64,
    series: HashMap<K, Series<N>>,
    last_poll: Option<f64>,
    polls: u64,
}

impl<K: Hash + Eq, const N: usize> Engine<K, N> {
    pub fn new(params: Params, score: fn(&[f64; N]) -> f64) -> Self {
        Engine {
            params,
            score,
            series: HashMap::new(),
            last_poll: None,
            polls: 0,
        }
    }

    /// One poll's readings at time `t` (seconds). A poll no later than the previous one is
    /// ignored: rates need time to pass.
    pub fn update(&mut self, t: f64, readings: impl IntoIterator<Item = (K, Reading<N>)>) {
        let (first, gap) = match self.last_poll {
            None => (true, 0.0),
            Some(last) if t > last => (false, t - last),
            Some(_) => return,
        };
        self.polls += 1;
        let (poll, params) = (self.polls, self.params);
        let readings = readings.into_iter();
        // Room for the series this poll may add, at once rather than by doubling: a first
        // poll of 50,000 series would otherwise hold the table twice while it grows.
        self.series
            .reserve(readings.size_hint().0.saturating_sub(self.series.len()));
        for (key, reading) in readings {
            match self.series.entry(key) {
                Entry::Occupied(mut e) => e.get_mut().observe(reading, t, poll, &params),
                Entry::Vacant(e) => {
                    let s = match reading {
                        Reading::Counters(v) if params.born_at_zero && !first => {
                            let born = t - params.refresh.max(gap);
                            let mut s = Series::based([0.0; N], born, poll);
                            s.observe(Reading::Counters(v), t, poll, &params);
                            s
                        }
                        Reading::Counters(v) => Series::based(v.map(clean), t, poll),
                        Reading::Rates(r) => {
                            let mut s = Series::based([0.0; N], t, poll);
                            s.observe(Reading::Rates(r), t, poll, &params);
                            s
                        }
                    };
                    e.insert(s);
                }
            }
        }
        let score = self.score;
        self.series.retain(|_, s| {
            if s.seen != poll {
                s.missing += 1;
                s.rates = [0.0; N];
                s.reset = false;
                if s.missing > params.linger {
                    return false;
                }
            }
            s.settle(score(&s.rates));
            true
        });
        self.last_poll = Some(t);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &Series<N>)> {
        self.series.iter()
    }

    pub fn get(&self, key: &K) -> Option<&Series<N>> {
        self.series.get(key)
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Polls so far; counters have rates from the second on.
    pub fn polls(&self) -> u64 {
        self.polls
    }
}

/// Per-hour counters of the usage log made into one total per key that only grows.
///
/// Each poll hands in the latest figures of the hours it read (each hour's counters since that
/// hour began). An hour read before but not this time is *closed*: its last figures are kept
/// and added to the key's total from then on. So across a rollover the caller reads the
/// previous hour and the new one side by side until the previous hour's last write is in
/// (a grace of the log's write interval), then only the new one: the total goes on from where
/// it was. A key that is in no hour still read is dropped with its closed figures (it had no
/// traffic since), which keeps memory to the keys of the open hours.
pub struct HourStitch<K, const N: usize> {
    closed: HashMap<K, [u64; N]>,
    open: BTreeMap<i64, HashMap<K, [u64; N]>>,
}

impl<K, const N: usize> Default for HourStitch<K, N> {
    fn default() -> Self {
        HourStitch {
            closed: HashMap::new(),
            open: BTreeMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, const N: usize> HourStitch<K, N> {
    /// The figures of the hours read now, by hour start (epoch seconds); returns each key's
    /// total: its closed hours' last figures plus its open hours' figures.
    pub fn update(&mut self, hours: Vec<(i64, HashMap<K, [u64; N]>)>) -> Vec<(K, [u64; N])> {
        let read: Vec<i64> = hours.iter().map(|(h, _)| *h).collect();
        let closing: Vec<i64> = self
            .open
            .keys()
            .filter(|h| !read.contains(h))
            .copied()
            .collect();
        for hour in closing {
            for (key, figures) in self.open.remove(&hour).unwrap_or_default() {
                let slot = self.closed.entry(key).or_insert([0; N]);
                add(slot, &figures);
            }
        }
        self.open.extend(hours);
        let open = &self.open;
        self.closed
            .retain(|key, _| open.values().any(|hour| hour.contains_key(key)));
        let closed = |key: &K| self.closed.get(key).copied().unwrap_or([0; N]);
        if let [hour] = Vec::from_iter(open.values())[..] {
            // One hour read (all but the grace after a rollover): no map of totals needed.
            return hour
                .iter()
                .map(|(key, figures)| {
                    let mut total = closed(key);
                    add(&mut total, figures);
                    (key.clone(), total)
                })
                .collect();
        }
        let mut totals: HashMap<&K, [u64; N]> = HashMap::new();
        for hour in open.values() {
            for (key, figures) in hour {
                add(totals.entry(key).or_insert_with(|| closed(key)), figures);
            }
        }
        totals.into_iter().map(|(k, v)| (k.clone(), v)).collect()
    }
}

fn add<const N: usize>(slot: &mut [u64; N], figures: &[u64; N]) {
    for (s, f) in slot.iter_mut().zip(figures) {
        *s = s.saturating_add(*f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const USAGE: Params = Params {
        refresh: 30.0,
        born_at_zero: true,
        linger: 2,
    };

    fn first(r: &[f64; 1]) -> f64 {
        r[0]
    }

    fn engine(params: Params) -> Engine<&'static str, 1> {
        Engine::new(params, first)
    }

    fn counter(e: &mut Engine<&'static str, 1>, t: f64, v: f64) -> (f64, Trend) {
        e.update(t, [("a", Reading::Counters([v]))]);
        let s = e.get(&"a").expect("the series");
        (s.rates()[0], s.trend())
    }

    #[test]
    fn a_log_written_every_30_s_and_polled_every_10_s_shows_a_steady_rate() {
        // 100 bytes/s; the log shows it in steps of 3000 every 30 s.
        let mut e = engine(USAGE);
        let mut shown = vec![];
        for poll in 0..=12 {
            let t = 10.0 * poll as f64 + 5.0;
            let written = (t / 30.0).floor() * 3000.0;
            shown.push(counter(&mut e, t, written).0);
        }
        // From the first change on, never 0, 0, 3x: the rate is held between writes.
        let from_first_change = &shown[3..];
        assert!(from_first_change.iter().all(|&r| r == 100.0), "{shown:?}");
    }

    /// A log written every `refresh` s (its first write at `phase`), of traffic at 1000/s from
    /// 20 s to 120 s, polled every `gap` s for 200 s: the rates times the polls' gaps add up to
    /// the traffic, within one write.
    fn integral(refresh: f64, phase: f64, gap: f64) -> f64 {
        let mut e = engine(Params { refresh, ..USAGE });
        let traffic = |t: f64| (t.clamp(20.0, 120.0) - 20.0) * 1000.0;
        let (mut sum, mut t) = (0.0, 0.0);
        while t < 200.0 {
            let last_write = ((t - phase) / refresh).floor() * refresh + phase;
            let rate = counter(&mut e, t, traffic(last_write.max(0.0))).0;
            if t > 0.0 {
                sum += rate * gap;
            }
            t += gap;
        }
        sum
    }

    #[test]
    fn rates_times_gaps_add_up_to_the_growth() {
        for (refresh, phase, gap) in [
            (30.0, 7.0, 10.0),
            (30.0, 0.5, 7.0),
            (1.0, 0.3, 2.0),
            (15.0, 3.0, 5.0),
        ] {
            let sum = integral(refresh, phase, gap);
            assert!(
                (sum - 100_000.0).abs() <= 1000.0 * refresh,
                "refresh {refresh}, gap {gap}: {sum}"
            );
        }
    }

    #[test]
    fn a_standing_counter_is_held_until_a_write_was_due() {
        // Written every 30 s, polled every 10 s: held 37.5 s after the last change.
        let mut e = engine(USAGE);
        counter(&mut e, 0.0, 0.0);
        assert_eq!(counter(&mut e, 30.0, 3000.0).0, 100.0);
        assert_eq!(counter(&mut e, 40.0, 3000.0).0, 100.0);
        assert_eq!(counter(&mut e, 60.0, 3000.0).0, 100.0);
        assert_eq!(counter(&mut e, 70.0, 3000.0).0, 0.0);
        // Written every second, polled every 2 s: a poll without a change means no traffic.
        let mut e = engine(Params {
            refresh: 1.0,
            ..USAGE
        });
        counter(&mut e, 0.0, 0.0);
        assert_eq!(counter(&mut e, 2.0, 2000.0).0, 1000.0);
        assert_eq!(counter(&mut e, 4.0, 2000.0).0, 0.0);
    }

    #[test]
    fn a_stop_falls_then_idles_and_a_restart_rises() {
        let mut e = engine(Params {
            refresh: 1.0,
            ..USAGE
        });
        let mut v = 0.0;
        let mut trends = vec![];
        for poll in 0..30 {
            let t = 2.0 * poll as f64;
            if (2..12).contains(&poll) {
                v += 2000.0;
            }
            trends.push(counter(&mut e, t, v).1);
        }
        assert_eq!(trends[2], Trend::Rising);
        assert_eq!(trends[11], Trend::Steady);
        let falling = trends.iter().position(|t| *t == Trend::Falling).unwrap();
        let idle = trends.iter().rposition(|t| *t != Trend::Idle).unwrap() + 1;
        assert!(falling >= 12 && idle > falling && idle < 20, "{trends:?}");
    }

    #[test]
    fn a_counter_that_goes_down_starts_again_without_a_rate() {
        let mut e = engine(USAGE);
        counter(&mut e, 0.0, 1000.0);
        assert_eq!(counter(&mut e, 10.0, 2000.0).0, 100.0);
        assert_eq!(counter(&mut e, 20.0, 50.0).0, 0.0);
        assert!(e.get(&"a").unwrap().reset());
        // The next change counts from the new base, not from 2000 nor from 0.
        assert_eq!(counter(&mut e, 30.0, 1050.0).0, 100.0);
        assert!(!e.get(&"a").unwrap().reset());
    }

    #[test]
    fn series_born_later_start_from_zero_only_where_the_source_says_so() {
        let mut usage = engine(USAGE);
        usage.update(0.0, []);
        // First seen 10 s later with 3000: one write of the log, 30 s of traffic.
        assert_eq!(counter(&mut usage, 10.0, 3000.0).0, 100.0);
        let mut daemons = engine(Params {
            born_at_zero: false,
            ..USAGE
        });
        daemons.update(0.0, []);
        assert_eq!(counter(&mut daemons, 10.0, 3000.0).0, 0.0);
        // Present at the first poll: its value is history, not a rate.
        let mut e = engine(USAGE);
        assert_eq!(counter(&mut e, 0.0, 3000.0).0, 0.0);
    }

    #[test]
    fn a_missing_series_is_idle_then_dropped() {
        let mut e = engine(USAGE);
        counter(&mut e, 0.0, 0.0);
        counter(&mut e, 10.0, 1000.0);
        e.update(20.0, []);
        let s = e.get(&"a").unwrap();
        assert!(s.missing());
        assert_eq!(s.rates()[0], 0.0);
        e.update(30.0, []);
        assert_eq!(e.len(), 1);
        e.update(40.0, []);
        assert!(e.is_empty());
    }

    #[test]
    fn rates_from_the_source_are_taken_as_they_are_but_never_negative() {
        let mut e = engine(USAGE);
        e.update(0.0, [("a", Reading::Rates([5.0]))]);
        assert_eq!(e.get(&"a").unwrap().rates()[0], 5.0);
        e.update(1.0, [("a", Reading::Rates([-5.0]))]);
        assert_eq!(e.get(&"a").unwrap().rates()[0], 0.0);
        e.update(2.0, [("a", Reading::Rates([f64::NAN]))]);
        assert_eq!(e.get(&"a").unwrap().rates()[0], 0.0);
    }

    #[test]
    fn time_must_move_forward() {
        let mut e = engine(USAGE);
        counter(&mut e, 10.0, 0.0);
        counter(&mut e, 10.0, 500.0);
        assert_eq!(e.polls(), 1);
    }

    #[test]
    fn the_history_keeps_the_last_scores_oldest_first() {
        let mut h = History::default();
        for i in 0..20 {
            h.push(i as f64);
        }
        let kept: Vec<f64> = h.iter().collect();
        assert_eq!(kept, (4..20).map(f64::from).collect::<Vec<_>>());
    }

    fn hour(figures: &[(&'static str, u64)]) -> HashMap<&'static str, [u64; 1]> {
        figures.iter().map(|(k, v)| (*k, [*v])).collect()
    }

    #[test]
    fn the_hour_rollover_keeps_the_total_growing() {
        let mut s = HourStitch::default();
        fn total(t: Vec<(&'static str, [u64; 1])>, key: &str) -> Option<(&'static str, [u64; 1])> {
            t.into_iter().find(|(k, _)| *k == key)
        }
        assert_eq!(
            total(s.update(vec![(0, hour(&[("a", 100), ("b", 5)]))]), "a"),
            Some(("a", [100]))
        );
        // 13:00 ends; its last write (+20) comes after 14:00 has begun.
        let t = s.update(vec![
            (0, hour(&[("a", 100), ("b", 5)])),
            (3600, hour(&[("a", 7)])),
        ]);
        assert_eq!(total(t, "a"), Some(("a", [107])));
        let t = s.update(vec![
            (0, hour(&[("a", 120), ("b", 5)])),
            (3600, hour(&[("a", 9)])),
        ]);
        assert_eq!(total(t.clone(), "a"), Some(("a", [129])));
        assert_eq!(total(t, "b"), Some(("b", [5])));
        // 13:00 is closed: its last figures stay in a's total; b, with no traffic since, goes.
        let t = s.update(vec![(3600, hour(&[("a", 30), ("c", 1)]))]);
        assert_eq!(total(t.clone(), "a"), Some(("a", [150])));
        assert_eq!(total(t.clone(), "c"), Some(("c", [1])));
        assert!(total(t, "b").is_none());
        // a has no traffic in 14:00 any more (a trim): it is dropped, closed figures too.
        let t = s.update(vec![(3600, hour(&[("c", 2)]))]);
        assert_eq!(t, vec![("c", [2])]);
        assert!(s.closed.is_empty());
    }

    /// A counter's polls: (seconds since the previous poll, increment since it, reset to this
    /// share of the value first, present in the poll).
    fn polls() -> impl Strategy<Value = Vec<(f64, f64, Option<f64>, bool)>> {
        prop::collection::vec(
            (
                0.1f64..60.0,
                0.0f64..1.0,
                prop::option::weighted(0.15, 0.0f64..1.0),
                prop::bool::weighted(0.9),
            ),
            1..60,
        )
    }

    proptest! {
        // Failing seeds are kept with the other property tests' (tests/properties.rs).
        #![proptest_config(ProptestConfig {
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::Direct("tests/regressions/rates.txt"),
            )),
            ..ProptestConfig::default()
        })]

        /// Rates are never negative (nor NaN), and a reset never gives a spike: with a counter
        /// read as it is (no lag), no rate exceeds the fastest the counter really grew.
        #[test]
        fn rates_are_bounded_by_the_true_growth(
            polls in polls(),
            refresh in 0.0f64..60.0,
            born_at_zero: bool,
            max_rate in 1.0f64..1e9,
        ) {
            let mut e = engine(Params { refresh, born_at_zero, linger: 3 });
            let (mut t, mut v) = (0.0, 0.0);
            e.update(t, [("a", Reading::Counters([v]))]);
            for (gap, growth, reset, present) in polls {
                t += gap;
                v += growth * max_rate * gap;
                if let Some(share) = reset {
                    v *= share;
                }
                let reading = present.then_some(("a", Reading::Counters([v])));
                e.update(t, reading);
                if born_at_zero && e.get(&"a").is_none() {
                    // Such a source lists a series as soon as it moves, from zero again.
                    v = 0.0;
                }
                for (_, s) in e.iter() {
                    let r = s.rates()[0];
                    prop_assert!(r >= 0.0 && r.is_finite(), "rate {r}");
                    prop_assert!(r <= max_rate * (1.0 + 1e-9), "rate {r} above {max_rate}");
                    prop_assert!(s.smooth() >= 0.0 && s.smooth() <= max_rate * (1.0 + 1e-9));
                }
            }
        }

        /// A counter that never moves has rate 0 and is idle, whatever the polls.
        #[test]
        fn a_constant_counter_gives_zero(
            polls in polls(),
            value in 0.0f64..1e15,
            refresh in 0.0f64..60.0,
        ) {
            let mut e = engine(Params { refresh, born_at_zero: true, linger: 3 });
            let mut t = 0.0;
            e.update(t, [("a", Reading::Counters([value]))]);
            for (gap, ..) in polls {
                t += gap;
                e.update(t, [("a", Reading::Counters([value]))]);
                let s = e.get(&"a").unwrap();
                prop_assert_eq!(s.rates()[0], 0.0);
                prop_assert_eq!(s.trend(), Trend::Idle);
            }
        }

        /// Any readings at all, lying or not: rates stay finite and non-negative.
        #[test]
        fn rates_are_never_negative(
            readings in prop::collection::vec(
                (0.0f64..30.0, prop::num::f64::ANY, any::<bool>(), any::<bool>()), 1..60),
        ) {
            let mut e = engine(USAGE);
            let mut t = 0.0;
            for (gap, value, is_rate, present) in readings {
                t += gap;
                let reading = if is_rate { Reading::Rates([value]) } else { Reading::Counters([value]) };
                e.update(t, present.then_some(("a", reading)));
                for (_, s) in e.iter() {
                    prop_assert!(s.rates()[0] >= 0.0 && s.rates()[0].is_finite());
                    prop_assert!(s.smooth() >= 0.0 && s.smooth().is_finite());
                }
            }
        }

        /// Across hour rollovers, with each hour's last write arriving while both hours are
        /// read, the stitched total is the true running total: it only grows, so the engine
        /// never sees a reset, and its rate stays continuous.
        #[test]
        fn stitched_totals_equal_the_running_total(
            steps in prop::collection::vec((0u64..1000, 0u64..1000, any::<bool>()), 1..80),
        ) {
            // Each step: traffic filed under the previous hour (late writes, only while it is
            // still read), traffic in the current hour, and whether the hour rolls over.
            let mut s = HourStitch::default();
            let (mut hour, mut reading_previous) = (0i64, false);
            let mut figures: BTreeMap<i64, u64> = BTreeMap::new();
            let (mut truth, mut last_total) = (0u64, 0u64);
            for (late, now, roll) in steps {
                if roll {
                    hour += 3600;
                    reading_previous = true;
                } else if reading_previous {
                    // The grace is over: from now on only the current hour is read.
                    reading_previous = false;
                }
                if reading_previous {
                    *figures.entry(hour - 3600).or_default() += late;
                    truth += late;
                }
                *figures.entry(hour).or_default() += now;
                truth += now;
                let mut read = vec![(hour, HashMap::from([("k", [figures[&hour]])]))];
                if reading_previous {
                    read.insert(0, (hour - 3600, HashMap::from([("k", [figures[&(hour - 3600)]])])));
                }
                let totals = s.update(read);
                prop_assert_eq!(totals.len(), 1);
                let total = totals[0].1[0];
                prop_assert_eq!(total, truth);
                prop_assert!(total >= last_total);
                last_total = total;
            }
        }
    }
}
