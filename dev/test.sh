#!/usr/bin/env bash
# dev/test.sh: the whole test suite, real-cluster tests included. Run as root on Debian 12.
# Installs what the tests need (Ceph from Debian's packages, curl, openssl, faketime, tmux; python3's
# venv, into which dev/sigv4-botocore.sh installs botocore from PyPI on first use; DuckDB from
# PyPI), starts the loopback cluster (dev/ceph/start.sh; a running one is reused) and the two-zone
# one ($ZONES_DIR, default /tmp/ceph-dev-zones: start.sh, then dev/ceph/zones.sh), adds the test
# users alice and bob to both, then runs every test: `cargo test -- --include-ignored` (the tests that need the cluster
# are marked #[ignore] so that a bare `cargo test` runs the rest anywhere).
# Arguments select what cargo test runs (e.g. dev/test.sh --test cluster); default: everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }

need=()
for p in curl openssl faketime tmux; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
# tests/sigv4.rs compares the v4 signer with botocore, installed into a virtual environment.
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# DuckDB reads the archive in the records test, as an operator's query would.
python3 -c 'import duckdb' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore duckdb

export CEPH_DEV_DIR=${CEPH_DEV_DIR:-/tmp/ceph-dev}
dev/ceph/start.sh
# shellcheck disable=SC1091
source "$CEPH_DEV_DIR/env"

# add_users CONF: two ordinary S3 users whose traffic the usage tests generate and check (no
# admin caps).
add_users() {
  local user uid
  for user in alice:ALICEACCESSKEY000001 bob:BOBACCESSKEY00000001; do
    uid=${user%%:*}
    radosgw-admin -c "$1" user info --uid="$uid" >/dev/null 2>&1 ||
      radosgw-admin -c "$1" user create --uid="$uid" --display-name="$uid" \
        --access-key="${user#*:}" --secret-key="$uid-secret-key-for-tests-only" >/dev/null
  done
}
add_users "$CEPH_CONF"

# The two-zone tests (tests/zones.rs) run on a second, smaller cluster (one OSD, no mgr HTTP
# modules) made multisite by dev/ceph/zones.sh, so the first one stays single-site. Its users are
# made before zone-b exists, so the first metadata sync brings them across.
export ZONES_DIR=${ZONES_DIR:-/tmp/ceph-dev-zones}
CEPH_DEV_DIR=$ZONES_DIR RGW_PORT=${ZONES_RGW_PORT:-8010} MON_PORT=${ZONES_MON_PORT:-6792} \
  MON_V2_PORT=${ZONES_MON_V2_PORT:-3302} NUM_OSDS=1 MGR_HTTP=0 dev/ceph/start.sh
add_users "$ZONES_DIR/ceph.conf"
CEPH_DEV_DIR=$ZONES_DIR dev/ceph/zones.sh
export ZONES_ENV=$ZONES_DIR/env

# With no arguments, every target; otherwise the given ones (e.g. --test cluster).
[ $# -gt 0 ] || set -- --all-targets
cargo test --no-fail-fast "$@" -- --include-ignored
