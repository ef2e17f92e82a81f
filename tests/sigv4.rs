//! The v4 signer against an independent implementation, botocore's (PyPI), on the requests the
//! exporter sends: each vector in `tests/fixtures/sigv4/` is signed at its fixed time by both,
//! and the headers they add must be identical. `dev/sigv4-botocore.sh` installs botocore into a
//! virtual environment under target/ on first use, from PyPI, so the comparison is `#[ignore]`d
//! like the other tests that need more than cargo; dev/test.sh runs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use ceph_stats_exporter::s3::sign::{signer, Unsigned};
use ceph_stats_exporter::s3::{Credentials, SignatureVersion, Signing};
use ceph_stats_exporter::secret::Secret;
use serde_json::Value;

fn vectors() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigv4");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {field}"))
}

/// The headers the exporter's v4 signer adds to a vector's request, by lower-case name.
fn exporter_signs(vector: &Value) -> Value {
    let credentials = Credentials {
        access_key: text(vector, "access_key").into(),
        secret_key: Secret::new(text(vector, "secret_key")),
    };
    let signing = Signing {
        version: SignatureVersion::V4,
        region: text(vector, "region").into(),
    };
    let url = text(vector, "url").parse().unwrap();
    let headers: Vec<(String, String)> = vector["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
        .collect();
    let time: SystemTime = text(vector, "time")
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        .into();
    let req = Unsigned {
        method: text(vector, "method"),
        url: &url,
        headers: &headers,
        body: text(vector, "body").as_bytes(),
        virtual_host_bucket: None,
    };
    let added = signer(&credentials, &signing).sign(&req, time).unwrap();
    added
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), Value::from(value)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn every_vector_is_a_request_the_exporter_signs() {
    let paths = vectors();
    assert!(paths.len() >= 8, "{paths:?}");
    for path in paths {
        let vector: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let added = exporter_signs(&vector);
        let auth = added["authorization"].as_str().unwrap();
        assert!(
            auth.starts_with(&format!(
                "AWS4-HMAC-SHA256 Credential={}/",
                text(&vector, "access_key")
            )),
            "{}: {auth}",
            path.display()
        );
    }
}

#[test]
#[ignore = "installs botocore from PyPI: run dev/test.sh"]
fn the_v4_signer_agrees_with_botocore_on_every_vector() {
    let paths = vectors();
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("dev/sigv4-botocore.sh"))
        .args(&paths)
        .output()
        .expect("dev/sigv4-botocore.sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let botocore: Value = serde_json::from_slice(&out.stdout).unwrap();
    for path in paths {
        let vector: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let name = text(&vector, "name");
        assert_eq!(
            exporter_signs(&vector),
            botocore[name],
            "{name}: the exporter (left) and botocore (right) differ"
        );
    }
}
