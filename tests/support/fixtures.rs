//! The files of tests/fixtures/, by their names there. (The unit tests inside the library read
//! the same folder through `src/testutil.rs`, which `cargo test --lib` needs.)

use serde_json::Value;

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The names of the files in the folder `dir` of tests/fixtures/, as [`fixture`] takes them,
/// sorted.
pub fn fixtures_in(dir: &str) -> Vec<String> {
    let path = format!("{}/tests/fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .map(|e| {
            let name = e.unwrap_or_else(|e| panic!("{path}: {e}")).file_name();
            format!("{dir}/{}", name.to_string_lossy())
        })
        .collect();
    names.sort();
    names
}
