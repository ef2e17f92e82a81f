//! Object key templates: strftime fields of the scheduled fire time, rendered in UTC or in a
//! configured time zone (`key_time_zone`, to keep the local-time names of the original tool).
//!
//! Keys come from the *scheduled* fire time, never the wall clock at upload, so a retried or
//! repeated run (or a second exporter on the same schedule) writes the same key. The defaults
//! reproduce the tool this one replaces: `pool.%Y-%m-%d/%H/%M/%S`, `usage.%Y-%m-%d/%H/%M/%S`.
//!
//! In a zone whose clocks go back, an hour of local times happens twice: fires in both passes
//! would get the same key unless the template tells them apart (e.g. with `%z`), which
//! [`KeyTemplate::check_fall_backs`] finds out.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::format::{Fixed, Item, Parsed, StrftimeItems};
use chrono::{DateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// A validated key template and the zone it renders in. Rendering cannot fail or panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate {
    template: String,
    zone: Tz,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyTemplateError {
    #[error("key template is empty")]
    Empty,
    #[error("key template {0:?} has an invalid strftime field")]
    BadField(String),
    #[error("key template {0:?} starts with '/': S3 keys are relative to the bucket")]
    LeadingSlash(String),
    #[error(
        "key template {template:?} can give a key with the path segment {segment:?}: a URL \
         resolves `.` and `..`, so the object would be stored under another key than the one \
         named; use another name for that part of the key"
    )]
    DotSegment { template: String, segment: String },
    #[error(
        "key template {template:?} gives the same key {key:?} for fires at {first} and {second}: \
         each fire would overwrite the last; add the time fields the schedule needs (e.g. %M, %S)"
    )]
    NotUnique {
        template: String,
        key: String,
        first: DateTime<Utc>,
        second: DateTime<Utc>,
    },
    #[error(
        "key template {template:?} in time zone {zone} gives the same key {key:?} to the fires at \
         {first} and {second}, when the clocks go back: the second object would overwrite the \
         first; add the UTC offset to the key (%z), or accept that with \
         key_time_zone_ambiguous = \"accept\""
    )]
    FallBack {
        template: String,
        zone: Tz,
        key: String,
        first: DateTime<Utc>,
        second: DateTime<Utc>,
    },
}

impl KeyTemplate {
    pub fn parse(template: &str) -> Result<Self, KeyTemplateError> {
        if template.is_empty() {
            return Err(KeyTemplateError::Empty);
        }
        if template.starts_with('/') {
            return Err(KeyTemplateError::LeadingSlash(template.to_string()));
        }
        // chrono panics when `to_string` meets an item it cannot format (an invalid field, or
        // a parse-only one such as `%#z`), so a trial rendering refuses those here, once.
        let items: Vec<Item> = StrftimeItems::new(template).collect();
        let mut trial = String::new();
        let renders = !items.iter().any(|i| matches!(i, Item::Error))
            && write!(trial, "{}", Utc::now().format_with_items(items.iter())).is_ok();
        if !renders {
            return Err(KeyTemplateError::BadField(template.to_string()));
        }
        if let Some(segment) = dot_segment(&items) {
            return Err(KeyTemplateError::DotSegment {
                template: template.to_string(),
                segment,
            });
        }
        Ok(KeyTemplate {
            template: template.to_string(),
            zone: Tz::UTC,
        })
    }

    /// The same template, rendering the fire time's wall clock in `zone` instead of UTC.
    pub fn in_zone(self, zone: Tz) -> Self {
        KeyTemplate { zone, ..self }
    }

    /// The zone keys are rendered in (the text capacity body's stamps follow it).
    pub fn zone(&self) -> Tz {
        self.zone
    }

    pub fn render(&self, fire: DateTime<Utc>) -> String {
        fire.with_timezone(&self.zone)
            .format(&self.template)
            .to_string()
    }

    pub fn as_str(&self) -> &str {
        &self.template
    }

    /// The text every key starts with: the template up to its first field (what a listing of
    /// the job's objects is asked for).
    pub fn fixed_prefix(&self) -> &str {
        let end = self.template.find('%').unwrap_or(self.template.len());
        &self.template[..end]
    }

