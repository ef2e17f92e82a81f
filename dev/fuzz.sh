#!/usr/bin/env bash
# dev/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]: coverage-guided fuzzing of the parsers of
# outside input with AFL++ through cargo-afl, on the stable toolchain. Targets (fuzz/src/lib.rs):
# usage osd_df s3_error config spool_header state (default: all, one after the other, one
# fuzzer process at a time). Each runs for SECONDS_PER_TARGET (default 600) of fuzzing time,
# or until MAX_EXECS executions when that is set, seeded with the real answers in
# tests/fixtures/, config.example.toml, fuzz/seeds/<target>/ and the crashes kept so far.
#
# Prints executions, exec/s, crashes and hangs per target (from AFL++'s fuzzer_stats), and
# copies every crash and hang input to tests/regressions/fuzz/<target>/ (named by content), where
# tests/fuzz_regressions.rs replays it under `cargo test`. Exits 1 when anything was found.
# AFL++'s own output is in fuzz/target/afl/<target>/ (gitignored).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO_AFL_VERSION=0.18.2 # the same as fuzz/Cargo.toml's afl
ALL=(usage osd_df s3_error config spool_header state)
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
for t in "${targets[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "unknown target $t (want: ${ALL[*]})" >&2; exit 2; }
done

# cargo-afl, pinned, and AFL++, which it builds from the source it ships (plain gcc and make
# suffice: no LLVM plugins are needed for Rust, whose instrumentation is rustc's own).
if ! cargo afl --version 2>/dev/null | grep -q "^cargo-afl $CARGO_AFL_VERSION "; then
  cargo install --locked "cargo-afl@$CARGO_AFL_VERSION"
fi
if ! out=$(cargo afl config --build 2>&1) && ! grep -q 'already built' <<<"$out"; then
  echo "$out" >&2
  exit 1
fi

cargo afl build --release --manifest-path fuzz/Cargo.toml --bins
bin=fuzz/target/release
work=fuzz/target/afl

# Seeds per target: the real answers, the shipped example config, the generated seeds of
# fuzz/seeds/<target>/ and the crashes already kept (they must stay fixed).
seeds() {
  case $1 in
    usage) ls tests/fixtures/admin-usage-*.json ;;
    osd_df) ls tests/fixtures/ceph-osd-df-tree*.json ;;
    s3_error) ls tests/fixtures/admin-error-*.json tests/fixtures/s3-error-*.xml ;;
    config) echo config.example.toml ;;
  esac
  ls -d "fuzz/seeds/$1"/* "tests/regressions/fuzz/$1"/* 2>/dev/null || true
}

# Unattended and on a shared machine: no UI, no CPU binding, no demands on the kernel's
# core_pattern or CPU governor (those only cost speed or make a crash slower to notice).
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
# The spool and state targets write their file on every run: keep that in memory when possible.
[ -d /dev/shm ] && export TMPDIR=/dev/shm

field() { sed -n "s/^$1 *: *//p" "$2"; }
found=0
for t in "${targets[@]}"; do
  in=$work/$t/in out=$work/$t/out
  rm -rf "${work:?}/$t"
  mkdir -p "$in"
  seeds "$t" | while read -r f; do cp "$f" "$in/"; done
  limit=()
  [ -n "${MAX_EXECS:-}" ] && limit=(-E "$MAX_EXECS")
  echo "== $t: ${secs}s${MAX_EXECS:+ or $MAX_EXECS executions}, $(ls "$in" | wc -l) seeds"
  cargo afl fuzz -i "$in" -o "$out" -V "$secs" "${limit[@]}" -t 1000 -- "$bin/$t" \
    > "$work/$t/afl.log" 2>&1 || { tail -30 "$work/$t/afl.log"; exit 1; }
  for dir in crashes hangs; do
    kind=${dir%s} && kind=${kind%e} # crash, hang
    for f in "$out/default/$dir"/id:*; do
      [ -e "$f" ] || continue
      mkdir -p "tests/regressions/fuzz/$t"
      cp "$f" "tests/regressions/fuzz/$t/$kind-$(sha1sum < "$f" | cut -c1-12)"
      found=1
    done
  done
done
# The latest run of every target (this one's and earlier ones').
echo
echo "$(date -u +%F), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
{
  printf 'target\tseconds\texecutions\texec/s\tcrashes\thangs\tcorpus\n'
  for t in "${ALL[@]}"; do
    s=$work/$t/out/default/fuzzer_stats
    [ -f "$s" ] || continue
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$(field run_time "$s")" "$(field execs_done "$s")" \
      "$(field execs_per_sec "$s")" "$(field saved_crashes "$s")" "$(field saved_hangs "$s")" \
      "$(field corpus_count "$s")"
  done
} | column -t -s $'\t'
if [ "$found" = 1 ]; then
  echo "crashes or hangs were copied to tests/regressions/fuzz/: replay with cargo test --test fuzz_regressions"
  exit 1
fi
