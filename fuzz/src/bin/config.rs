//! AFL++ target: see `ceph_stats_exporter_fuzz::config`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        ceph_stats_exporter_fuzz::config(data);
    });
}