    /// The fire time `key` was rendered from, when the template names it to the second;
    /// `None` for a key the template did not render. A local time the zone shows twice reads
    /// as the earlier unless the key has the offset (`%z`).
    pub fn fire_time_of(&self, key: &str) -> Option<DateTime<Utc>> {
        self.fire_span_of(key)
            .filter(|(_, span)| *span == TimeDelta::seconds(1))
            .map(|(t, _)| t)
    }

    /// The span of fire times that render `key`: its start and length (a second, a minute, an
    /// hour or a day, as fine as the template's fields go); `None` for a key the template did
    /// not render, or a template without a date.
    pub fn fire_span_of(&self, key: &str) -> Option<(DateTime<Utc>, TimeDelta)> {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, key, StrftimeItems::new(&self.template)).ok()?;
        let span = if parsed.hour_mod_12().is_none() {
            parsed.set_hour(0).ok()?;
            parsed.set_minute(0).ok()?;
            TimeDelta::days(1)
        } else if parsed.minute().is_none() {
            parsed.set_minute(0).ok()?;
            TimeDelta::hours(1)
        } else if parsed.second().is_none() {
            TimeDelta::minutes(1)
        } else {
            TimeDelta::seconds(1)
        };
        let start = match parsed.to_datetime() {
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => {
                let local = parsed.to_naive_datetime_with_offset(0).ok()?;
                self.zone
                    .from_local_datetime(&local)
                    .earliest()?
                    .with_timezone(&Utc)
            }
        };
        // A template that renders the same key again for that time is what wrote it.
        (self.render(start) == key).then_some((start, span))
    }

    /// Refuses a template that renders two consecutive fire times to the same key.
    pub fn check_distinguishes(
        &self,
        first: DateTime<Utc>,
        second: DateTime<Utc>,
    ) -> Result<(), KeyTemplateError> {
        let key = self.render(first);
        if key == self.render(second) {
            return Err(KeyTemplateError::NotUnique {
                template: self.template.clone(),
                key,
                first,
                second,
            });
        }
        Ok(())
    }

    /// Refuses a template that gives two fires the same key because the zone's clocks go back
    /// in `[from, to)`. `next_after` is the schedule (the first fire strictly after an instant).
    /// Only fires around each fall-back are rendered: elsewhere local time only moves forward.
    pub fn check_fall_backs(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        next_after: impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>>,
    ) -> Result<(), KeyTemplateError> {
        for (at, back) in fall_backs(self.zone, from, to) {
            // Local times of [at - back, at) come again in [at, at + back). Fires are on whole
            // seconds, and a schedule keeps the fraction of the instant it starts from.
            let mut seen: HashMap<String, DateTime<Utc>> = HashMap::new();
            let mut fire = next_after(at - back - TimeDelta::seconds(1));
            while let Some(t) = fire.filter(|t| *t < at + back) {
                if let Some(first) = seen.insert(self.render(t), t) {
                    return Err(KeyTemplateError::FallBack {
                        template: self.template.clone(),
                        zone: self.zone,
                        key: self.render(t),
                        first,
                        second: t,
                    });
                }
                fire = next_after(t);
            }
        }
        Ok(())
    }
}

