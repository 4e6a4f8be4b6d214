#!/usr/bin/env bash
# The figures of `bench compare`'s closing note, on a quiet machine. One step per argument (default: all):
#
#   peft        lora, vera, prompt-tuning, bitfit at trials:6 on seeds 0,1: the table, tied sets, the answer
#   time        feature-extract, full-ft, lora at time:5m on seeds 0,1: each study's time against its budget
#   kill        kill -9 of the parent mid-study, then mid-test-runs: trial and record counts before and after
#   screenshot  Chromium's screenshot of the peft comparison's report (the answer and the section open the page;
#               SCREENSHOT_OF=$OUT/time shoots the time step's)
#   report      `bench report` on 1,000 records (800 trials): render time and page size, this checkout and BASE's
#   default     `bench compare` with no flags (the default run's strategies, the default budget)
#
# Every step prints its command's wall time (`time`). Results go under $OUT (default /tmp/compare-figures).
# For a dry run on tiny settings: EXTRA="--per-class 6,2,4 --model PATH" KILL_STRATEGIES=feature-extract
# PEFT_BUDGET=trials:2 TIME_BUDGET=time:20s REPORT_RECORDS=100 scripts/compare_figures.sh peft time kill report
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
OUT="${OUT:-/tmp/compare-figures}"
BASE="${BASE:-d84fc3b}"  # the commit before `bench compare`, for the report's "before"
EXTRA="${EXTRA:-}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
bench() { "$PY" -m bench.commands.cli "$@"; }

trials_in() {  # "STATE count" per state of every study in a results folder's SQLite
  "$PY" - "$1/optuna.db" <<'EOF'
import sqlite3, sys, os
if not os.path.exists(sys.argv[1]):
    print("  no study yet"); sys.exit()
with sqlite3.connect(sys.argv[1]) as db:
    for study, state, n in db.execute("SELECT s.study_name, t.state, count(*) FROM trials t JOIN studies s "
                                      "USING (study_id) GROUP BY 1, 2 ORDER BY 1, 2"):
        print(f"  {study}: {n} {state}")
EOF
}

records_in() {  # records by role and status
  "$PY" - "$1" <<'EOF'
import sys
from collections import Counter
from bench.core.records import iter_records
c = Counter((r.comparison.role if r.comparison else "other", r.status) for r in iter_records(sys.argv[1], warn=lambda _: None))
print("  records:", ", ".join(f"{role}/{status} {n}" for (role, status), n in sorted(c.items())) or "none")
EOF
}

step_peft() {
  echo "== peft: trials:6, seeds 0,1"
  time bench compare --strategies "${PEFT_STRATEGIES:-lora,vera,prompt-tuning,bitfit}" --budget "${PEFT_BUDGET:-trials:6}" --seeds 0,1 \
    $EXTRA --results-dir "$OUT/peft" -o "$OUT/peft/index.html"
  echo "report: $OUT/peft/index.html (its first paragraph is the answer; the section under it has the table)"
}

step_time() {
  echo "== time: time:5m, seeds 0,1"
  time bench compare --strategies "${TIME_STRATEGIES:-feature-extract,full-ft,lora}" --budget "${TIME_BUDGET:-time:5m}" --seeds 0,1 \
    $EXTRA --results-dir "$OUT/time" -o "$OUT/time/index.html"
  echo "each study's 'used ... of ...' line above is its own trial time against the budget"
}

kill_when() {  # start the comparison, kill -9 the parent alone once `$1` (a shell test) holds
  local dir="$1" ready="$2"
  # python itself in the background (not the `bench` function, whose subshell would be what $! names)
  "$PY" -m bench.commands.cli compare --strategies "${KILL_STRATEGIES:-feature-extract,full-ft}" \
    --budget "${KILL_BUDGET:-trials:4}" --seeds 0,1 $EXTRA --results-dir "$dir" --no-report -q > "$dir.log" 2>&1 &
  local pid=$!
  until eval "$ready"; do
    kill -0 "$pid" 2>/dev/null || { echo "  it finished before the kill point"; return; }
      sleep 0.5
  done
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  sleep 2  # the worker follows its parent (PR_SET_PDEATHSIG)
  echo "  killed pid $pid"
}

