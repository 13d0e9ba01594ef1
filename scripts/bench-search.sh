#!/bin/sh
# Search methods on the benchmark objective: trials bayes, tpe and random need to come within 1% of the grid's
# best (median over 10 seeds), hyperband's savings, and Optuna's TPE sampler on the same objective beside them.
# Optuna is pip-installed into .build/search-venv (network needed once); not part of `make test`.
set -eu
cd "$(dirname "$0")/.."
swift build -c release --product harrow-train
TRAIN=.build/release/harrow-train
VENV=${SEARCH_VENV:-.build/search-venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet optuna==4.9.0
fi
"$TRAIN" search-bench --seeds "${SEEDS:-10}" --json > .build/search-bench.json
"$VENV/bin/python" scripts/bench_search_optuna.py "$TRAIN" < .build/search-bench.json
