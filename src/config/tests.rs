//! The config's rules, each with the line and key an operator sees when breaking it.

use std::path::Path;

use chrono_tz::Tz;

use super::*;
use crate::ceph_source::CephSource;
use crate::jobs::rgw_usage;
use crate::s3::retry::RetryPolicy;
use crate::s3::{SignatureVersion, Signing};
use crate::snapshot::Labels;
use crate::window::WindowLength;

const MINIMAL: &str = r#"
[s3]
endpoint = "http://127.0.0.1:8000"
access_key = "AK"
secret_key = "SK-very-secret"

[jobs.pool_df]
every = "10s"

[jobs.rgw_usage]
schedule = "0 5 * * * *"
"#;

/// The `pool_df` instance's common settings and its own.
fn pool(c: &Config) -> PoolView {
    match c.job("pool_df").map(|j| (&j.common, &j.kind)) {
        Some((common, JobKind::PoolDf(s))) => PoolView {
            common: common.clone(),
            source: s.source.clone(),
        },
        _ => panic!("no pool_df job"),
    }
}

struct PoolView {
    common: JobCommon,
    source: crate::ceph_source::CephSource,
}

/// The `rgw_usage` instance's common settings and its own.
fn usage(c: &Config) -> UsageView {
    match c.job("rgw_usage").map(|j| (&j.common, &j.kind)) {
        Some((common, JobKind::RgwUsage(s))) => UsageView {
            common: common.clone(),
            settings: s.clone(),
        },
        _ => panic!("no rgw_usage job"),
    }
}

struct UsageView {
    common: JobCommon,
    settings: rgw_usage::Settings,
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("test.toml"), text)
}

#[test]
fn minimal_config_gets_the_original_tools_defaults() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.bucket, "info");
    assert_eq!(c.time_zone, Tz::UTC);
    let p = pool(&c);
    assert_eq!(p.common.key.as_str(), "pool.%Y-%m-%d/%H/%M/%S");
    assert_eq!(p.common.schedule.expr(), "*/10 * * * * *");
    assert_eq!(p.common.format, Format::Text);
    let u = usage(&c);
    assert_eq!(u.settings.window, WindowLength::Hours(1));
    assert_eq!(u.settings.rgw.url.as_str(), "http://127.0.0.1:8000/");
    assert_eq!(
        u.settings.rgw.credentials.secret_key.expose(),
        "SK-very-secret"
    );
}

