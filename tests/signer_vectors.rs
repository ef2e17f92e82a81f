//! The v2 signer against the vectors of tests/fixtures/sigv2/: the worked examples of the AWS
//! documentation and requests the real RGW accepted. Each file holds a request as sent (method,
//! path and query percent-encoded, headers in order, the bucket when it travels in the host
//! name), a key pair, and the string to sign (one item a line) and signature it must give.

mod support;

use ceph_stats_exporter::s3auth::{
    authorization, signature, string_to_sign, Credentials, SignableRequest,
};
use ceph_stats_exporter::secret::Secret;
use serde::Deserialize;

use support::fixtures::{fixture, fixtures_in};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    /// Where the vector comes from.
    source: String,
    method: String,
    path: String,
    query: Option<String>,
    virtual_host_bucket: Option<String>,
    headers: Vec<(String, String)>,
    access_key: String,
    secret_key: String,
    string_to_sign: Vec<String>,
    signature: String,
}

/// What is wrong with the signer on `v`, if anything.
fn check(v: &Vector) -> Vec<String> {
    let headers: Vec<(&str, &str)> = v
        .headers
        .iter()
        .map(|(n, value)| (n.as_str(), value.as_str()))
        .collect();
    let req = SignableRequest {
        method: &v.method,
        path: &v.path,
        query: v.query.as_deref(),
        headers: &headers,
        virtual_host_bucket: v.virtual_host_bucket.as_deref(),
    };
    let creds = Credentials {
        access_key: v.access_key.clone(),
        secret_key: Secret::new(v.secret_key.clone()),
    };
    let expected = v.string_to_sign.join("\n");
    let mut wrong = Vec::new();
    let sts = string_to_sign(&req);
    if sts != expected {
        wrong.push(format!("string to sign {sts:?}, expected {expected:?}"));
    }
    let sig = signature(&creds.secret_key, &expected);
    if sig != v.signature {
        wrong.push(format!("signature {sig}, expected {}", v.signature));
    }
    let auth = authorization(&creds, &req);
    if auth != format!("AWS {}:{}", v.access_key, v.signature) {
        wrong.push(format!("authorization {auth}"));
    }
    wrong
}

#[test]
fn every_vector_signs_as_expected() {
    let names = fixtures_in("sigv2");
    assert!(!names.is_empty(), "no vectors in tests/fixtures/sigv2/");
    let mut failures = Vec::new();
    for name in &names {
        let v: Vector = serde_json::from_slice(&fixture(name))
            .unwrap_or_else(|e| panic!("{name} is not a vector: {e}"));
        for wrong in check(&v) {
            failures.push(format!("{name} ({}): {wrong}", v.source));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
