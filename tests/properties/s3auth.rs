//! The v2 signer's canonicalization (resource, amz headers, key encoding, string to sign)
//! against the rules of the AWS documentation, and the signature's sensitivity to its inputs.

use std::collections::{BTreeMap, BTreeSet};

use ceph_stats_exporter::s3auth::{
    canonical_amz_headers, canonical_resource, encode_key, signature, string_to_sign,
    SignableRequest, SUB_RESOURCES,
};
use ceph_stats_exporter::secret::Secret;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, subsequence, Index};

use crate::{config, Shuffler};

#[test]
fn the_sub_resource_list_is_sorted_and_has_the_documented_ones() {
    assert!(SUB_RESOURCES.windows(2).all(|w| w[0] < w[1]));
    for name in [
        "acl",
        "partNumber",
        "uploadId",
        "uploads",
        "versionId",
        "response-content-type",
    ] {
        assert!(SUB_RESOURCES.contains(&name), "{name}");
    }
}

/// A query parameter: name, value (`None` for a bare `name`), and whether the value is sent as
/// a form (`+` for space) or fully percent-encoded.
#[derive(Clone, Debug)]
struct Param {
    name: String,
    value: Option<String>,
    form: bool,
}

impl Param {
    fn wire(&self) -> String {
        match &self.value {
            None => self.name.clone(),
            Some(v) if self.form => {
                format!(
                    "{}={}",
                    self.name,
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            }
            Some(v) => format!("{}={}", self.name, utf8_percent_encode(v, NON_ALPHANUMERIC)),
        }
    }
}

fn param(name: impl Strategy<Value = String>) -> impl Strategy<Value = Param> {
    (name, proptest::option::of("\\PC{0,8}"), any::<bool>()).prop_map(|(name, value, form)| Param {
        name,
        value,
        form,
    })
}

/// Distinct sub-resources and ordinary parameters (which are not signed).
fn query() -> impl Strategy<Value = (Vec<Param>, Vec<Param>)> {
    let subs = subsequence(SUB_RESOURCES.to_vec(), 0..=6).prop_flat_map(|names| {
        names
            .into_iter()
            .map(|n| param(Just(n.to_string())))
            .collect::<Vec<_>>()
    });
    let ordinary_name = prop_oneof![
        select(vec![
            "prefix",
            "max-keys",
            "marker",
            "format",
            "start",
            "end",
            "show-entries",
            "uid",
            "x-id"
        ])
        .prop_map(String::from),
        "[a-z][a-z0-9-]{0,12}",
    ]
    .prop_filter("not a sub-resource", |n| {
        !SUB_RESOURCES.iter().any(|s| s.eq_ignore_ascii_case(n))
    });
    (subs, vec(param(ordinary_name), 0..5))
}

/// The canonical resource as the AWS documentation describes it.
fn documented_resource(vhost: Option<&str>, path: &str, subs: &[Param]) -> String {
    let mut subs: Vec<&Param> = subs.iter().collect();
    subs.sort_by(|a, b| a.name.cmp(&b.name));
    let query: Vec<String> = subs
        .iter()
        .map(|p| match &p.value {
            Some(v) if !v.is_empty() => format!("{}={v}", p.name),
            _ => p.name.clone(),
        })
        .collect();
    let bucket = vhost.map(|b| format!("/{b}")).unwrap_or_default();
    let path = if path.is_empty() { "/" } else { path };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    format!("{bucket}{path}{query}")
}

/// An `x-amz-*` or other header: its canonical name, the lines of its value, and how it is
/// sent (name in mixed case, value padded and folded over lines).
#[derive(Clone, Debug)]
struct Header {
    name: String,
    lines: Vec<String>,
    wire_name: String,
    wire_value: String,
}

impl Header {
    /// The canonical value: the lines joined with one space.
    fn value(&self) -> String {
        self.lines.join(" ")
    }
}

const AMZ_NAMES: &[&str] = &[
    "x-amz-date",
    "x-amz-acl",
    "x-amz-meta-a",
    "x-amz-meta-reviewedby",
    "x-amz-meta-b-c",
    "x-amz-security-token",
    "x-amz-content-sha256",
];
const OTHER_NAMES: &[&str] = &[
    "content-type",
    "content-md5",
    "date",
    "host",
    "user-agent",
    "x-amzdate",
    "x-am",
    "amz-meta",
    "x-ams-meta-a",
];

fn header(names: &'static [&'static str]) -> impl Strategy<Value = Header> {
    let name = prop_oneof![
        3 => select(names).prop_map(String::from),
        1 => "x-amz-meta-[a-z0-9]{1,6}",
    ];
    let line = "[!-~]([ \t!-~]{0,10}[!-~])?";
    let fold = ("[ \t]{0,2}", select(vec!["\r\n", "\n"]), "[ \t]{0,3}")
        .prop_map(|(a, nl, b)| format!("{a}{nl}{b}"));
    (
        name,
        any::<u64>(),
        vec(line, 0..3),
        "[ \t]{0,2}",
        fold,
        "[ \t]{0,2}",
    )
        .prop_map(|(name, case, lines, lead, fold, trail)| {
            let wire_name = mixed_case(&name, case);
            let wire_value = format!("{lead}{}{trail}", lines.join(&fold));
            Header {
                name,
                lines,
                wire_name,
                wire_value,
            }
        })
}

