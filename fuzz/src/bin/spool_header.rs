//! AFL++ target: see `ceph_stats_exporter_fuzz::spool_header`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        ceph_stats_exporter_fuzz::spool_header(data);
    });
}
