#!/usr/bin/env bash
# The speed figures the suite is held to, each from a fresh clone with a new venv. Run them on a
# quiet machine (nothing else running): on a shared one every wall time is inflated.
#
#   scripts/measure_speed.sh ci           `CI=true bash .ci/run` (the README's test command, slow tests
#                                         included): its total time, pinned dependencies, then the newest
#   scripts/measure_speed.sh default-run  scripts/setup.sh, then a plain `bench run`: the time with setup,
#                                         each strategy's, the accuracies and any library warning in the log
#   scripts/measure_speed.sh perf         bench perf --legs full-ft,lora --repeats 3 (suite / hand-written)
#   scripts/measure_speed.sh all          the three, one after the other
#
# REPO (default: this checkout) is what gets cloned; OUT (default /tmp/ftbench-speed-DATE) holds the
# clones, logs and summary.txt. RUN_ARGS and PERF_ARGS add flags to `bench run` and `bench perf` (for
# a quick check of this script, e.g. RUN_ARGS="--strategies feature-extract --per-class 4,2,2").
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
REPO=${REPO:-$HERE}
OUT=${OUT:-/tmp/ftbench-speed-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"

clone() {  # a fresh clone of REPO's checked-out commit into $OUT/$1
  rm -rf "$OUT/$1"
  git clone --quiet "$REPO" "$OUT/$1"
  git -C "$OUT/$1" checkout --quiet "$(git -C "$REPO" rev-parse HEAD)"
}

since() {  # seconds since $1 (a `date +%s.%N`)
  awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

timed() {  # timed NAME COMMAND...: run it, log it to $OUT/NAME.log, add its wall time to the summary
  local name=$1; shift
  local start code=0
  start=$(date +%s.%N)
  "$@" >"$OUT/$name.log" 2>&1 || code=$?
  printf '%-28s %8s s  (exit %s, log %s)\n' "$name" "$(since "$start")" "$code" "$OUT/$name.log" | tee -a "$SUMMARY"
  return 0
}

ci() {
  for deps in pinned latest; do
    clone "ci-$deps"
    (cd "$OUT/ci-$deps" && timed "ci-$deps" env CI=true FTBENCH_DEPS=$deps bash .ci/run)
    tail -n 1 "$OUT/ci-$deps.log" | sed 's/^/    pytest: /' | tee -a "$SUMMARY"
  done
}

default_run() {
  clone default-run
  cd "$OUT/default-run"
  local start
  start=$(date +%s.%N)
  timed setup scripts/setup.sh
  # shellcheck disable=SC2086
  timed bench-run .venv/bin/bench run --results-dir "$OUT/default-run-results" -o "$OUT/default-run-report.html" \
    ${RUN_ARGS:-}
  printf '%-28s %8s s\n' "default run with setup" "$(since "$start")" | tee -a "$SUMMARY"
  .venv/bin/python - "$OUT/default-run-results" <<'PY' | tee -a "$SUMMARY"
import sys
from bench.core.records import iter_records
for r in sorted(iter_records(sys.argv[1]), key=lambda r: r.started_at or ""):
    c = r.cost
    print(f"    {r.strategy:16s} {r.status:6s} accuracy {r.metrics.accuracy if r.metrics else None!s:6.6s} "
          f"in-worker {c.time_s.get('total') if c else None} s  {c.time_s if c else ''}  peak RSS {c.peak_rss_mb if c else None} MB")
PY
  echo "    library warnings in the run's log:" | tee -a "$SUMMARY"
  grep -iE "warning|deprecat" "$OUT/bench-run.log" | sort | uniq -c | sed 's/^/      /' | tee -a "$SUMMARY" || \
    echo "      none" | tee -a "$SUMMARY"
  cd "$HERE"
}

perf() {
  [ -x "$OUT/default-run/.venv/bin/bench" ] || { clone default-run; (cd "$OUT/default-run" && timed setup scripts/setup.sh); }
  cd "$OUT/default-run"
  # shellcheck disable=SC2086
  timed bench-perf .venv/bin/bench perf --legs full-ft,lora --repeats 3 --output "$OUT/perf.json" ${PERF_ARGS:-}
  sed -n '/^leg /,$p' "$OUT/bench-perf.log" | sed 's/^/    /' | tee -a "$SUMMARY"
  cd "$HERE"
}

case "${1:-}" in
  ci) ci ;;
  default-run) default_run ;;
  perf) perf ;;
  all) ci; default_run; perf ;;
  *) echo "usage: scripts/measure_speed.sh ci|default-run|perf|all" >&2; exit 2 ;;
esac
echo "summary: $SUMMARY"