/// `name` with the letters whose bit is set in `mask` upper-cased (header names are
/// case-insensitive).
fn mixed_case(name: &str, mask: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if (mask >> (i % 64)) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn headers() -> impl Strategy<Value = Vec<Header>> {
    vec(
        prop_oneof![3 => header(AMZ_NAMES), 1 => header(OTHER_NAMES)],
        0..10,
    )
}

fn wire(headers: &[Header]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|h| (h.wire_name.as_str(), h.wire_value.as_str()))
        .collect()
}

/// The canonical amz headers as the AWS documentation describes them.
fn documented_amz_headers(headers: &[Header]) -> Vec<(String, String)> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in headers.iter().filter(|h| h.name.starts_with("x-amz-")) {
        by_name.entry(h.name.clone()).or_default().push(h.value());
    }
    by_name
        .into_iter()
        .map(|(n, vs)| (n, vs.join(",")))
        .collect()
}

/// RFC 3986 unreserved characters and `/` as they are, every other UTF-8 byte as `%XX`.
fn documented_key_encoding(key: &str) -> String {
    key.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Headers that decide the first lines of the string to sign.
const FIRST_LINE_HEADERS: &[&str] = &["x-amz-date", "date", "content-md5", "content-type"];

fn request<'a>(
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
    vhost: Option<&'a str>,
) -> SignableRequest<'a> {
    SignableRequest {
        method,
        path,
        query,
        headers,
        virtual_host_bucket: vhost,
    }
}

fn secret() -> impl Strategy<Value = String> {
    // No NUL: HMAC pads short keys with zeros, so "k" and "k\0" are the same key by design.
    "[A-Za-z0-9/+]{1,40}"
}

