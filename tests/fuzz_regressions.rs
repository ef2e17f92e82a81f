//! Replays the fuzzing corpus under plain `cargo test`: every seed (`tests/fixtures/`,
//! `config.example.toml`, `fuzz/seeds/<target>/`) and every crash the fuzzer found
//! (`tests/regressions/fuzz/<target>/`) goes through the same target function as under AFL++
//! (`fuzz/src/lib.rs`, compiled in here), so a fixed crash stays fixed. `dev/fuzz.sh` runs the
//! fuzzer itself; see the README's "Fuzzing".

#[path = "../fuzz/src/lib.rs"]
mod fuzz_targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fuzz_targets::{Target, TARGETS};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir` (none when it does not exist), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

/// What a target is fed: its seeds, every fixture (any input must be survived) and its crashes.
fn corpus(target: &str) -> Vec<PathBuf> {
    let mut all = files(&root().join("tests/fixtures"));
    all.push(root().join("config.example.toml"));
    all.extend(files(&root().join("fuzz/seeds").join(target)));
    all.extend(files(&root().join("tests/regressions/fuzz").join(target)));
    all
}

/// Runs `target` on `file`: `Ok(accepted)`, or the panic's message.
fn run(target: Target, file: &Path) -> Result<bool, String> {
    let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    std::panic::catch_unwind(|| target(&data)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// A kept hang must now finish within the second after which AFL++ gave up on it (it takes
/// milliseconds, even unoptimized).
const HANG_BOUND: Duration = Duration::from_secs(1);

#[test]
fn no_target_panics_on_its_corpus_or_its_crashes_or_hangs_on_its_hangs() {
    let mut failures = vec![];
    for (name, target) in TARGETS {
        for file in corpus(name) {
            let started = Instant::now();
            if let Err(panic) = run(target, &file) {
                failures.push(format!("{name} on {}: {panic}", file.display()));
            }
            let took = started.elapsed();
            let hang = file
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("hang-"));
            if hang && took > HANG_BOUND {
                failures.push(format!("{name} on {}: took {took:?}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn real_answers_and_generated_seeds_are_accepted_by_their_target() {
    let fixtures = root().join("tests/fixtures");
    let accepted = |target: &str, file: &Path| {
        let (_, f) = TARGETS
            .iter()
            .find(|(n, _)| *n == target)
            .expect("a target");
        run(*f, file).unwrap_or_else(|p| panic!("{target} on {}: {p}", file.display()))
    };
    for (target, fixture, want) in [
        ("usage", "admin-usage-all.json", true),
        ("usage", "admin-usage-window-datetime.json", true),
        ("usage", "admin-usage-window-past.json", true),
        // Summary only: refused when entries are asked for (the target's main parse).
        ("usage", "admin-usage-summary-only.json", false),
        ("osd_df", "ceph-osd-df-tree.json", true),
        ("osd_df", "ceph-osd-df-tree.osd1-down.json", true),
        ("osd_df", "ceph-osd-df-tree.second-root.json", true),
        (
            "osd_df",
            "ceph-osd-df-tree.right-after-mgr-restart.json",
            false,
        ),
        ("s3_error", "admin-error-bad-signature.json", true),
        ("s3_error", "admin-error-no-usage-caps.json", true),
        ("s3_error", "admin-error-time-skewed.json", true),
        ("s3_error", "admin-error-unknown-access-key.json", true),
        ("s3_error", "s3-error-bad-signature.xml", true),
        ("s3_error", "s3-error-no-such-bucket.xml", true),
        ("s3_error", "s3-error-time-skewed.xml", true),
        ("s3_error", "ceph-osd-df-tree.json", false),
    ] {
        let got = accepted(target, &fixtures.join(fixture));
        assert_eq!(got, want, "{target} on {fixture}");
    }
    for target in ["config", "spool_header", "state"] {
        let seeds = files(&root().join("fuzz/seeds").join(target));
        assert!(!seeds.is_empty(), "{target} has seeds");
        for seed in seeds {
            assert!(accepted(target, &seed), "{target} on {}", seed.display());
        }
    }
}