fn invalid(text: &str) -> (Option<usize>, String, String) {
    match load(text).unwrap_err() {
        ConfigError::Invalid {
            line, key, message, ..
        } => (line, key, message),
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn bad_values_name_the_key_and_the_line() {
    let (line, key, msg) = invalid(&MINIMAL.replace("0 5 * * * *", "0 5 * * *"));
    assert_eq!((line, key.as_str()), (Some(11), "jobs.rgw_usage.schedule"));
    assert!(msg.contains("6 fields"), "{msg}");

    let (line, key, _) = invalid(&MINIMAL.replace("\"10s\"", "\"7m\""));
    assert_eq!((line, key.as_str()), (Some(8), "jobs.pool_df.every"));

    let text = MINIMAL.replace("[jobs.rgw_usage]\n", "[jobs.rgw_usage]\nwindow = \"90m\"\n");
    let (line, key, _) = invalid(&text);
    assert_eq!((line, key.as_str()), (Some(11), "jobs.rgw_usage.window"));

    let text = format!("[exporter]\ntime_zone = \"Mars/Olympus\"\n{MINIMAL}");
    let (line, key, _) = invalid(&text);
    assert_eq!((line, key.as_str()), (Some(2), "exporter.time_zone"));

    let text = MINIMAL.replace(
        "every = \"10s\"",
        "every = \"10s\"\nkey = \"pool.%Y-%m-%d/%H/%M\"",
    );
    let (_, key, msg) = invalid(&text);
    assert_eq!(key, "jobs.pool_df.key");
    assert!(msg.contains("same key"), "{msg}");
}

/// MINIMAL with `lines` added to the pool_df job (after line 8).
fn pool_df_with(lines: &str) -> String {
    MINIMAL.replace("every = \"10s\"\n", &format!("every = \"10s\"\n{lines}\n"))
}

#[test]
fn key_time_zone_renders_keys_in_that_zone() {
    let fire = chrono::DateTime::parse_from_rfc3339("2026-11-22T13:05:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let c = load(&pool_df_with("key_time_zone = \"Asia/Shanghai\"")).unwrap();
    let key = pool(&c).common.key;
    assert_eq!(key.zone(), "Asia/Shanghai".parse::<Tz>().unwrap());
    assert_eq!(key.render(fire), "pool.2026-11-22/21/05/00");
    // The default stays UTC, and the exporter's time zone does not move keys.
    let c = load(&format!(
        "[exporter]\ntime_zone = \"Europe/Berlin\"\n{MINIMAL}"
    ))
    .unwrap();
    assert_eq!(pool(&c).common.key.zone(), Tz::UTC);
    assert_eq!(usage(&c).common.key.zone(), Tz::UTC);

    let (line, key, msg) = invalid(&pool_df_with("key_time_zone = \"Mars/Olympus\""));
    assert_eq!(
        (line, key.as_str()),
        (Some(9), "jobs.pool_df.key_time_zone")
    );
    assert!(msg.contains("Mars/Olympus"), "{msg}");
}

#[test]
fn a_key_zone_whose_clocks_go_back_is_refused_unless_accepted_or_offset_keyed() {
    let (line, key, msg) = invalid(&pool_df_with("key_time_zone = \"Europe/Berlin\""));
    assert_eq!(
        (line, key.as_str()),
        (Some(9), "jobs.pool_df.key_time_zone")
    );
    assert!(
        msg.contains("clocks go back")
            && msg.contains("%z")
            && msg.contains("key_time_zone_ambiguous = \"accept\""),
        "{msg}"
    );
    // The usage job is checked the same way.
    let text = MINIMAL.replace(
        "[jobs.rgw_usage]\n",
        "[jobs.rgw_usage]\nkey_time_zone = \"America/New_York\"\n",
    );
    let (line, key, _) = invalid(&text);
    assert_eq!(
        (line, key.as_str()),
        (Some(11), "jobs.rgw_usage.key_time_zone")
    );

    let accepted =
        pool_df_with("key_time_zone = \"Europe/Berlin\"\nkey_time_zone_ambiguous = \"accept\"");
    let key = pool(&load(&accepted).unwrap()).common.key;
    assert_eq!(key.zone(), "Europe/Berlin".parse::<Tz>().unwrap());
    let offset_keyed =
        pool_df_with("key_time_zone = \"America/New_York\"\nkey = \"pool.%Y-%m-%d/%H/%M/%S%z\"");
    assert!(load(&offset_keyed).is_ok());
    // "refuse" is the default, and may be written out.
    let refused =
        pool_df_with("key_time_zone = \"Europe/Berlin\"\nkey_time_zone_ambiguous = \"refuse\"");
    assert!(load(&refused).is_err());
    let err = load(&accepted.replace("\"accept\"", "\"yes\""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("yes") && err.contains("line 10"), "{err}");
}

#[test]
fn typos_and_wrong_types_are_parse_errors_with_position() {
    let err = load(&MINIMAL.replace("every =", "evry ="))
        .unwrap_err()
        .to_string();
    assert!(err.contains("evry") && err.contains("line 8"), "{err}");
    let err = load(&MINIMAL.replace("[jobs.pool_df]", "[jobs.pool_df]\nformat = \"xml\""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("xml"), "{err}");
}

#[test]
fn retry_policy_is_read_and_rgw_inherits_it() {
    let c = load(&MINIMAL.replace(
        "secret_key = \"SK-very-secret\"",
        "secret_key = \"SK-very-secret\"\nretries = 2\nretry_base = \"10ms\"",
    ))
    .unwrap();
    let want = RetryPolicy {
        retries: 2,
        base: Duration::from_millis(10),
        max: Duration::from_secs(20),
    };
    assert_eq!(c.s3.retry, want);
    assert_eq!(usage(&c).settings.rgw.retry, want);
    let err = load(&MINIMAL.replace("access_key = \"AK\"", "access_key = \"AK\"\nretrys = 2"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("retrys"), "{err}");
    let (line, key, _) = invalid(&MINIMAL.replace("http://127.0.0.1:8000", "ftp://x"));
    assert_eq!((line, key.as_str()), (Some(3), "s3.endpoint"));
}

#[test]
fn secrets_from_env_and_missing_env_is_named() {
    let text = MINIMAL.replace(
        "\"SK-very-secret\"",
        "{ env = \"CSE_TEST_UNSET_SECRET_VAR\" }",
    );
    let (_, key, msg) = invalid(&text);
    assert_eq!(key, "s3.secret_key");
    assert!(msg.contains("CSE_TEST_UNSET_SECRET_VAR"));
}

#[test]
fn parse_errors_on_a_secret_line_never_quote_the_secret() {
    let broken = [
        r#"secret_key = "SK-very-secret"#,
        r#"secret_key = "SK-very-secret" trailing"#,
        r#"secret_key = "SK-very-secret\q""#,
        r#"secret_key = 'SK-very-secret"#,
        r#"secret_key = SK-very-secret"#,
        r#"access_key = ["SK-very-secret"]"#,
    ];
    for line in broken {
        let text = MINIMAL.replace(r#"secret_key = "SK-very-secret""#, line);
        let err = load(&text).unwrap_err().to_string();
        assert!(!err.contains("SK-very"), "{line}: {err}");
        assert!(err.contains("test.toml line 5"), "{line}: {err}");
    }
}

#[test]
fn a_source_url_is_described_without_its_password() {
    let text = MINIMAL.replace(
        "every = \"10s\"\n",
        "every = \"10s\"\n[jobs.pool_df.source]\ntype = \"http\"\n\
         url = \"http://admin:hunter2@127.0.0.1:8080/osd\"\n",
    );
    let c = load(&text).unwrap();
    let described = pool(&c).source.describe();
    assert_eq!(described, "http://admin:***@127.0.0.1:8080/osd");
}

#[test]
fn a_world_readable_file_with_inline_secrets_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    let mode = |m| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m));
    mode(0o644).unwrap();
    let warnings = Config::load(&path).unwrap().warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("mode 644") && warnings[0].contains("chmod 600"));
    mode(0o640).unwrap();
    assert!(Config::load(&path).unwrap().warnings.is_empty());
    // Secrets from the environment: the file's mode does not matter.
    let from_env = MINIMAL
        .replace(r#""AK""#, r#"{ env = "PATH" }"#)
        .replace(r#""SK-very-secret""#, r#"{ env = "PATH" }"#);
    std::fs::write(&path, from_env).unwrap();
    mode(0o644).unwrap();
    assert!(Config::load(&path).unwrap().warnings.is_empty());
}

#[test]
fn max_buckets_defaults_and_must_be_positive() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(
        usage(&c).settings.max_buckets,
        crate::usage::DEFAULT_MAX_BUCKETS
    );
    let text = MINIMAL.replace(
        "schedule = \"0 5 * * * *\"",
        "schedule = \"0 5 * * * *\"\nmax_buckets = 500",
    );
    assert_eq!(usage(&load(&text).unwrap()).settings.max_buckets, 500);
    let (line, key, msg) = invalid(&text.replace("500", "0"));
    assert_eq!(
        (line, key.as_str()),
        (Some(12), "jobs.rgw_usage.max_buckets")
    );
    assert!(msg.contains("at least 1"), "{msg}");
}

#[test]
fn debug_output_never_holds_the_secret() {
    let c = load(MINIMAL).unwrap();
    assert!(!format!("{c:?}").contains("SK-very-secret"));
}

#[test]
fn http_and_restful_sources_load() {
    let text = MINIMAL.replace(
        "every = \"10s\"\n",
        "every = \"10s\"\n[jobs.pool_df.source]\ntype = \"http\"\nurl = \"http://127.0.0.1:5000/df\"\ntimeout = \"3s\"\n",
    );
    let p = pool(&load(&text).unwrap());
    assert!(
        matches!(&p.source, CephSource::Http { url, timeout, .. }
            if url.as_str() == "http://127.0.0.1:5000/df" && *timeout == Duration::from_secs(3)),
        "{:?}",
        p.source
    );
    let text = text.replace(
        "type = \"http\"",
        "type = \"restful\"\nuser = \"exporter\"\nkey = \"k\"",
    );
    let p = pool(&load(&text).unwrap());
    assert!(
        matches!(p.source, CephSource::Restful { .. }),
        "{:?}",
        p.source
    );
    let (line, key, _) = invalid(&text.replace("http://127.0.0.1:5000/df", "ftp://x"));
    // At its table: the span of a value inside a tagged enum is lost.
    assert_eq!((line, key.as_str()), (Some(9), "jobs.pool_df.source.url"));
}

#[test]
fn disabled_jobs_are_absent() {
    let c = load(&MINIMAL.replace("[jobs.pool_df]", "[jobs.pool_df]\nenabled = false")).unwrap();
    assert!(c.job("pool_df").is_none());
    assert!(c.job("rgw_usage").is_some());
}

// ------------------------------------------------------------------ the environment, injected

fn fixed(vars: &[(&str, &str)], files: &[(&str, &str)]) -> env::Fixed {
    env::Fixed {
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        files: files
            .iter()
            .map(|(k, v)| (std::path::PathBuf::from(k), v.to_string()))
            .collect(),
        now: None,
    }
}

fn with_secret(source: &str) -> String {
    MINIMAL.replace(r#""SK-very-secret""#, source)
}

#[test]
fn secrets_come_from_the_environment_files_and_credentials_it_is_given() {
    let env = fixed(
        &[("SK", "from-env"), ("CREDENTIALS_DIRECTORY", "/run/cred")],
        &[
            ("/etc/sk", "from-file\n"),
            ("/run/cred/sk", "from-systemd\r\n"),
        ],
    );
    let secret = |source: &str| {
        let c = Config::from_toml_in(Path::new("t.toml"), &with_secret(source), &env).unwrap();
        c.s3.credentials.secret_key.expose().to_string()
    };
    assert_eq!(secret(r#"{ env = "SK" }"#), "from-env");
    assert_eq!(secret(r#"{ file = "/etc/sk" }"#), "from-file");
    assert_eq!(secret(r#"{ credential = "sk" }"#), "from-systemd");
}

#[test]
fn a_secret_that_cannot_be_read_names_its_source_not_a_value() {
    let env = fixed(&[], &[]);
    for (source, says) in [
        (
            r#"{ env = "NOPE" }"#,
            "environment variable NOPE is not set",
        ),
        (r#"{ file = "/nonexistent/sk" }"#, "/nonexistent/sk"),
        (r#"{ credential = "sk" }"#, "LoadCredential"),
        (r#""""#, "inline value is empty"),
    ] {
        let err = Config::from_toml_in(Path::new("t.toml"), &with_secret(source), &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("s3.secret_key") && err.contains(says),
            "{source}: {err}"
        );
    }
}

#[test]
fn check_gets_every_unreadable_secret_apart_and_a_config_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let text = MINIMAL
        .replace(r#""AK""#, r#"{ env = "NO_AK" }"#)
        .replace(r#""SK-very-secret""#, r#"{ env = "NO_SK" }"#);
    std::fs::write(&path, text).unwrap();
    let (config, errors) = Config::load_in(&path, &fixed(&[], &[])).unwrap();
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("s3.access_key") && errors[0].contains("NO_AK"));
    assert!(errors[1].contains("s3.secret_key") && errors[1].contains("NO_SK"));
    assert_eq!(config.jobs.len(), 2);
    // Loading for a run refuses the same file.
    assert!(Config::load(&path).is_err());
}

#[test]
fn the_state_directory_comes_from_systemd_unless_the_file_says() {
    let env = fixed(&[("STATE_DIRECTORY", "/var/lib/x")], &[]);
    let c = Config::from_toml_in(Path::new("t.toml"), MINIMAL, &env).unwrap();
    assert_eq!(c.state_dir, Path::new("/var/lib/x"));
    let text = format!("[exporter]\nstate_dir = \"/srv/y\"\n{MINIMAL}");
    let c = Config::from_toml_in(Path::new("t.toml"), &text, &env).unwrap();
    assert_eq!(c.state_dir, Path::new("/srv/y"));
    let c = Config::from_toml_in(Path::new("t.toml"), MINIMAL, &fixed(&[], &[])).unwrap();
    assert_eq!(c.state_dir, Path::new("/var/lib/ceph-stats-exporter"));
}

#[test]
fn an_unknown_key_names_its_own_line() {
    for (table, at) in [
        ("[s3]\n", 3),
        ("[jobs.pool_df]\n", 8),
        ("[jobs.rgw_usage]\n", 11),
    ] {
        let text = MINIMAL.replacen(table, &format!("{table}buckett = \"a\"\n"), 1);
        let err = load(&text).unwrap_err().to_string();
        assert!(err.contains("buckett"), "{err}");
        assert!(
            err.contains(&format!("test.toml line {at}:")),
            "{table}: {err}"
        );
    }
}

// ------------------------------------------------------------------ job instances

const TWO_ZONES: &str = r#"
[s3]
endpoint = "http://127.0.0.1:8000"
access_key = "AK"
secret_key = "SK"

[rgw]
timeout = "7s"

[jobs.capacity_main]
kind = "pool_df"
every = "5m"
key = "main/pool.%Y-%m-%d/%H/%M/%S"
cluster = "main"

[jobs.usage_zone_a]
kind = "rgw_usage"
schedule = "0 5 * * * *"
key = "a/usage.%Y-%m-%d/%H"
cluster = "main"
zone = "zone-a"
rgw = { endpoint = "http://127.0.0.1:8001", access_key = "A_KEY", secret_key = { env = "A_SECRET" } }

[jobs.usage_zone_b]
kind = "rgw_usage"
schedule = "0 5 * * * *"
key = "b/usage.%Y-%m-%d/%H"
zone = "zone-b"
uid = "bob"
"#;

#[test]
fn jobs_are_named_instances_of_a_kind_each_with_its_endpoint_and_labels() {
    let env = fixed(&[("A_SECRET", "a-secret")], &[]);
    let c = Config::from_toml_in(Path::new("t.toml"), TWO_ZONES, &env).unwrap();
    let names: Vec<&str> = c.jobs.iter().map(|j| &*j.name).collect();
    assert_eq!(names, ["capacity_main", "usage_zone_a", "usage_zone_b"]);
    let zone = |name: &str| match &c.job(name).unwrap().kind {
        JobKind::RgwUsage(s) => s.clone(),
        JobKind::PoolDf(_) => panic!("{name} is not a usage job"),
    };
    let a = zone("usage_zone_a");
    assert_eq!(a.rgw.url.as_str(), "http://127.0.0.1:8001/");
    assert_eq!(a.rgw.credentials.access_key, "A_KEY");
    assert_eq!(a.rgw.credentials.secret_key.expose(), "a-secret");
    // What the instance leaves out comes from [rgw], then [s3].
    assert_eq!(a.rgw.timeout, std::time::Duration::from_secs(7));
    let b = zone("usage_zone_b");
    assert_eq!(b.rgw.url.as_str(), "http://127.0.0.1:8000/");
    assert_eq!(b.rgw.credentials.access_key, "AK");
    assert_eq!(b.uid.as_deref(), Some("bob"));
    let labels = |name: &str| c.job(name).unwrap().labels.clone();
    assert_eq!(
        labels("usage_zone_a"),
        Labels {
            cluster: Some("main".into()),
            zone: Some("zone-a".into())
        }
    );
    assert_eq!(labels("usage_zone_b").cluster, None);
    assert_eq!(labels("capacity_main").zone, None);
}

#[test]
fn an_instance_must_say_its_kind_unless_named_after_it() {
    let text = MINIMAL.replace("[jobs.pool_df]", "[jobs.capacity]");
    let (line, key, msg) = invalid(&text);
    assert_eq!((line, key.as_str()), (Some(7), "jobs.capacity"));
    assert!(msg.contains("kind = \"pool_df\""), "{msg}");
    let text = MINIMAL.replace("[jobs.pool_df]", "[jobs.capacity]\nkind = \"osd_df\"");
    let (line, key, msg) = invalid(&text);
    assert_eq!((line, key.as_str()), (Some(8), "jobs.capacity.kind"));
    assert!(msg.contains("unknown kind \"osd_df\""), "{msg}");
}

#[test]
fn instance_names_and_labels_are_kept_plain() {
    let text = MINIMAL.replace("[jobs.pool_df]", "[jobs.\"../x\"]\nkind = \"pool_df\"");
    let (_, key, msg) = invalid(&text);
    assert_eq!(key, "jobs.../x");
    assert!(msg.contains("1 to 64 ASCII letters"), "{msg}");
    let text = MINIMAL.replace("[jobs.pool_df]", "[jobs.pool_df]\nzone = \"a\\nb\"");
    let (line, key, _) = invalid(&text);
    assert_eq!((line, key.as_str()), (Some(8), "jobs.pool_df.zone"));
}

#[test]
fn keys_of_another_kind_are_named() {
    let text = MINIMAL.replace("[jobs.pool_df]", "[jobs.pool_df]\nuid = \"alice\"");
    let (line, key, msg) = invalid(&text);
    assert_eq!((line, key.as_str()), (Some(8), "jobs.pool_df.uid"));
    assert!(msg.contains("not a key of a pool_df job"), "{msg}");
    let text = MINIMAL.replace("[jobs.rgw_usage]", "[jobs.rgw_usage]\ndetail = \"osds\"");
    let (_, key, msg) = invalid(&text);
    assert_eq!(key, "jobs.rgw_usage.detail");
    assert!(msg.contains("not a key of a rgw_usage job"), "{msg}");
}

#[test]
fn two_instances_under_one_key_template_are_refused() {
    let env = fixed(&[("A_SECRET", "x")], &[]);
    let text = TWO_ZONES.replace(
        "key = \"b/usage.%Y-%m-%d/%H\"",
        "key = \"a/usage.%Y-%m-%d/%H\"",
    );
    let err = Config::from_toml_in(Path::new("t.toml"), &text, &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("jobs.usage_zone_b.key") && err.contains("jobs.usage_zone_a"),
        "{err}"
    );
}

#[test]
fn gzip_needs_a_gz_key_and_records_need_entries() {
    let text = MINIMAL.replace(
        "[jobs.rgw_usage]\n",
        "[jobs.rgw_usage]\nformat = \"records\"\ncompression = \"gzip\"\n",
    );
    let (line, key, msg) = invalid(&text);
    assert_eq!(
        (line, key.as_str()),
        (Some(12), "jobs.rgw_usage.compression")
    );
    assert!(msg.contains(".gz"), "{msg}");
    let ok = text.replace(
        "compression = \"gzip\"\n",
        "compression = \"gzip\"\nkey = \"usage/date=%Y-%m-%d/hour=%H/usage.jsonl.gz\"\n",
    );
    let u = usage(&load(&ok).unwrap());
    assert_eq!(
        (u.common.format, u.common.compression),
        (Format::Records, crate::format::Compression::Gzip)
    );
    let (_, key, msg) = invalid(&ok.replace(
        "[jobs.rgw_usage]\n",
        "[jobs.rgw_usage]\nshow_entries = false\n",
    ));
    assert_eq!(key, "jobs.rgw_usage.show_entries");
    assert!(msg.contains("records"), "{msg}");
}

#[test]
fn signature_and_region_default_to_v2_and_rgw_inherits_each_alone() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.s3.signing, Signing::default());
    assert_eq!(c.s3.signing.version, SignatureVersion::V2);
    assert_eq!(c.s3.signing.region, "us-east-1");
    let with = |s3: &str, rgw: &str| {
        let text = MINIMAL
            .replace(
                "secret_key = \"SK-very-secret\"",
                &format!("secret_key = \"SK-very-secret\"\n{s3}"),
            )
            .replace("[jobs.pool_df]", &format!("[rgw]\n{rgw}\n[jobs.pool_df]"));
        let c = load(&text).unwrap();
        (c.s3.signing.clone(), usage(&c).settings.rgw.signing)
    };
    let v4 = |region: &str| Signing {
        version: SignatureVersion::V4,
        region: region.into(),
    };
    let v2 = |region: &str| Signing {
        version: SignatureVersion::V2,
        region: region.into(),
    };
    assert_eq!(
        with("signature = \"v4\"", ""),
        (v4("us-east-1"), v4("us-east-1"))
    );
    assert_eq!(
        with(
            "signature = \"v4\"\nregion = \"default\"",
            "region = \"zg2\""
        ),
        (v4("default"), v4("zg2"))
    );
    assert_eq!(
        with("region = \"eu-west-1\"", "signature = \"v4\""),
        (v2("eu-west-1"), v4("eu-west-1"))
    );
    assert_eq!(
        with("signature = \"v4\"", "signature = \"v2\""),
        (v4("us-east-1"), v2("us-east-1"))
    );
    let err = load(&MINIMAL.replace(
        "access_key = \"AK\"",
        "access_key = \"AK\"\nsignature = \"v3\"",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 5") && err.contains("v3"), "{err}");
    for bad in ["", "us east", "a/b"] {
        let (line, key, _) = invalid(&MINIMAL.replace(
            "access_key = \"AK\"",
            &format!("access_key = \"AK\"\nregion = \"{bad}\""),
        ));
        assert_eq!((line, key.as_str()), (Some(5), "s3.region"), "{bad:?}");
    }
}

#[test]
fn trimming_is_off_by_default_and_on_with_trim_after() {
    assert_eq!(usage(&load(MINIMAL).unwrap()).settings.trim, None);
    let on = MINIMAL.replace(
        "schedule = \"0 5 * * * *\"\n",
        "schedule = \"0 5 * * * *\"\ntrim_after = \"90d\"\n",
    );
    let t = usage(&load(&on).unwrap()).settings.trim.unwrap();
    assert_eq!((t.after.as_secs(), t.limit), (90 * 86_400, 24));
    let limited = on.replace("trim_after", "trim_limit = 3\ntrim_after");
    assert_eq!(
        usage(&load(&limited).unwrap()).settings.trim.unwrap().limit,
        3
    );
    let (line, key, msg) = invalid(&on.replace("trim_after", "trim_limit = 0\ntrim_after"));
    assert_eq!(
        (line, key.as_str()),
        (Some(12), "jobs.rgw_usage.trim_limit")
    );
    assert!(msg.contains("at least 1"), "{msg}");
    let (_, key, msg) = invalid(&pool_df_with("trim_after = \"1d\""));
    assert_eq!(key, "jobs.pool_df.trim_after");
    assert!(msg.contains("not a key of a pool_df job"), "{msg}");
}
