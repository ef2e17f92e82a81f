//! Running the exporter binary against the fakes of `fake.rs`: its keys and a config for them,
//! one `--once` run, or the daemon started, signalled and stopped, and its listener.

use std::time::{Duration, Instant};

use super::fake::Fake;

pub const ACCESS_KEY: &str = "FAULTSACCESSKEY0001";
/// Searched for in every run's output: it must never be printed.
pub const SECRET_KEY: &str = "SECRET-must-not-leak-1234";

/// A config writing to `s3`; each job is enabled when it has a source. `rgw_extra` is added to
/// the `[rgw]` table.
pub fn config(s3: &Fake, usage: Option<&Fake>, pool: Option<&Fake>, rgw_extra: &str) -> String {
    // No retries unless a test asks for them: each case here is about one answer.
    let mut c = format!(
        "[s3]\nendpoint = \"{}\"\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n\
         retries = 0\n",
        s3.url
    );
    if let Some(rgw) = usage {
        c.push_str(&format!(
            "\n[rgw]\nendpoint = \"{}\"\n{rgw_extra}\n\n[jobs.rgw_usage]\nevery = \"1h\"\n",
            rgw.url
        ));
    }
    if let Some(source) = pool {
        c.push_str(&format!(
            "\n[jobs.pool_df]\nevery = \"10s\"\n\n[jobs.pool_df.source]\ntype = \"http\"\n\
             url = \"{}/api/v0.1/osd/df.json?output_method=tree\"\n",
            source.url
        ));
    }
    c
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    /// The log line that reports `job`'s failure.
    pub fn failure_of(&self, job: &str) -> &str {
        let field = format!("job=\"{job}\"");
        self.stderr
            .lines()
            .find(|l| l.contains("ERROR") && l.contains("failed: ") && l.contains(&field))
            .unwrap_or_else(|| panic!("no failure logged for {job}:\n{}", self.stderr))
    }
}

/// Runs `ceph-stats-exporter --once ARGS` on `config`, and checks what must hold for any run:
/// it ends, does not panic, prints no secret and no colour codes into a pipe.
pub async fn run(config: &str, args: &[&str]) -> Outcome {
    run_in(tempfile::tempdir().unwrap().path(), config, args).await
}

/// Like [`run`], with the config and the state directory (spool, job state) in `dir`, so that
/// consecutive runs share them.
pub async fn run_in(dir: &std::path::Path, config: &str, args: &[&str]) -> Outcome {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    let started = Instant::now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ceph-stats-exporter"))
        .arg("--config")
        .arg(&path)
        .arg("--once")
        .args(args)
        // The default log level and plain text lines, whatever the caller's environment says.
        .env_remove("CEPH_STATS_EXPORTER_LOG")
        .env_remove("JOURNAL_STREAM")
        .env("STATE_DIRECTORY", dir.join("state"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the exporter did not finish within 60s")
        .unwrap();
    let out = Outcome {
        code: output
            .status
            .code()
            .expect("the exporter was killed by a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    };
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains("panicked"), "{all}");
    assert!(
        !all.contains(SECRET_KEY),
        "the secret key was printed:\n{all}"
    );
    assert!(
        !out.stderr.contains('\x1b'),
        "escape codes in a pipe:\n{all}"
    );
    out
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the daemon on `config`, written into `dir` (which also holds its state).
pub fn spawn_daemon(dir: &std::path::Path, config: &str) -> tokio::process::Child {
    std::fs::write(dir.join("config.toml"), config).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ceph-stats-exporter"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .env("STATE_DIRECTORY", dir.join("state"))
        .env_remove("CEPH_STATS_EXPORTER_LOG")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

pub fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap()
        .success());
}

/// SIGTERM; the daemon must exit 0 within 30 s. Returns its log.
pub async fn stop_daemon(child: tokio::process::Child) -> String {
    signal(&child, "TERM");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the daemon stops after SIGTERM")
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(
        !log.contains("panicked") && !log.contains(SECRET_KEY),
        "{log}"
    );
    log
}

/// Whether the listener on `port` answers `/healthz` (with any status).
pub async fn listening(port: u16) -> bool {
    reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_ok()
}

/// Waits up to 10 s for `listening(port)` to be `want`.
pub async fn await_listening(port: u16, want: bool) -> bool {
    for _ in 0..100 {
        if listening(port).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
