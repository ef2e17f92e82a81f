//! Just enough of the Prometheus text exposition format to read a few metric families: the
//! samples `name{label="value",...} value [timestamp]` of the families asked for. Every other
//! line is skipped after its name, so a family this parser does not know (or a syntax it does
//! not read) elsewhere in the answer cannot break it. Pure.

use std::borrow::Cow;

/// One sample of a family asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
}

impl Sample<'_> {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| &**v)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct PromError {
    pub line: usize,
    pub reason: String,
}

/// The samples of `families` (exact metric names) in `text`, in order.
pub fn parse<'a>(text: &'a str, families: &[&str]) -> Result<Vec<Sample<'a>>, PromError> {
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if !families.contains(&name) {
            continue;
        }
        let err = |reason: &str| PromError {
            line: i + 1,
            reason: format!("{reason} in a {name} sample"),
        };
        let mut rest = line[name_end..].trim_start();
        let mut labels = Vec::new();
        if let Some(inner) = rest.strip_prefix('{') {
            rest = parse_labels(inner, &mut labels).map_err(err)?;
        }
        let mut fields = rest.split_ascii_whitespace();
        let value = fields.next().ok_or_else(|| err("no value"))?;
        let value = parse_value(value).ok_or_else(|| err("a value that is not a number"))?;
        // An optional timestamp (milliseconds), then nothing.
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|_| err("a timestamp that is not an integer"))?;
        }
        if fields.next().is_some() {
            return Err(err("text after the value"));
        }
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    Ok(samples)
}

/// Go spells infinities `+Inf`/`-Inf` and not-a-number `NaN`; Rust reads those too.
fn parse_value(s: &str) -> Option<f64> {
    s.parse().ok()
}

/// `name="value",...}` (after the opening brace); returns what follows the closing brace.
fn parse_labels<'a>(
    mut s: &'a str,
    labels: &mut Vec<(&'a str, Cow<'a, str>)>,
) -> Result<&'a str, &'static str> {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        let eq = s.find('=').ok_or("a label without `=`")?;
        let name = s[..eq].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err("a bad label name");
        }
        s = s[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("a label value without quotes")?;
        let (value, rest) = quoted(s)?;
        labels.push((name, value));
        s = rest.trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err("labels not separated by `,`");
        }
    }
}

/// A label value up to its closing quote, with `\\`, `\"` and `\n` unescaped.
fn quoted(s: &str) -> Result<(Cow<'_, str>, &str), &'static str> {
    let end = s.find(['"', '\\']).ok_or("an unterminated label value")?;
    if s.as_bytes()[end] == b'"' {
        return Ok((Cow::Borrowed(&s[..end]), &s[end + 1..]));
    }
    let mut out = String::from(&s[..end]);
    let mut chars = s[end..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Cow::Owned(out), &s[end + i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, c @ ('\\' | '"'))) => out.push(c),
                _ => return Err("a bad escape in a label value"),
            },
            c => out.push(c),
        }
    }
    Err("an unterminated label value")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as the Pacific mgr prometheus module writes them, and a few it does not.
    const ANSWER: &str = r#"# HELP ceph_rgw_req Requests
# TYPE ceph_rgw_req counter
ceph_rgw_req{instance_id="4405"} 113.0
ceph_rgw_req{instance_id="4406"} 1.5e3
# HELP ceph_rgw_metadata RGW Metadata
# TYPE ceph_rgw_metadata untyped
ceph_rgw_metadata{ceph_daemon="rgw.x",hostname="vm",ceph_version="ceph version 16.2.15 (618f) pacific (stable)",instance_id="4405"} 1.0
ceph_rgw_req_total{weird syntax that is not read
ceph_osd_op_r_latency_bucket{le="+Inf"} 3
ceph_rgw_get_b{instance_id="4405",} 4960.0 1700000000000
ceph_rgw_put_b { instance_id = "a\"b\\c\nd" } NaN
ceph_rgw_failed_req +Inf
"#;

    #[test]
    fn reads_the_families_asked_for_and_skips_the_rest() {
        let samples = parse(
            ANSWER,
            &[
                "ceph_rgw_req",
                "ceph_rgw_get_b",
                "ceph_rgw_put_b",
                "ceph_rgw_failed_req",
                "ceph_rgw_metadata",
            ],
        )
        .unwrap();
        let names: Vec<_> = samples.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "ceph_rgw_req",
                "ceph_rgw_req",
                "ceph_rgw_metadata",
                "ceph_rgw_get_b",
                "ceph_rgw_put_b",
                "ceph_rgw_failed_req"
            ]
        );
        assert_eq!(samples[0].value, 113.0);
        assert_eq!(samples[0].label("instance_id"), Some("4405"));
        assert_eq!(samples[1].value, 1500.0);
        assert_eq!(samples[2].label("ceph_daemon"), Some("rgw.x"));
        assert_eq!(samples[3].value, 4960.0);
        assert_eq!(samples[4].label("instance_id"), Some("a\"b\\c\nd"));
        assert!(samples[4].value.is_nan());
        assert_eq!(samples[5].value, f64::INFINITY);
        assert!(samples[5].labels.is_empty());
    }

    #[test]
    fn a_broken_sample_of_a_family_asked_for_names_its_line() {
        for (text, reason) in [
            ("ceph_rgw_req{instance_id=\"1\"} x\n", "not a number"),
            ("\nceph_rgw_req{instance_id=\"1} 3\n", "unterminated"),
            ("ceph_rgw_req{instance_id=1} 3\n", "without quotes"),
            ("ceph_rgw_req{instance_id=\"1\" a=\"2\"} 3\n", "separated"),
            ("ceph_rgw_req{instance_id=\"\\x\"} 3\n", "escape"),
            ("ceph_rgw_req 3 4 5\n", "after the value"),
            ("ceph_rgw_req 3 soon\n", "timestamp"),
            ("ceph_rgw_req\n", "no value"),
        ] {
            let err = parse(text, &["ceph_rgw_req"]).unwrap_err();
            assert!(err.reason.contains(reason), "{text:?}: {err}");
            assert_eq!(err.line, text.lines().count(), "{text:?}");
        }
        // The same lines under another name are not read at all.
        assert_eq!(
            parse("ceph_rgw_reqs{x=} y z w\n", &["ceph_rgw_req"]),
            Ok(vec![])
        );
    }
}