proptest! {
    #![proptest_config(config(256, "tests/regressions/s3auth.txt"))]

    #[test]
    fn canonical_resource_signs_sorted_sub_resources_only(
        (subs, ordinary) in query(),
        key in "\\PC{0,20}",
        vhost in proptest::option::of("[a-z0-9][a-z0-9.-]{0,10}"),
        seeds in vec(any::<u64>(), 3),
    ) {
        let path = if key.is_empty() { String::new() } else { format!("/{}", encode_key(&key)) };
        let expected = documented_resource(vhost.as_deref(), &path, &subs);
        let params: Vec<Param> = subs.iter().chain(&ordinary).cloned().collect();
        let sign = |params: &[Param]| {
            let query: Vec<String> = params.iter().map(Param::wire).collect();
            canonical_resource(vhost.as_deref(), &path, Some(&query.join("&")))
        };
        let got = sign(&params);
        prop_assert_eq!(&got, &expected);
        // Whatever the order on the wire.
        for seed in seeds {
            let mut shuffled = params.clone();
            Shuffler(seed).shuffle(&mut shuffled);
            prop_assert_eq!(&sign(&shuffled), &got, "{:?}", shuffled);
        }
        // Only sub-resources, in order (read back when no value holds a '&').
        if subs.iter().all(|p| p.value.as_deref().is_none_or(|v| !v.contains('&'))) {
            let signed: Vec<&str> = got
                .split_once('?')
                .map(|(_, q)| q.split('&').map(|kv| kv.split('=').next().unwrap_or(kv)).collect())
                .unwrap_or_default();
            let names: BTreeSet<&str> = subs.iter().map(|p| p.name.as_str()).collect();
            prop_assert_eq!(signed, names.into_iter().collect::<Vec<_>>());
        }
        prop_assert_eq!(
            canonical_resource(vhost.as_deref(), &path, None),
            documented_resource(vhost.as_deref(), &path, &[])
        );
    }

    #[test]
    fn canonical_amz_headers_do_not_depend_on_header_order(
        headers in headers(),
        seed in any::<u64>(),
    ) {
        let expected = documented_amz_headers(&headers);
        let got = canonical_amz_headers(&wire(&headers));
        prop_assert_eq!(&got, &expected);
        let permuted = Shuffler(seed).shuffle_keeping_order_within(&headers, |h| h.name.clone());
        prop_assert_eq!(canonical_amz_headers(&wire(&permuted)), got.clone());
        for (name, value) in &got {
            prop_assert_eq!(name, &name.to_ascii_lowercase());
            prop_assert!(name.starts_with("x-amz-"));
            prop_assert_eq!(value.trim(), value.as_str());
            prop_assert!(!value.contains('\n') && !value.contains('\r'), "{value:?}");
        }
        prop_assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "not sorted and unique: {got:?}");
    }

    #[test]
    fn encoded_keys_escape_all_but_unreserved_and_slash_and_decode_back(
        key in prop_oneof![any::<String>(), "[a-zA-Z0-9/~._ %+-]{0,20}"],
        other in "\\PC{0,10}",
    ) {
        let enc = encode_key(&key);
        prop_assert_eq!(&enc, &documented_key_encoding(&key));
        prop_assert_eq!(percent_decode_str(&enc).decode_utf8().expect("UTF-8"), key.as_str());
        prop_assert_eq!(
            encode_key(&format!("{key}/{other}")),
            format!("{enc}/{}", encode_key(&other))
        );
    }

    #[test]
    fn string_to_sign_has_the_documented_lines(
        method in select(vec!["GET", "PUT", "DELETE", "HEAD", "POST"]),
        date in "[ -~]{0,31}",
        amz_date in proptest::option::of((any::<u64>(), "[ -~]{0,31}")),
        md5 in proptest::option::of("[ -~]{0,24}"),
        content_type in proptest::option::of("[ -~]{0,24}"),
        others in headers(),
        key in "\\PC{0,12}",
        (subs, ordinary) in query(),
    ) {
        // The headers of the first lines are only the ones given here.
        let others: Vec<Header> = others
            .into_iter()
            .filter(|h| !FIRST_LINE_HEADERS.contains(&h.name.as_str()))
            .collect();
        let amz_date = amz_date.map(|(case, value)| (mixed_case("x-amz-date", case), value));
        let mut all: Vec<(&str, &str)> = vec![("Date", date.as_str())];
        all.extend(amz_date.as_ref().map(|(n, v)| (n.as_str(), v.as_str())));
        all.extend(md5.as_deref().map(|v| ("Content-MD5", v)));
        all.extend(content_type.as_deref().map(|v| ("content-type", v)));
        all.extend(wire(&others));
        let path = format!("/bucket/{}", encode_key(&key));
        let q: Vec<String> = subs.iter().chain(&ordinary).map(Param::wire).collect();
        let q = q.join("&");
        let sts = string_to_sign(&request(method, &path, Some(&q), &all, None));

        let lines: Vec<&str> = sts.splitn(5, '\n').collect();
        prop_assert_eq!(lines.len(), 5, "{:?}", sts);
        prop_assert_eq!(lines[0], method);
        prop_assert_eq!(lines[1], md5.as_deref().unwrap_or("").trim());
        prop_assert_eq!(lines[2], content_type.as_deref().unwrap_or("").trim());
        let date_line = if amz_date.is_some() { "" } else { date.trim() };
        prop_assert_eq!(lines[3], date_line);
        let amz: String =
            canonical_amz_headers(&all).iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let resource = documented_resource(None, &path, &subs);
        prop_assert_eq!(lines[4].to_string(), format!("{amz}{resource}"));
    }

    #[test]
    fn any_change_to_the_string_to_sign_or_secret_changes_the_signature(
        sts in "[ -~\n]{0,200}",
        at in any::<Index>(),
        replacement in "[ -~\n]",
        secret_a in secret(),
        secret_b in secret(),
    ) {
        let a = Secret::new(secret_a.clone());
        let sig = signature(&a, &sts);
        prop_assert_eq!(sig.len(), 28, "base64 of 20 bytes: {}", sig);
        prop_assert_eq!(&sig, &signature(&Secret::new(secret_a.clone()), &sts));
        let mut changed = sts.clone().into_bytes();
        if changed.is_empty() {
            changed.extend_from_slice(replacement.as_bytes());
        } else {
            let i = at.index(changed.len());
            if changed[i] == replacement.as_bytes()[0] {
                changed.remove(i);
            } else {
                changed[i] = replacement.as_bytes()[0];
            }
        }
        let changed = String::from_utf8(changed).expect("ASCII");
        prop_assert_ne!(&sig, &signature(&a, &changed), "{:?} vs {:?}", sts, changed);
        if secret_a != secret_b {
            prop_assert_ne!(sig, signature(&Secret::new(secret_b), &sts));
        }
    }
}

#[test]
fn canonical_resource_of_encoded_values_and_bare_names() {
    assert_eq!(
        canonical_resource(
            None,
            "/b/k",
            Some("uploadId=a+b%2Bc&acl&versionId=&format=json")
        ),
        "/b/k?acl&uploadId=a b+c&versionId"
    );
    assert_eq!(
        canonical_resource(Some("b"), "/k", Some("x-id=1&&")),
        "/b/k"
    );
}
