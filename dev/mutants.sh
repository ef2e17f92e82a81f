#!/usr/bin/env bash
# How strong are the unit tests? Mutation testing of the pure modules with cargo-mutants: each
# mutant is a small bug injected into the source (`<` made `<=`, a body replaced by a default,
# ...); the unit tests should fail on every one that changes behaviour.
#
# Not part of CI: about 15 minutes on 2 cores. Run it after changing a pure module or its tests:
#
#   dev/mutants.sh                  # every module below
#   dev/mutants.sh window catchup   # some of them, while iterating
#
# JOBS (default 1) sets how many mutants build and test at once. Output goes to mutants.out/
# (git-ignored). Exits non-zero when a mutant survives that the notes below do not explain, when
# one times out, or when the unmutated unit tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."

# The newest release that builds with the project's rustc (1.95); its mutation operators are
# what the notes below were written against.
VERSION=27.1.0
if ! command -v cargo-mutants >/dev/null; then
    cargo install --locked cargo-mutants --version "$VERSION"
fi
installed=$(cargo mutants --version)
[[ $installed == "cargo-mutants $VERSION" ]] ||
    echo "note: $installed installed, notes written against $VERSION" >&2

# Pure modules: no I/O, nothing to fake, so their unit tests alone can catch every bug in them.
# Add new pure modules here as they land (the rate engine, ...).
MODULES=(s3auth window catchup keys schedule format records)

# Survivors that are harmless, one `file: mutant` line each (cargo-mutants' description
# without line and column, so that edits elsewhere in the file leave it valid), indented lines
# after it saying why, e.g.
#
#   src/catchup.rs: replace < with <= in plan_walking
#     Walking on to the current fire itself: its window is the current one, where the walk
#     stops anyway.
#
# None at present: with cargo-mutants 27.1.0 every viable mutant of these modules is caught.
NOTES=$(
    cat <<'EOF'
EOF
)

(($#)) && MODULES=("$@")
files=()
for m in "${MODULES[@]}"; do files+=(--file "src/$m.rs"); done

# `--cargo-arg=--lib` builds and runs only the unit tests (`cargo test --lib`) for each mutant.
status=0
cargo mutants --jobs "${JOBS:-1}" --cargo-arg=--lib "${files[@]}" || status=$?
# 0: all caught; 2: some missed; 3: some timed out; anything else: no result.
if [[ $status != 0 && $status != 2 && $status != 3 ]]; then
    echo "cargo-mutants failed (exit $status): see mutants.out/log/baseline.log" >&2
    exit "$status"
fi

out=mutants.out
count() { grep -c "^src/$2\.rs:" "$out/$1.txt" 2>/dev/null || true; }
printf '\n%-10s %7s %7s %9s %9s\n' module caught missed unviable timeouts
caught=0 missed=0 timeouts=0
for m in "${MODULES[@]}"; do
    c=$(count caught "$m") x=$(count missed "$m") u=$(count unviable "$m") t=$(count timeout "$m")
    c=${c:-0} x=${x:-0} u=${u:-0} t=${t:-0}
    printf '%-10s %7d %7d %9d %9d\n' "$m" "$c" "$x" "$u" "$t"
    caught=$((caught + c)) missed=$((missed + x)) timeouts=$((timeouts + t))
done
viable=$((caught + missed + timeouts))
((viable > 0)) && printf 'caught %d of %d viable mutants (%d.%d%%), missed %d\n' \
    "$caught" "$viable" $((caught * 100 / viable)) $((caught * 1000 / viable % 10)) "$missed"

# Missed mutants that the notes do not explain, counting repeats.
strip() { sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /' | sort; }
unexplained=$(comm -23 <(strip <"$out/missed.txt") <({ grep '^src/' <<<"$NOTES" || true; } | sort))
if [[ -n $unexplained ]]; then
    echo
    echo "missed, and not explained in the notes of $0 (add a test, or a note on why harmless):"
    echo "$unexplained"
    echo "(lines and columns: $out/missed.txt)"
    exit 2
fi
if ((timeouts > 0)); then
    echo "some mutants timed out: see $out/timeout.txt" >&2
    exit 3
fi
