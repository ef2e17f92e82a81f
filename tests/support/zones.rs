//! The two-zone cluster (dev/ceph/zones.sh on a second start.sh cluster, started by
//! dev/test.sh, which names its env file in `ZONES_ENV`): its environment, requests through
//! either gateway, configs for it, and its usage logs according to `radosgw-admin`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::cluster::{ceph_like_json, exporter_cmd, s3_cmd, settled, stdout, User};

/// The two-zone cluster's env file, read as `export NAME=VALUE ...  # comment` lines.
pub struct Zones(BTreeMap<String, String>);

impl Zones {
    pub fn load() -> Zones {
        let path = std::env::var("ZONES_ENV").unwrap_or_else(|_| {
            panic!(
                "ZONES_ENV is not set: run these tests through dev/test.sh (it starts the cluster)"
            )
        });
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let vars = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .flat_map(|l| l.split("  #").next().unwrap_or_default().split_whitespace())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Zones(vars)
    }

    pub fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in ZONES_ENV"))
    }

    /// (zone name, gateway endpoint) of both zones.
    pub fn zones(&self) -> [(&str, &str); 2] {
        [
            (self.get("RGW_ZONE_A"), self.get("RGW_ENDPOINT")),
            (self.get("RGW_ZONE_B"), self.get("RGW_ENDPOINT_B")),
        ]
    }

    /// One request through the independent client to `endpoint`, as `user` (without one, the
    /// exporter), signed `behind_hours` in the past (for a gateway of dev/ceph/past-rgw.sh).
    pub fn request(
        &self,
        user: Option<&User>,
        endpoint: &str,
        behind_hours: u32,
        method: &str,
        path: &str,
        body: Option<&Path>,
    ) -> Output {
        let mut cmd = s3_cmd(user, method, path, body);
        cmd.env("RGW_ENDPOINT", endpoint)
            .env("EXPORTER_ACCESS_KEY", self.get("EXPORTER_ACCESS_KEY"))
            .env("EXPORTER_SECRET_KEY", self.get("EXPORTER_SECRET_KEY"));
        if behind_hours > 0 {
            cmd.env("LD_PRELOAD", FAKETIME_LIB)
                .env("FAKETIME", format!("-{behind_hours}h"));
        }
        cmd.output().expect("dev/s3v2.sh runs")
    }

    /// [`Self::request`] as `user`, now, which must succeed.
    pub fn ok(&self, user: &User, endpoint: &str, method: &str, path: &str, body: Option<&Path>) {
        self.ok_behind(user, endpoint, 0, method, path, body)
    }

    pub fn ok_behind(
        &self,
        user: &User,
        endpoint: &str,
        behind_hours: u32,
        method: &str,
        path: &str,
        body: Option<&Path>,
    ) {
        let out = self.request(Some(user), endpoint, behind_hours, method, path, body);
        assert!(
            out.status.success(),
            "{method} {path} at {endpoint}: {}",
            stdout(&out)
        );
    }

    /// One more gateway of zone-a whose clock runs `hours` behind (dev/ceph/past-rgw.sh), on
    /// gateway A's port + `port_offset`; its endpoint.
    pub fn past_gateway(&self, hours: u32, port_offset: u16) -> String {
        let a = self.get("RGW_ENDPOINT");
        let port: u16 = a.rsplit(':').next().unwrap().parse().unwrap();
        let port = port + port_offset;
        let out = Command::new(super::cluster::repo().join("dev/ceph/past-rgw.sh"))
            .args([hours.to_string(), port.to_string()])
            .env("CEPH_DEV_DIR", self.get("CEPH_DEV_DIR"))
            .output()
            .expect("dev/ceph/past-rgw.sh runs");
        assert!(
            out.status.success(),
            "past-rgw.sh: {}",
            super::cluster::stderr(&out)
        );
        format!("http://127.0.0.1:{port}")
    }

    /// Runs `radosgw-admin` on the cluster (its default zone, zone-a) and returns its stdout.
    pub fn admin(&self, args: &[&str]) -> Output {
        Command::new("radosgw-admin")
            .args(["-c", self.get("CEPH_CONF")])
            .args(args)
            .output()
            .expect("radosgw-admin runs")
    }

    /// `radosgw-admin usage show` of one zone's log for a window, once it stopped changing.
    pub fn usage(&self, zone: &str, from: &str, to: &str) -> Value {
        settled(|| {
            ceph_like_json(Command::new("radosgw-admin").args([
                "-c",
                self.get("CEPH_CONF"),
                "usage",
                "show",
                &format!("--rgw-zone={zone}"),
                &format!("--start-date={from}"),
                &format!("--end-date={to}"),
                "--show-log-entries=false",
            ]))
        })
    }

    pub fn exporter(&self, config: &Path, args: &[&str]) -> Output {
        exporter_cmd(config, args)
            .env("EXPORTER_ACCESS_KEY", self.get("EXPORTER_ACCESS_KEY"))
            .env("EXPORTER_SECRET_KEY", self.get("EXPORTER_SECRET_KEY"))
            .output()
            .expect("the exporter binary runs")
    }

    /// A config whose objects go to zone-a's bucket, with an `rgw_usage` instance per
    /// `(job, zone, endpoint)`, each with its own key prefix.
    pub fn config(&self, dir: &Path, prefix: &str, instances: &[(&str, &str, &str)]) -> PathBuf {
        let jobs: String = instances
            .iter()
            .map(|(job, zone, endpoint)| {
                format!(
                    "\n[jobs.{job}]\nkind = \"rgw_usage\"\nevery = \"1h\"\nformat = \"json\"\n\
                     key = \"{prefix}/{zone}/usage.%Y-%m-%d/%H\"\nzone = \"{zone}\"\n\
                     rgw = {{ endpoint = \"{endpoint}\" }}\n"
                )
            })
            .collect();
        self.write_config(dir, &jobs)
    }

    /// A config whose objects go to zone-a's bucket, with `jobs` appended verbatim.
    pub fn write_config(&self, dir: &Path, jobs: &str) -> PathBuf {
        let text = format!(
            "[s3]\nendpoint = \"{}\"\nbucket = \"{}\"\naccess_key = {{ env = \
             \"EXPORTER_ACCESS_KEY\" }}\nsecret_key = {{ env = \"EXPORTER_SECRET_KEY\" }}\n\
             timeout = \"20s\"\n{jobs}",
            self.get("RGW_ENDPOINT"),
            self.get("RGW_BUCKET")
        );
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn get_object(&self, key: &str) -> Vec<u8> {
        let path = format!("/{}/{key}", self.get("RGW_BUCKET"));
        let out = self.request(None, self.get("RGW_ENDPOINT"), 0, "GET", &path, None);
        assert!(out.status.success(), "GET {key}: {}", stdout(&out));
        out.stdout
    }
}

/// libfaketime, which dev/test.sh installs (package faketime).
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