/// A `.` or `..` path segment some fire time could render, if any. A field renders at least one
/// character that is not a dot, except `%.f`, which renders nothing at a whole second (and `.`
/// and digits otherwise); fields never render `/` (`%D` and the like come as items with `/`
/// literals). So a segment can be a dot segment only when its literal text is one and its only
/// fields are `%.f`.
fn dot_segment(items: &[Item<'_>]) -> Option<String> {
    let mut text = String::new();
    let mut has_field = false;
    let dotted = |text: &str, has_field: bool| !has_field && (text == "." || text == "..");
    for item in items {
        let literal = match item {
            Item::Literal(s) | Item::Space(s) => *s,
            Item::OwnedLiteral(s) | Item::OwnedSpace(s) => s,
            Item::Fixed(Fixed::Nanosecond) => continue,
            _ => {
                has_field = true;
                continue;
            }
        };
        for c in literal.chars() {
            if c == '/' {
                if dotted(&text, has_field) {
                    return Some(text);
                }
                text.clear();
                has_field = false;
            } else {
                text.push(c);
            }
        }
    }
    dotted(&text, has_field).then_some(text)
}

/// The instants in `[from, to)` where `zone`'s UTC offset goes down (clocks go back), each with
/// how far back. Offsets are sampled daily, then the change is searched to the second: no zone
/// changes its offset twice within a day.
pub fn fall_backs(
    zone: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, TimeDelta)> {
    // In whole seconds (transitions are on whole seconds), so the instant found is exact.
    let offset = |secs: i64| {
        DateTime::from_timestamp(secs, 0).map(|t| {
            zone.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc()
        })
    };
    let mut found = Vec::new();
    let (mut t, end) = (from.timestamp(), to.timestamp());
    while t < end {
        let next = (t + 86_400).min(end);
        let (Some(before), Some(after)) = (offset(t), offset(next)) else {
            break; // beyond chrono's range
        };
        if after < before {
            // The change is in (t, next]: find its first second.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == Some(before) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            if let Some(at) = DateTime::from_timestamp(hi, 0) {
                found.push((at, TimeDelta::seconds(i64::from(before - after))));
            }
        }
        t = next;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::utc;

    #[test]
    fn a_key_gives_back_the_fire_time_it_was_rendered_from() {
        let fire = utc("2026-11-22T13:05:00Z");
        let default = KeyTemplate::parse("usage.%Y-%m-%d/%H/%M/%S").unwrap();
        assert_eq!(default.fixed_prefix(), "usage.");
        assert_eq!(default.fire_time_of(&default.render(fire)), Some(fire));
        assert_eq!(default.fire_time_of("usage.2026-11-22/13/05"), None);
        assert_eq!(default.fire_time_of("usage.2026-11-22/13/05/00.bak"), None);
        assert_eq!(default.fire_time_of("pool.2026-11-22/13/05/00"), None);
        // Local keys read back in their zone; the hour shown twice reads as the earlier
        // without %z, and exactly with it.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let local = KeyTemplate::parse("usage/%Y/%m/%d/%H%M%S")
            .unwrap()
            .in_zone(berlin);
        assert_eq!(local.fire_time_of(&local.render(fire)), Some(fire));
        let second_pass = utc("2026-10-25T01:30:00Z");
        assert_eq!(
            local.fire_time_of(&local.render(second_pass)),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        let offset = KeyTemplate::parse("usage/%Y-%m-%dT%H%M%S%z")
            .unwrap()
            .in_zone(berlin);
        assert_eq!(
            offset.fire_time_of(&offset.render(second_pass)),
            Some(second_pass)
        );
        let hive = KeyTemplate::parse("usage/date=%Y-%m-%d/hour=%H/usage.jsonl.gz").unwrap();
        assert_eq!(hive.fixed_prefix(), "usage/date=");
        assert_eq!(
            hive.fire_time_of(&hive.render(fire)),
            None,
            "no minutes: not exact"
        );
        assert_eq!(
            hive.fire_span_of(&hive.render(fire)),
            Some((utc("2026-11-22T13:00:00Z"), TimeDelta::hours(1)))
        );
        let daily = KeyTemplate::parse("usage/%Y%m%d.txt").unwrap();
        assert_eq!(
            daily.fire_span_of("usage/20261122.txt"),
            Some((utc("2026-11-22T00:00:00Z"), TimeDelta::days(1)))
        );
    }

    #[test]
    fn default_templates_reproduce_the_original_keys() {
        let t = utc("2026-11-22T13:05:00Z");
        assert_eq!(
            KeyTemplate::parse("pool.%Y-%m-%d/%H/%M/%S")
                .unwrap()
                .render(t),
            "pool.2026-11-22/13/05/00"
        );
        assert_eq!(
            KeyTemplate::parse("usage.%Y-%m-%d/%H/%M/%S")
                .unwrap()
                .render(t),
            "usage.2026-11-22/13/05/00"
        );
    }

    #[test]
    fn invalid_templates_are_refused_not_panicking_later() {
        assert_eq!(KeyTemplate::parse(""), Err(KeyTemplateError::Empty));
        assert!(matches!(
            KeyTemplate::parse("x.%Q"),
            Err(KeyTemplateError::BadField(_))
        ));
        assert!(matches!(
            KeyTemplate::parse("x.%"),
            Err(KeyTemplateError::BadField(_))
        ));
        // A parse-only field is valid strftime for chrono, yet cannot be rendered.
        assert!(matches!(
            KeyTemplate::parse("x.%S%#z"),
            Err(KeyTemplateError::BadField(_))
        ));
        assert!(matches!(
            KeyTemplate::parse("/x.%S"),
            Err(KeyTemplateError::LeadingSlash(_))
        ));
    }

    #[test]
    fn a_template_that_can_render_a_dot_segment_is_refused() {
        let whole_second = utc("2026-11-22T13:05:00Z");
        for (template, segment) in [
            ("./pool.%S", "."),
            ("pool/../%S", ".."),
            ("%d/../x%S", ".."),
            ("pool.%S/.", "."),
            ("pool.%S/..", ".."),
            ("%Y/./%m/%S", "."),
            // `%.f` renders nothing at a whole second, which is when fires are.
            ("x%S/.%.f/y", "."),
            ("x%S/%.f..%.f/y", ".."),
        ] {
            assert_eq!(
                KeyTemplate::parse(template),
                Err(KeyTemplateError::DotSegment {
                    template: template.into(),
                    segment: segment.into()
                }),
                "{template}"
            );
        }
        // That `%.f` case is real: the URL would resolve the key rendered at a whole second.
        let rendered = whole_second.format("x%S/.%.f/y").to_string();
        assert_eq!(rendered, "x00/./y");
        let url: url::Url = format!("http://h/info/{rendered}").parse().unwrap();
        assert_eq!(url.path(), "/info/x00/y");
        // Dots with other characters, or next to a field, are names like any other.
        for template in [
            "pool.%S",
            ".pool/%S",
            "a/.../%S",
            "a/.x/%S",
            "a/%S./b",
            "a/.%S/b",
            "a/..%d/%S",
            "%D/%S",
            "a//%S",
            "a/%.f/%S",
        ] {
            assert!(KeyTemplate::parse(template).is_ok(), "{template}");
        }
        let err = KeyTemplate::parse("%d/../x%S").unwrap_err().to_string();
        assert!(
            err.contains("\"..\"") && err.contains("another key"),
            "{err}"
        );
    }

    #[test]
    fn a_template_too_coarse_for_the_schedule_is_caught() {
        let t = KeyTemplate::parse("usage.%Y-%m-%d/%H").unwrap();
        let a = utc("2026-11-22T13:00:00Z");
        assert!(t
            .check_distinguishes(a, utc("2026-11-22T14:00:00Z"))
            .is_ok());
        let err = t
            .check_distinguishes(a, utc("2026-11-22T13:00:10Z"))
            .unwrap_err();
        assert!(err.to_string().contains("%M"), "{err}");
    }

    fn zone(name: &str) -> Tz {
        name.parse().unwrap()
    }

    #[test]
    fn keys_render_the_wall_clock_of_their_zone() {
        let t = utc("2026-11-22T13:05:00Z");
        let k = KeyTemplate::parse("pool.%Y-%m-%d/%H/%M/%S").unwrap();
        assert_eq!(k.zone(), Tz::UTC);
        let k = k.in_zone(zone("Asia/Shanghai"));
        assert_eq!(k.render(t), "pool.2026-11-22/21/05/00");
        assert_eq!(k.zone(), zone("Asia/Shanghai"));
        // Past midnight local time: the date follows the zone too.
        assert_eq!(
            k.render(utc("2026-11-22T16:00:00Z")),
            "pool.2026-11-23/00/00/00"
        );
        let k = KeyTemplate::parse("x.%H%M%z")
            .unwrap()
            .in_zone(zone("America/New_York"));
        assert_eq!(k.render(t), "x.0805-0500");
    }

    #[test]
    fn fall_backs_are_found_to_the_second_and_spring_forwards_ignored() {
        let year = (utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"));
        let hour = TimeDelta::hours(1);
        // Berlin goes back at 03:00 CEST (01:00Z) on the last Sunday of October; forward in March.
        assert_eq!(
            fall_backs(zone("Europe/Berlin"), year.0, year.1),
            vec![(utc("2026-10-25T01:00:00Z"), hour)]
        );
        assert_eq!(
            fall_backs(zone("America/New_York"), year.0, year.1),
            vec![(utc("2026-11-01T06:00:00Z"), hour)]
        );
        // Lord Howe Island goes back half an hour.
        assert_eq!(
            fall_backs(zone("Australia/Lord_Howe"), year.0, year.1),
            vec![(utc("2026-04-04T15:00:00Z"), TimeDelta::minutes(30))]
        );
        // China has kept one offset since 1991; UTC and Kolkata never changed in this range.
        let long = (utc("1992-01-01T00:00:00Z"), utc("2040-01-01T00:00:00Z"));
        for name in ["Asia/Shanghai", "UTC", "Asia/Kolkata"] {
            assert_eq!(fall_backs(zone(name), long.0, long.1), vec![], "{name}");
        }
        // Its last change, on 1991-09-15, is found.
        let found = fall_backs(
            zone("Asia/Shanghai"),
            utc("1991-01-01T00:00:00Z"),
            utc("1992-01-01T00:00:00Z"),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        // An instant not on a whole second still finds the transition itself.
        let found = fall_backs(
            zone("Europe/Berlin"),
            utc("2026-10-24T13:00:00.5Z"),
            utc("2026-10-26T00:00:00.7Z"),
        );
        assert_eq!(found, vec![(utc("2026-10-25T01:00:00Z"), hour)]);
        // Far ahead too (zone tables that end early would miss these).
        assert_eq!(
            fall_backs(
                zone("Europe/Berlin"),
                utc("2045-01-01T00:00:00Z"),
                utc("2046-01-01T00:00:00Z")
            )
            .len(),
            1
        );
    }

    /// Fires every `step` seconds, aligned on the epoch, like `every = "10s"`.
    fn every(step: i64) -> impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>> {
        move |t| DateTime::from_timestamp((t.timestamp().div_euclid(step) + 1) * step, 0)
    }

    #[test]
    fn a_fall_back_that_repeats_keys_is_refused_unless_the_key_has_the_offset() {
        let year = (utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"));
        let berlin = KeyTemplate::parse("pool.%Y-%m-%d/%H/%M/%S")
            .unwrap()
            .in_zone(zone("Europe/Berlin"));
        let err = berlin
            .check_fall_backs(year.0, year.1, every(10))
            .unwrap_err();
        assert_eq!(
            err,
            KeyTemplateError::FallBack {
                template: "pool.%Y-%m-%d/%H/%M/%S".into(),
                zone: zone("Europe/Berlin"),
                key: "pool.2026-10-25/02/00/00".into(),
                first: utc("2026-10-25T00:00:00Z"),
                second: utc("2026-10-25T01:00:00Z"),
            }
        );
        // The same with the real schedule, whose fires are whole seconds.
        let ten = crate::schedule::Schedule::every(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(
            berlin
                .check_fall_backs(year.0, year.1, |t| ten.next_after(t))
                .map_err(|e| e.to_string()),
            Err(err.to_string())
        );
        let msg = err.to_string();
        assert!(
            msg.contains("%z") && msg.contains("key_time_zone_ambiguous = \"accept\""),
            "{msg}"
        );

        // The offset in the key tells the two passes apart.
        for template in ["pool.%Y-%m-%d/%H/%M/%S%z", "pool.%Y-%m-%dT%H:%M:%S%:z"] {
            let k = KeyTemplate::parse(template)
                .unwrap()
                .in_zone(zone("America/New_York"));
            assert_eq!(k.check_fall_backs(year.0, year.1, every(10)), Ok(()));
        }
        // No fall-back, nothing to refuse.
        let shanghai = berlin.clone().in_zone(zone("Asia/Shanghai"));
        assert_eq!(shanghai.check_fall_backs(year.0, year.1, every(1)), Ok(()));
        assert_eq!(
            KeyTemplate::parse("pool.%H")
                .unwrap()
                .check_fall_backs(year.0, year.1, every(10)),
            Ok(())
        );
        // A schedule that never fires in the repeated hour never repeats a key: once a day at
        // 12:00Z, keyed by day.
        let noon = |t: DateTime<Utc>| {
            let day = (t - TimeDelta::hours(12)).timestamp().div_euclid(86400) + 1;
            DateTime::from_timestamp(day * 86400 + 12 * 3600, 0)
        };
        let daily = KeyTemplate::parse("pool.%Y-%m-%d")
            .unwrap()
            .in_zone(zone("Europe/Berlin"));
        assert_eq!(daily.check_fall_backs(year.0, year.1, noon), Ok(()));
        // Hourly keys and hourly fires do collide.
        let hourly = KeyTemplate::parse("usage.%Y-%m-%d/%H")
            .unwrap()
            .in_zone(zone("Europe/Berlin"));
        assert!(hourly
            .check_fall_backs(year.0, year.1, every(3600))
            .is_err());
    }
}
