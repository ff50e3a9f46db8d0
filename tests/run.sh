#!/usr/bin/env sh
# The project's test command (README, .ci/run): installs everything the tests need into .venv, then runs
# lint, format check, type check and the whole suite against the real embedded broker.
set -eu
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
sh tests/setup.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
.venv/bin/pytest "$@"
