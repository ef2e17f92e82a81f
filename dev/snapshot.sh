#!/usr/bin/env bash
# dev/snapshot.sh: one real snapshot, end to end, on a loopback Ceph cluster. Run as root on
# Debian 12. Starts the cluster (dev/ceph/start.sh installs Ceph from Debian's packages), builds
# the exporter, runs every job once with config.example.toml, and reads the objects back from
# the bucket with an independent client (dev/s3v2.sh: curl + openssl).
# Stop the cluster afterwards with dev/ceph/stop.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
export CEPH_DEV_DIR=${CEPH_DEV_DIR:-/tmp/ceph-dev}
dev/ceph/start.sh
# shellcheck disable=SC1091
source "$CEPH_DEV_DIR/env"
cargo build --release --quiet
out=$(./target/release/ceph-stats-exporter --config config.example.toml --once --log-format json 2>&1) || {
  echo "$out" >&2; exit 1; }
echo "$out"
for key in $(echo "$out" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p'); do
  echo "--- s3://$RGW_BUCKET/$key"
  dev/s3v2.sh GET "/$RGW_BUCKET/$key"
  echo
done
