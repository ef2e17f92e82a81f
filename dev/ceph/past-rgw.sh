#!/usr/bin/env bash
# dev/ceph/past-rgw.sh HOURS PORT: starts (unless it runs) one more radosgw for the default
# zone of the start.sh cluster in $CEPH_DEV_DIR whose clock runs HOURS behind (libfaketime), on
# 127.0.0.1:PORT, with the usage log on. RGW logs a request under the hour of its own clock, so
# requests sent through it land in the usage log HOURS ago: how the trimming tests make history
# that is hours old without waiting hours. Its clients must sign with the same clock (RGW refuses
# a signature 15 minutes off): run them with LD_PRELOAD=$FAKETIME_LIB FAKETIME=-${HOURS}h.
# Pid file pids/rgw-past-${HOURS}h.pid (stop.sh stops every rgw*.pid); log log/rgw-past-${HOURS}h.log.
set -euo pipefail
unset CEPH_KEYRING CEPH_ARGS  # every Ceph program reads these; see start.sh
DIR=${CEPH_DEV_DIR:-/tmp/ceph-dev}
hours=${1:?usage: $0 HOURS PORT}; port=${2:?usage: $0 HOURS PORT}
name=rgw-past-${hours}h
lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -f "$lib" ] || { echo "$lib is missing: apt-get install faketime" >&2; exit 1; }
[ -f "$DIR/.ceph-dev" ] || { echo "no start.sh cluster in $DIR" >&2; exit 1; }
pidf=$DIR/pids/$name.pid
if [ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then exit 0; fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "port 127.0.0.1:$port is in use" >&2; exit 1
fi
zone=$(sed -n 's/^rgw zone = //p' "$DIR/ceph.conf" | head -n 1)
mkdir -p "$DIR/$name"
[ -s "$DIR/$name/keyring" ] || timeout 30 ceph -c "$DIR/ceph.conf" auth get-or-create "client.$name" \
  mon 'allow rw' osd 'allow rwx' mgr 'allow rw' >"$DIR/$name/keyring"
# Only the wall clock: its timers (the usage log flush, shutdown) keep the real monotonic clock.
LD_PRELOAD=$lib FAKETIME="-${hours}h" FAKETIME_DONT_FAKE_MONOTONIC=1 radosgw -c "$DIR/ceph.conf" -n "client.$name" \
  --keyring="$DIR/$name/keyring" ${zone:+--rgw-zone="$zone"} \
  --rgw-frontends="beast endpoint=127.0.0.1:$port tcp_nodelay=1" --rgw-data="$DIR/$name" \
  --admin-socket="$DIR/run/client.$name.asok" --log-file="$DIR/log/$name.log" \
  --rgw-enable-usage-log=true --rgw-usage-log-tick-interval=1 --rgw-usage-log-flush-threshold=1 \
  --pid-file="$pidf" >"$DIR/log/$name.out" 2>&1
# -m: a port that accepts and never answers must not hang this loop.
for _ in $(seq 120); do
  curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && exit 0
  sleep 0.5
done
echo "$name did not answer on 127.0.0.1:$port within 60 s; see $DIR/log/$name.log" >&2
exit 1
