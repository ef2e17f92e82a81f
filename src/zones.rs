//! RGW multisite: the zones of the current period (`GET /admin/realm/period`), and which of them
//! the configured `rgw_usage` instances read. Each zone keeps its own usage log (a request is
//! logged only by the zone that served it), so a zone no instance reads is traffic never
//! archived. Pure: `check` fetches the answer and reports what [`coverage`] finds.
//!
//! An instance reads a zone when its admin endpoint is one of the zone's endpoints in the period
//! (scheme, host and port compared; a trailing `/` ignored), or, failing that, when its `zone`
//! label is the zone's name: gateways behind a load balancer are reached under a name the period
//! does not list, and the label says which zone they serve.

use serde::Deserialize;
use url::Url;

/// The zones of each zonegroup, as the period lists them.
#[derive(Debug, PartialEq, Eq)]
pub struct Period {
    pub zonegroups: Vec<Zonegroup>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Zonegroup {
    pub name: String,
    pub zones: Vec<Zone>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    pub endpoints: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeriodError {
    /// Not JSON, or not the shape of a period; serde's message names the field and the place.
    #[error("the period answer is not a period: {0}")]
    Shape(String),
    #[error("the period answer lists no zonegroup")]
    NoZonegroups,
    #[error("the period answer has a zonegroup or zone without a name (zonegroup #{0})")]
    Unnamed(usize),
}

/// Reads the answer of `GET /admin/realm/period`. The answer itself is never quoted in an error.
pub fn parse(body: &[u8]) -> Result<Period, PeriodError> {
    #[derive(Deserialize)]
    struct RawPeriod {
        period_map: RawMap,
    }
    #[derive(Deserialize)]
    struct RawMap {
        zonegroups: Vec<RawGroup>,
    }
    #[derive(Deserialize)]
    struct RawGroup {
        name: String,
        zones: Vec<RawZone>,
    }
    #[derive(Deserialize)]
    struct RawZone {
        name: String,
        #[serde(default)]
        endpoints: Vec<String>,
    }
    let raw: RawPeriod =
        serde_json::from_slice(body).map_err(|e| PeriodError::Shape(shape_error(&e)))?;
    if raw.period_map.zonegroups.is_empty() {
        return Err(PeriodError::NoZonegroups);
    }
    let mut zonegroups = Vec::new();
    for (i, g) in raw.period_map.zonegroups.into_iter().enumerate() {
        if g.name.is_empty() || g.zones.iter().any(|z| z.name.is_empty()) {
            return Err(PeriodError::Unnamed(i + 1));
        }
        zonegroups.push(Zonegroup {
            name: g.name,
            zones: g
                .zones
                .into_iter()
                .map(|z| Zone {
                    name: z.name,
                    endpoints: z.endpoints,
                })
                .collect(),
        });
    }
    Ok(Period { zonegroups })
}

/// serde's message without the values it may quote, with the place it stopped: "missing field
/// `x`" stays whole, "invalid type: string \"...\", expected ..." keeps "invalid type".
fn shape_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "unreadable".to_string(),
        Category::Syntax => "not JSON".to_string(),
        Category::Eof => "cut short".to_string(),
        Category::Data => {
            let message = e.to_string();
            let message = message.split(" at line ").next().unwrap_or_default();
            message.split(':').next().unwrap_or_default().to_string()
        }
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// One configured `rgw_usage` instance, as coverage sees it.
#[derive(Debug, Clone, Copy)]
pub struct Instance<'a> {
    pub job: &'a str,
    pub endpoint: &'a Url,
    pub zone_label: Option<&'a str>,
}

/// A zone's name and the jobs that read it.
pub type Readers = (String, Vec<String>);

/// Which instances read which zones of the zonegroups they reach.
#[derive(Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Per zonegroup that an instance reads (every zonegroup when none does), each zone with the
    /// jobs that read it, in the period's order.
    pub zonegroups: Vec<(String, Vec<Readers>)>,
    /// Instances that read no zone of the period.
    pub unmatched: Vec<String>,
}

impl Coverage {
    /// Zones no instance reads, with their zonegroup and endpoints.
    pub fn missed<'p>(&self, period: &'p Period) -> Vec<(&'p str, &'p Zone)> {
        let mut out = Vec::new();
        for (group, zones) in &self.zonegroups {
            for (zone, jobs) in zones {
                if jobs.is_empty() {
                    if let Some(found) = find(period, group, zone) {
                        out.push(found);
                    }
                }
            }
        }
        out
    }
}

fn find<'p>(period: &'p Period, group: &str, zone: &str) -> Option<(&'p str, &'p Zone)> {
    let g = period.zonegroups.iter().find(|g| g.name == group)?;
    Some((g.name.as_str(), g.zones.iter().find(|z| z.name == zone)?))
}

/// Matches instances to zones (see the module's comment for the rule).
pub fn coverage(period: &Period, instances: &[Instance<'_>]) -> Coverage {
    let reads = |i: &Instance<'_>, z: &Zone| {
        let by_endpoint = z
            .endpoints
            .iter()
            .filter_map(|e| Url::parse(e).ok())
            .any(|e| same_endpoint(&e, i.endpoint));
        let by_label = i.zone_label == Some(z.name.as_str());
        by_endpoint || by_label
    };
    let mut unmatched = Vec::new();
    let mut reached = vec![false; period.zonegroups.len()];
    for i in instances {
        let mut any = false;
        for (g, group) in period.zonegroups.iter().enumerate() {
            if group.zones.iter().any(|z| reads(i, z)) {
                reached[g] = true;
                any = true;
            }
        }
        if !any {
            unmatched.push(i.job.to_string());
        }
    }
    let none_reached = !reached.contains(&true);
    let zonegroups = period
        .zonegroups
        .iter()
        .zip(reached)
        .filter(|(_, r)| *r || none_reached)
        .map(|(g, _)| {
            let zones = g
                .zones
                .iter()
                .map(|z| {
                    let jobs = instances
                        .iter()
                        .filter(|i| reads(i, z))
                        .map(|i| i.job.to_string())
                        .collect();
                    (z.name.clone(), jobs)
                })
                .collect();
            (g.name.clone(), zones)
        })
        .collect();
    Coverage {
        zonegroups,
        unmatched,
    }
}

