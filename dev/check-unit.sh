#!/usr/bin/env bash
# dev/check-unit.sh [BINARY]: checks deploy/ceph-stats-exporter.service offline, without a
# running systemd: `systemd-analyze verify` must print nothing (it reports bad keys and values
# as warnings with exit code 0), and `systemd-analyze security` must score at most
# $MAX_EXPOSURE (the score is printed). The unit's ExecStart is pointed at BINARY (default:
# target/debug/ceph-stats-exporter), since verify checks that the program exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
bin=$(realpath "${1:-target/debug/ceph-stats-exporter}")
[ -x "$bin" ] || { echo "FAIL: $bin is not built" >&2; exit 1; }
command -v systemd-analyze >/dev/null || {
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
unit=$tmp/ceph-stats-exporter.service
sed "s#/usr/bin/ceph-stats-exporter#$bin#" deploy/ceph-stats-exporter.service > "$unit"
out=$(systemd-analyze verify --man=no "$unit" 2>&1) || true
if [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify:"; echo "$out"; exit 1
fi
echo "PASS: systemd-analyze verify"
score=$(systemd-analyze security --offline=yes "$unit" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "FAIL: no exposure score"; systemd-analyze security --offline=yes "$unit"; exit 1; }
if awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
  echo "PASS: systemd-analyze security exposure $score (at most $MAX_EXPOSURE)"
else
  echo "FAIL: systemd-analyze security exposure $score is above $MAX_EXPOSURE"
  systemd-analyze security --offline=yes "$unit" | grep -v '✓' | head -40
  exit 1
fi
