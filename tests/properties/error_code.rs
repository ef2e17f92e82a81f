//! The error code of S3 (XML) and admin API (JSON) error bodies.

use ceph_stats_exporter::s3::error_code;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::{json, Value};

use crate::config;
use crate::support::fixtures::fixture;

const PLAIN_CODE: &str = "[A-Za-z0-9._]{1,40}";

fn xml_error(code: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message></Message></Error>"#
    )
}

fn json_error(code: &str) -> String {
    format!(r#"{{"Code":"{code}","Message":""}}"#)
}

/// What the S3 API's XML may carry as a code: letters, digits and dots.
fn is_plain_code(code: &str) -> bool {
    code.len() <= 64
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
}

/// Text that gets into each branch of `error_code`.
fn error_body() -> impl Strategy<Value = String> {
    let prefix = select(vec![
        "",
        " \n",
        "{",
        "{\"Code\":",
        "{\"Code\":\"",
        "<?xml",
        "<Error",
        "<Error><Code>",
        "<?xml version=\"1.0\"?><Error><Code>",
        "<html>",
    ]);
    let rest = prop_oneof![
        any::<String>(),
        "[<>/A-Za-z0-9. \"{}:,\\\\]{0,40}",
        (PLAIN_CODE, "[ <>/A-Za-z]{0,12}").prop_map(|(c, tail)| format!("{c}</Code>{tail}")),
    ];
    (prefix, rest).prop_map(|(p, r)| format!("{p}{r}"))
}

proptest! {
    #![proptest_config(config(256, "tests/regressions/error_code.txt"))]

    #[test]
    fn error_code_of_non_utf8_is_none(
        body in error_body(),
        at in any::<Index>(),
        // Never valid in UTF-8: a lone continuation byte at a character boundary, or a byte no
        // UTF-8 sequence starts with.
        bad in select(vec![0x80u8, 0xBF, 0xC0, 0xC1, 0xF5, 0xFF]),
    ) {
        let boundaries: Vec<usize> =
            (0..=body.len()).filter(|&i| body.is_char_boundary(i)).collect();
        let mut bytes = body.into_bytes();
        bytes.insert(*at.get(&boundaries), bad);
        prop_assert_eq!(error_code(&bytes), None);
    }

    #[test]
    fn error_code_is_a_code_the_body_states_or_none(body in error_body()) {
        let code = error_code(body.as_bytes());
        let text = body.trim_start();
        if let Some(c) = &code {
            prop_assert!(!c.is_empty());
            // Whatever the form, a code is an identifier: nothing in it can forge a log line.
            prop_assert!(is_plain_code(c), "{c:?}");
            if text.starts_with('{') {
                let v: Value = serde_json::from_str(text).expect("a code came from valid JSON");
                prop_assert_eq!(v["Code"].as_str(), Some(c.as_str()));
            } else {
                prop_assert!(text.starts_with("<?xml") || text.starts_with("<Error"), "{body:?}");
                prop_assert!(is_plain_code(c), "{c:?}");
                prop_assert!(body.contains("<Code>") && body.contains(c.as_str()), "{body:?}");
            }
        } else if text.starts_with("<?xml") || text.starts_with("<Error") {
            // None from XML: no <Code>...</Code>, or not a plain code inside.
            let inner = text
                .split_once("<Code>")
                .and_then(|(_, r)| r.split_once("</Code>"))
                .map(|(c, _)| c.trim());
            prop_assert!(
                inner.is_none_or(|c| c.is_empty() || !is_plain_code(c)),
                "{body:?}"
            );
        }
    }

    #[test]
    fn error_code_reads_plain_codes_in_both_forms(code in PLAIN_CODE, lead in "[ \t\r\n]{0,3}") {
        for body in [xml_error(&code), json_error(&code)] {
            prop_assert_eq!(error_code(format!("{lead}{body}").as_bytes()), Some(code.clone()));
        }
        let spaced = format!("<Error><Code>\n  {code}\n</Code></Error>");
        prop_assert_eq!(error_code(spaced.as_bytes()), Some(code));
    }

    #[test]
    fn error_code_reads_json_codes_exactly_when_plain(code in "\\PC{1,20}", message in any::<String>()) {
        let body = json!({"Message": message, "Code": code, "RequestId": "tx1"}).to_string();
        let plain = is_plain_code(&code);
        prop_assert_eq!(error_code(body.as_bytes()), plain.then_some(code));
    }

    #[test]
    fn error_code_refuses_xml_codes_that_are_not_plain(
        head in PLAIN_CODE,
        bad in select(vec![" ", "-", "\n", "&amp;", "/", "\u{e9}", ":", "<b>"]),
        tail in PLAIN_CODE,
    ) {
        let code = format!("{head}{bad}{tail}");
        prop_assert_eq!(error_code(xml_error(&code).as_bytes()), None, "{}", code);
        // Nor in the admin API's JSON: a code is an identifier, or it is not a code.
        prop_assert_eq!(error_code(json!({"Code": code}).to_string().as_bytes()), None);
    }
}

#[test]
fn error_code_of_the_fixtures_and_their_prefixes() {
    for (name, code) in [
        ("s3-error-bad-signature.xml", "SignatureDoesNotMatch"),
        ("s3-error-no-such-bucket.xml", "NoSuchBucket"),
        ("s3-error-time-skewed.xml", "RequestTimeTooSkewed"),
        ("admin-error-bad-signature.json", "SignatureDoesNotMatch"),
        ("admin-error-time-skewed.json", "RequestTimeTooSkewed"),
        ("admin-error-unknown-access-key.json", "InvalidAccessKeyId"),
        ("admin-error-no-usage-caps.json", "AccessDenied"),
    ] {
        let body = fixture(name);
        assert_eq!(error_code(&body).as_deref(), Some(code), "{name}");
        for end in 0..body.len() {
            let got = error_code(&body[..end]);
            assert!(
                got.is_none() || got.as_deref() == Some(code),
                "{name}[..{end}]: {got:?}"
            );
        }
    }
    for body in [
        "",
        "{}",
        "{\"Code\":\"\"}",
        "{\"Code\":1}",
        "<Error><Code></Code>",
        "<html><Code>X</Code>",
    ] {
        assert_eq!(error_code(body.as_bytes()), None, "{body:?}");
    }
}
