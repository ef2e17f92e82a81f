#!/usr/bin/env bash
# dev/ceph/zones.sh: turns the running start.sh cluster in $CEPH_DEV_DIR into RGW multisite with
# two zones, each with its own gateway and its own usage log:
#   realm dev > master zonegroup dev-zg > zone-a (the single-site "default" zone renamed in place:
#   its pools, users, buckets and usage log stay; served by the existing radosgw client.rgw.x) and
#   zone-b (pools zone-b.rgw.*; served by a second radosgw client.rgw.b, pid file pids/rgw-b.pid,
#   on RGW port + 1).
# The period is committed, and the script waits until zone-b has every user of zone-a (metadata
# sync) and both gateways answer the exporter's keys. Appends RGW_ENDPOINT_B, RGW_REALM,
# RGW_ZONEGROUP, RGW_ZONE_A and RGW_ZONE_B to $CEPH_DEV_DIR/env. A rerun redoes only what is
# missing. stop.sh stops gateway B too; daemon.sh knows it as rgw-b.
#
# The exporter's user gets the admin cap zone=read (GET /admin/realm/period). That cap also
# opens GET /admin/config?type=zone, whose answer holds the sync user's secret: nothing here
# calls it (which zone a gateway serves is read from its admin socket instead).
#
# Knobs (env): CEPH_DEV_DIR (/tmp/ceph-dev), RGW_B_PORT (gateway A's port + 1), ZONES_TIMEOUT
#   (120 s per wait), SYNC_ACCESS_KEY / SYNC_SECRET_KEY (the system user sync-user's keys).
set -Eeuo pipefail
unset CEPH_KEYRING CEPH_ARGS  # every Ceph program reads these; see start.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${CEPH_DEV_DIR:-/tmp/ceph-dev}; export CEPH_DEV_DIR=$DIR  # daemon.sh reads it
CONF=$DIR/ceph.conf
[ -f "$DIR/.ceph-dev" ] && [ -f "$DIR/env" ] || { echo "no start.sh cluster in $DIR: run start.sh first" >&2; exit 1; }
# shellcheck disable=SC1091
. "$DIR/env"
A_URL=$RGW_ENDPOINT
B_PORT=${RGW_B_PORT:-$((${A_URL##*:} + 1))}
B_URL=http://127.0.0.1:$B_PORT
REALM=dev ZG=dev-zg ZA=zone-a ZB=zone-b
SYNC_UID=sync-user
SYNC_AK=${SYNC_ACCESS_KEY:-SYNCACCESSKEY0000001}
SYNC_SK=${SYNC_SECRET_KEY:-sync-secret-key-for-tests-only}
TIMEOUT=${ZONES_TIMEOUT:-120}
T0=$(date +%s)

log() { echo "[zones $(($(date +%s) - T0))s] $*" >&2; }
die() {
  log "FAILED: $1"
  local f
  for f in rgw.log rgw-b.log rgw-b.out; do
    [ -s "$DIR/log/$f" ] && { echo "----- last lines of $DIR/log/$f" >&2; tail -n 20 "$DIR/log/$f" >&2; }
  done
  exit 1
}
trap 'die "command failed at line $LINENO: $BASH_COMMAND"' ERR
rgwadm() { timeout 60 radosgw-admin -c "$CONF" "$@"; }
# wait_for WHAT COMMAND...: poll COMMAND every second, ZONES_TIMEOUT seconds at most.
wait_for() {
  local what=$1 end=$(($(date +%s) + TIMEOUT)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out after ${TIMEOUT}s waiting for: $what"
    sleep 1
  done
}
alive() { local f=$DIR/pids/$1.pid; [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
# serves NAME ZONE: the running gateway client.rgw.NAME was started in ZONE (its admin socket).
serves() {
  [[ $(timeout 10 ceph --admin-daemon "$DIR/run/client.rgw.$1.asok" config get rgw_zone 2>/dev/null) \
     == *"\"$2\""* ]]
}
# period_has URL: the gateway at URL answers GET /admin/realm/period to the exporter's keys
# (user synced, cap zone=read) with both zones in it. (timeout: curl has none of its own.)
period_has() {
  local p; p=$(RGW_ENDPOINT=$1 timeout 10 "$HERE/../s3v2.sh" GET /admin/realm/period) || return 1
  [[ $p == *"\"name\":\"$ZA\""* && $p == *"\"name\":\"$ZB\""* ]]
}
# commit: a new period, unless the current one already lists both zones with their endpoints.
committed() {
  rgwadm period get | python3 -c '
import json, sys
p = json.load(sys.stdin)
have = {z["name"]: z["endpoints"] for g in p["period_map"]["zonegroups"] for z in g["zones"]}
sys.exit(0 if all(have.get(a.split("=")[0]) == [a.split("=", 1)[1]] for a in sys.argv[1:]) else 1)' "$@"
}
commit() { committed "$@" 2>/dev/null || rgwadm period update --commit >/dev/null; committed "$@"; }

# ---------------------------------------------------------------- zone-a
log "realm $REALM, master zonegroup $ZG, master zone $ZA at $A_URL"
grep -q '^\[client.rgw.x\]$' "$CONF" || die "$CONF has no [client.rgw.x] (not a start.sh cluster?)"
# Only when missing: each user change is a metadata log entry zone-b must sync.
[[ $(rgwadm user info --uid="$EXPORTER_UID") == *'"type": "zone"'* ]] ||
  rgwadm caps add --uid="$EXPORTER_UID" --caps="zone=read" >/dev/null
rgwadm realm get --rgw-realm="$REALM" >/dev/null 2>&1 ||
  rgwadm realm create --rgw-realm="$REALM" --default >/dev/null
rgwadm zonegroup get --rgw-zonegroup="$ZG" >/dev/null 2>&1 ||
  rgwadm zonegroup rename --rgw-zonegroup=default --zonegroup-new-name="$ZG" >/dev/null
rgwadm zone get --rgw-zone="$ZA" >/dev/null 2>&1 ||
  rgwadm zone rename --rgw-zone=default --zone-new-name="$ZA" --rgw-zonegroup="$ZG" >/dev/null
rgwadm zonegroup modify --rgw-realm="$REALM" --rgw-zonegroup="$ZG" --endpoints="$A_URL" \
  --master --default >/dev/null
rgwadm zone modify --rgw-realm="$REALM" --rgw-zonegroup="$ZG" --rgw-zone="$ZA" --endpoints="$A_URL" \
  --access-key="$SYNC_AK" --secret="$SYNC_SK" --master --default >/dev/null
rgwadm user info --uid="$SYNC_UID" >/dev/null 2>&1 || rgwadm user create --uid="$SYNC_UID" \
  --display-name="multisite sync" --access-key="$SYNC_AK" --secret="$SYNC_SK" --system >/dev/null

# ---------------------------------------------------------------- zone-b
# Not --default: radosgw-admin without --rgw-zone keeps acting on the master, zone-a.
rgwadm zone get --rgw-zone="$ZB" >/dev/null 2>&1 || rgwadm zone create --rgw-zonegroup="$ZG" \
  --rgw-zone="$ZB" --endpoints="$B_URL" --access-key="$SYNC_AK" --secret="$SYNC_SK" >/dev/null
commit "$ZA=$A_URL" "$ZB=$B_URL" || die "the committed period does not list $ZA=$A_URL and $ZB=$B_URL"

# A gateway started before the realm existed serves "default" until it is restarted.
grep -q "^rgw zone = $ZA\$" "$CONF" || sed -i "/^\[client.rgw.x\]\$/a rgw zone = $ZA" "$CONF"
if ! serves x "$ZA"; then
  log "restarting gateway A in $ZA"
  "$HERE/daemon.sh" rgw restart || die "gateway A did not come back"
fi
if ! grep -q '^\[client.rgw.b\]$' "$CONF"; then
  cat >>"$CONF" <<CONF
[client.rgw.b]
rgw zone = $ZB
admin socket = $DIR/run/\$name.asok
rgw frontends = beast endpoint=127.0.0.1:$B_PORT tcp_nodelay=1
rgw data = $DIR/rgw-b
keyring = $DIR/rgw-b/keyring
log file = $DIR/log/rgw-b.log
debug rgw = ${RGW_DEBUG:-1}
rgw enable usage log = true
rgw usage log tick interval = 1
rgw usage log flush threshold = 1
CONF
fi
mkdir -p "$DIR/rgw-b"
[ -s "$DIR/rgw-b/keyring" ] || timeout 30 ceph -c "$CONF" auth get-or-create client.rgw.b \
  mon 'allow rw' osd 'allow rwx' mgr 'allow rw' >"$DIR/rgw-b/keyring"
sed -i '/# zones\.sh$/d' "$DIR/env"
cat >>"$DIR/env" <<ENV
export RGW_ENDPOINT_B=$B_URL  # zones.sh
export RGW_REALM=$REALM RGW_ZONEGROUP=$ZG RGW_ZONE_A=$ZA RGW_ZONE_B=$ZB  # zones.sh
ENV
if ! alive rgw-b; then
  if (exec 3<>"/dev/tcp/127.0.0.1/$B_PORT") 2>/dev/null; then
    die "port 127.0.0.1:$B_PORT is in use by something else: set RGW_B_PORT"
  fi
  log "starting gateway B on $B_URL (it creates the $ZB.rgw.* pools)"
  "$HERE/daemon.sh" rgw-b start || die "gateway B did not start"
fi
serves b "$ZB" || die "gateway B does not serve $ZB"

# ---------------------------------------------------------------- sync
users() { rgwadm user list "$@" | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)))'; }
synced() {
  [[ $(rgwadm sync status --rgw-zone="$ZB" 2>/dev/null) == *"metadata is caught up with master"* ]] &&
    [ "$(users)" = "$(users --rgw-zone="$ZB")" ]
}
wait_for "metadata sync $ZA -> $ZB (every user)" synced
wait_for "gateway A lists both zones" period_has "$A_URL"
wait_for "gateway B lists both zones" period_has "$B_URL"
log "ready: $ZA at $A_URL, $ZB at $B_URL; added to $DIR/env:"
grep '# zones\.sh$' "$DIR/env" >&2
