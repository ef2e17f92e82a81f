//! The RGW counters of the mgr prometheus module, per gateway: requests, failed requests, bytes
//! of GETs and of PUTs (cumulative since the daemon started). A gateway is named by its
//! `ceph_rgw_metadata` (`ceph_daemon`, e.g. `rgw.x`) and its `instance_id`, which changes when
//! the daemon restarts: a restarted gateway is a new series. Pure.

use std::collections::BTreeMap;

use super::prom::{self, PromError};

/// The counters read, in this order.
pub const FAMILIES: [&str; 4] = [
    "ceph_rgw_req",
    "ceph_rgw_failed_req",
    "ceph_rgw_get_b",
    "ceph_rgw_put_b",
];
const METADATA: &str = "ceph_rgw_metadata";

/// A gateway: its daemon name (or `?` when the metadata does not say) and instance id.
pub type Gateway = (Box<str>, Box<str>);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Syntax(#[from] PromError),
    #[error(
        "the answer has no `ceph_rgw_req`: no RGW reports to this mgr (or this is not the mgr \
         prometheus module's /metrics)"
    )]
    NoGateways,
    #[error("a {0} sample has no instance_id label")]
    NoInstance(String),
}

/// Each gateway's counters, by name.
pub fn parse(text: &str) -> Result<Vec<(Gateway, [f64; 4])>, GatewayError> {
    let mut wanted = FAMILIES.to_vec();
    wanted.push(METADATA);
    let samples = prom::parse(text, &wanted)?;
    let mut daemons = BTreeMap::new();
    // Per instance: its counters, and whether it has a request counter (a gateway does).
    let mut counters: BTreeMap<&str, ([f64; 4], bool)> = BTreeMap::new();
    for s in &samples {
        let instance = s
            .label("instance_id")
            .ok_or_else(|| GatewayError::NoInstance(s.name.to_string()))?;
        match FAMILIES.iter().position(|f| *f == s.name) {
            Some(i) => {
                let (values, is_gateway) = counters.entry(instance).or_default();
                values[i] = s.value;
                *is_gateway |= i == 0;
            }
            None => {
                daemons.insert(instance, s.label("ceph_daemon").unwrap_or("?"));
            }
        }
    }
    counters.retain(|_, (_, is_gateway)| *is_gateway);
    if counters.is_empty() {
        return Err(GatewayError::NoGateways);
    }
    Ok(counters
        .into_iter()
        .map(|(instance, (values, _))| {
            let daemon = daemons.get(instance).copied().unwrap_or("?");
            ((daemon.into(), instance.into()), values)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_per_gateway_named_by_their_metadata() {
        let text = "\
ceph_rgw_metadata{ceph_daemon=\"rgw.x\",hostname=\"vm\",ceph_version=\"16.2.15\",instance_id=\"4405\"} 1.0
ceph_rgw_req{instance_id=\"4405\"} 113.0
ceph_rgw_req{instance_id=\"4410\"} 7.0
ceph_rgw_failed_req{instance_id=\"4405\"} 6.0
ceph_rgw_get_b{instance_id=\"4405\"} 4960.0
ceph_rgw_put_b{instance_id=\"4405\"} 1235975.0
ceph_rgw_put_b{instance_id=\"9999\"} 1.0
ceph_rgw_cache_hit{instance_id=\"4405\"} 725.0
";
        let gateways = parse(text).unwrap();
        assert_eq!(
            gateways,
            vec![
                (
                    ("rgw.x".into(), "4405".into()),
                    [113.0, 6.0, 4960.0, 1235975.0]
                ),
                (("?".into(), "4410".into()), [7.0, 0.0, 0.0, 0.0]),
            ],
            "an instance without requests is not a gateway"
        );
    }

    #[test]
    fn answers_without_gateways_say_so() {
        let err = parse("ceph_osd_up{ceph_daemon=\"osd.0\"} 1.0\n").unwrap_err();
        assert!(matches!(err, GatewayError::NoGateways), "{err}");
        let err = parse("ceph_rgw_req 3\n").unwrap_err();
        assert!(matches!(err, GatewayError::NoInstance(_)), "{err}");
        let err = parse("ceph_rgw_req{instance_id=\"1\"} three\n").unwrap_err();
        assert!(err.to_string().starts_with("line 1:"), "{err}");
    }
}
