//! Object key templates: strftime fields of the scheduled fire time, rendered in UTC.
//!
//! Keys come from the *scheduled* fire time, never the wall clock at upload, so a retried or
//! repeated run (or a second exporter on the same schedule) writes the same key. The defaults
//! reproduce the tool this one replaces: `pool.%Y-%m-%d/%H/%M/%S`, `usage.%Y-%m-%d/%H/%M/%S`.

use std::fmt::Write as _;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};

/// A validated key template. Rendering cannot fail or panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyTemplateError {
    #[error("key template is empty")]
    Empty,
    #[error("key template {0:?} has an invalid strftime field")]
    BadField(String),
    #[error("key template {0:?} starts with '/': S3 keys are relative to the bucket")]
    LeadingSlash(String),
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
        Ok(KeyTemplate(template.to_string()))
    }

    pub fn render(&self, fire: DateTime<Utc>) -> String {
        fire.format(&self.0).to_string()
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
                template: self.0.clone(),
                key,
                first,
                second,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::utc;

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
}
