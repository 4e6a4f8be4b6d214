#!/usr/bin/env bash
# Write constraints.txt from what .venv holds: run it after the tests pass on a fresh
# `FTBENCH_DEPS=latest scripts/setup.sh`, so that the file always names versions that passed.
# A plain `pip freeze` rather than a resolver's lock: it records exactly the environment that was
# tested, torch's CPU wheel from this disk included, which pip-compile and uv cannot see.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# The versions the whole test suite last passed with (Linux x86_64, Python $(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'))."
  echo "# scripts/setup.sh installs these; regenerate: FTBENCH_DEPS=latest scripts/setup.sh, run the tests, scripts/lock.sh"
  .venv/bin/python -m pip --disable-pip-version-check freeze --exclude-editable | sed -E 's/^torch==([0-9.]+)\+cpu$/torch==\1/'
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages"
