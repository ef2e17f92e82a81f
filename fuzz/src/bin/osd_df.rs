//! AFL++ target: see `ceph_stats_exporter_fuzz::osd_df`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        ceph_stats_exporter_fuzz::osd_df(data);
    });
}
