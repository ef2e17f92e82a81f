//! AFL++ target: see `ceph_stats_exporter_fuzz::s3_error`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        ceph_stats_exporter_fuzz::s3_error(data);
    });
}