fn same_endpoint(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_ZONES: &[u8] = include_bytes!("../tests/fixtures/admin-realm-period-two-zones.json");

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn names(c: &Coverage, p: &Period) -> Vec<String> {
        c.missed(p).iter().map(|(_, z)| z.name.clone()).collect()
    }

    #[test]
    fn the_real_period_of_the_two_zone_cluster_lists_both_zones() {
        let p = parse(TWO_ZONES).unwrap();
        assert_eq!(p.zonegroups.len(), 1);
        let g = &p.zonegroups[0];
        assert_eq!(g.name, "dev-zg");
        let zones: Vec<_> = g
            .zones
            .iter()
            .map(|z| (z.name.as_str(), z.endpoints.clone()))
            .collect();
        assert_eq!(
            zones,
            [
                ("zone-b", vec!["http://127.0.0.1:8011".to_string()]),
                ("zone-a", vec!["http://127.0.0.1:8010".to_string()]),
            ]
        );
    }

    #[test]
    fn one_instance_misses_the_other_zone_and_two_cover_both() {
        let p = parse(TWO_ZONES).unwrap();
        let (a, b) = (url("http://127.0.0.1:8010"), url("http://127.0.0.1:8011/"));
        let one = [Instance {
            job: "usage_a",
            endpoint: &a,
            zone_label: None,
        }];
        let c = coverage(&p, &one);
        assert_eq!(names(&c, &p), ["zone-b"]);
        assert!(c.unmatched.is_empty());
        let two = [
            one[0],
            Instance {
                job: "usage_b",
                endpoint: &b,
                zone_label: None,
            },
        ];
        let c = coverage(&p, &two);
        assert!(names(&c, &p).is_empty(), "{c:?}");
        assert_eq!(
            c.zonegroups,
            [(
                "dev-zg".to_string(),
                vec![
                    ("zone-b".to_string(), vec!["usage_b".to_string()]),
                    ("zone-a".to_string(), vec!["usage_a".to_string()]),
                ]
            )]
        );
    }

    #[test]
    fn a_gateway_behind_another_name_counts_by_its_zone_label() {
        let p = parse(TWO_ZONES).unwrap();
        let (a, lb) = (
            url("http://127.0.0.1:8010"),
            url("https://rgw-b.example:443"),
        );
        let unlabelled = [
            Instance {
                job: "a",
                endpoint: &a,
                zone_label: None,
            },
            Instance {
                job: "b",
                endpoint: &lb,
                zone_label: None,
            },
        ];
        let c = coverage(&p, &unlabelled);
        assert_eq!(
            (names(&c, &p), c.unmatched),
            (vec!["zone-b".into()], vec!["b".into()])
        );
        let labelled = [
            unlabelled[0],
            Instance {
                job: "b",
                endpoint: &lb,
                zone_label: Some("zone-b"),
            },
        ];
        let c = coverage(&p, &labelled);
        assert!(names(&c, &p).is_empty() && c.unmatched.is_empty(), "{c:?}");
    }

    #[test]
    fn endpoints_compare_by_scheme_host_and_port() {
        let same = |x: &str, y: &str| same_endpoint(&url(x), &url(y));
        assert!(same("http://RGW:80/", "http://rgw"));
        assert!(!same("https://rgw", "http://rgw"));
        assert!(!same("http://rgw:8001", "http://rgw:8000"));
        assert!(!same("http://rgw-a", "http://rgw-b"));
    }

    #[test]
    fn no_instance_in_the_period_misses_every_zone() {
        let p = parse(TWO_ZONES).unwrap();
        let elsewhere = url("http://10.0.0.9:8000");
        let c = coverage(
            &p,
            &[Instance {
                job: "x",
                endpoint: &elsewhere,
                zone_label: Some("zone-c"),
            }],
        );
        assert_eq!(names(&c, &p), ["zone-b", "zone-a"]);
        assert_eq!(c.unmatched, ["x"]);
    }

    #[test]
    fn answers_that_are_not_a_period_are_named_errors() {
        assert!(
            matches!(parse(b"<html>"), Err(PeriodError::Shape(m)) if m.starts_with("not JSON at line 1"))
        );
        assert!(
            matches!(parse(b"{\"period_map\":{\"zonegroups\":["), Err(PeriodError::Shape(m)) if m.starts_with("cut short"))
        );
        let wrong = parse(br#"{"period_map":{"zonegroups":[{"name":"g","zones":"s3cr3t"}]}}"#);
        match wrong {
            Err(PeriodError::Shape(m)) => {
                assert!(m.contains("invalid type") && !m.contains("s3cr3t"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse(br#"{"period_map":{"zonegroups":[]}}"#),
            Err(PeriodError::NoZonegroups)
        );
        assert_eq!(
            parse(br#"{"period_map":{"zonegroups":[{"name":"g","zones":[{"name":""}]}]}}"#),
            Err(PeriodError::Unnamed(1))
        );
        assert!(matches!(parse(b"{}"), Err(PeriodError::Shape(m)) if m.contains("period_map")));
    }
}
