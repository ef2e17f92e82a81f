//! `ceph osd pool stats -f json`: per pool the client I/O and recovery rates the mgr computes
//! from its PG statistics. An idle pool's `client_io_rate` is `{}`: every rate 0. Pure.

use serde::Deserialize;

/// A pool's rates: read B/s, write B/s, read op/s, write op/s, recovery B/s.
pub type PoolRates = [f64; 5];

#[derive(Deserialize)]
struct RawPool {
    pool_name: String,
    #[serde(default)]
    client_io_rate: ClientIo,
    #[serde(default)]
    recovery_rate: Recovery,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ClientIo {
    read_bytes_sec: f64,
    write_bytes_sec: f64,
    read_op_per_sec: f64,
    write_op_per_sec: f64,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Recovery {
    recovering_bytes_per_sec: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("not a `ceph osd pool stats` answer: {0}")]
pub struct PoolStatsError(String);

/// Each pool's name and rates, in the answer's order.
pub fn parse(json: &[u8]) -> Result<Vec<(Box<str>, PoolRates)>, PoolStatsError> {
    let pools: Vec<RawPool> = serde_json::from_slice(json)
        .map_err(|e| PoolStatsError(format!("{e}: {}", crate::http::excerpt(json))))?;
    Ok(pools
        .into_iter()
        .map(|p| {
            let c = p.client_io_rate;
            let rates = [
                c.read_bytes_sec,
                c.write_bytes_sec,
                c.read_op_per_sec,
                c.write_op_per_sec,
                p.recovery_rate.recovering_bytes_per_sec,
            ];
            (p.pool_name.into_boxed_str(), rates)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_of_busy_idle_and_recovering_pools() {
        // As Pacific prints them (pool 7 under PUTs, pool 1 idle, pool 9 recovering).
        let json = br#"[
            {"pool_name":"device_health_metrics","pool_id":1,"recovery":{},"recovery_rate":{},"client_io_rate":{}},
            {"pool_name":"default.rgw.buckets.data","pool_id":7,"recovery":{},"recovery_rate":{},
             "client_io_rate":{"read_bytes_sec":4862,"write_bytes_sec":1667035,"read_op_per_sec":6,"write_op_per_sec":14}},
            {"pool_name":"rbd","pool_id":9,"recovery":{"degraded_objects":3},
             "recovery_rate":{"recovering_objects_per_sec":2,"recovering_bytes_per_sec":8388608,"recovering_keys_per_sec":0,
                              "num_objects_recovered":10,"num_bytes_recovered":41943040,"num_keys_recovered":0},
             "client_io_rate":{"write_bytes_sec":512,"write_op_per_sec":1}}
        ]"#;
        let pools = parse(json).unwrap();
        assert_eq!(pools[0], ("device_health_metrics".into(), [0.0; 5]));
        assert_eq!(
            pools[1],
            (
                "default.rgw.buckets.data".into(),
                [4862.0, 1667035.0, 6.0, 14.0, 0.0]
            )
        );
        assert_eq!(pools[2].1, [0.0, 512.0, 0.0, 1.0, 8388608.0]);
    }

    #[test]
    fn other_answers_are_refused_with_an_excerpt() {
        let err = parse(b"{\"error\": \"EACCES\"}").unwrap_err();
        assert!(err.to_string().contains("EACCES"), "{err}");
        assert!(
            parse(br#"[{"pool_id":1}]"#).is_err(),
            "a pool without a name"
        );
        assert!(parse(br#"[{"pool_name":"p","client_io_rate":{"read_bytes_sec":"x"}}]"#).is_err());
    }
}