running_trials() {  # trials RUNNING in a results folder's studies
  "$PY" -c "import sqlite3, os, sys; p = sys.argv[1] + '/optuna.db'
print(sqlite3.connect(p).execute(\"SELECT count(*) FROM trials WHERE state = 'RUNNING'\").fetchone()[0] if os.path.exists(p) else 0)" "$1"
}

count_records() {  # records of a role (trial | test) with status ok
  "$PY" -c "import sys; from bench.core.records import iter_records
print(sum(1 for r in iter_records(sys.argv[1], warn=lambda _: None) if r.comparison and r.comparison.role == sys.argv[2] and r.status == 'ok'))" "$1" "$2"
}

step_kill() {
  local dir="$OUT/kill"
  rm -rf "$dir" "$dir.log"; mkdir -p "$dir"
  echo "== kill 1: mid-study (a trial RUNNING, at least one trial record written)"
  kill_when "$dir" '[ "$(running_trials "$dir")" -ge 1 ] && [ "$(count_records "$dir" trial)" -ge 1 ]'
  echo "before the rerun:"; trials_in "$dir"; records_in "$dir"
  echo "== kill 2: the rerun (it waits up to 60 s for the killed trial to go stale), killed mid-test-runs"
  kill_when "$dir" '[ "$(count_records "$dir" test)" -ge 1 ]'
  echo "before the second rerun:"; trials_in "$dir"; records_in "$dir"
  echo "== the second rerun, to the end"
  time bench compare --strategies "${KILL_STRATEGIES:-feature-extract,full-ft}" --budget "${KILL_BUDGET:-trials:4}" \
    --seeds 0,1 $EXTRA --results-dir "$dir" -o "$dir/index.html" -q | tee "$dir.rerun.log"
  echo "after:"; trials_in "$dir"; records_in "$dir"
  echo "test runs skipped by the last rerun (done before the kill): $(grep -c 'skipped (an ok record exists' "$dir.rerun.log" || true)"
  echo "(a trial killed mid-run is FAIL and uses no budget; one whose run had finished is told from its record;"
  echo " each study has its budget of counted trials, numbered on)"
}

step_screenshot() {
  local page="${SCREENSHOT_OF:-$OUT/peft}/index.html"  # SCREENSHOT_OF=$OUT/time for the time step's report
  [ -f "$page" ] || { echo "no report at $page: run its step first"; return 1; }
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$OUT/chromium-profile" --hide-scrollbars \
    --window-size=1400,2600 --screenshot="$OUT/comparison.png" "file://$page"
  echo "screenshot of $page: $OUT/comparison.png"
}

step_report() {
  local n="${REPORT_RECORDS:-1000}"
  echo "== report: $n records, this checkout"
  bench perf --legs report --report-records "$n" ${REPORT_FROM:+--report-from "$REPORT_FROM"} \
    --output "$OUT/perf-report.json" --keep | tee "$OUT/perf-report.log"
  local records
  records="$("$PY" -c "import json;print(json.load(open('$OUT/perf-report.json'))['legs'][0]['records_dir'])")"
  echo "== report: the same records, $BASE (before)"
  rm -rf "$OUT/base"; mkdir -p "$OUT/base"
  git -C "$ROOT" archive "$BASE" | tar -x -C "$OUT/base"
  (cd "$OUT/base" && PYTHONPATH="$OUT/base" "$PY" -c "
import os, time
from bench.reporting.report import render_report
t, c = time.perf_counter(), time.process_time()
p = render_report('$records', '$OUT/base-report.html')
print(f'before: {time.perf_counter() - t:.1f} s wall, {time.process_time() - c:.1f} s CPU, {os.path.getsize(p) / 1e6:.2f} MB')
" 2>/dev/null)
}

step_default() {
  echo "== default: bench compare with no flags"
  time bench compare $EXTRA --results-dir "$OUT/default" -o "$OUT/default/index.html"
}

for step in "${@:-peft time kill screenshot report default}"; do
  for s in $step; do "step_$s"; done
done
