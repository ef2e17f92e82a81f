//! AFL++ target: see `ceph_stats_exporter_fuzz::state`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        ceph_stats_exporter_fuzz::state(data);
    });
}
