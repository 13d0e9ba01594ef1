#!/usr/bin/env bash
# The demo's stories across seeds and slot counts: runs experiments/demo.yaml, then experiments/vendor.yaml, once per
# SEED (the trainer's seed: data order, LoRA initialisation, dropout) and PARALLEL setting, each into its own store
# under OUT, and prints each store's evidence lines side by side. Outside `make test` (a few minutes per sweep); `make demo-seeds`.
#   SEEDS="1 2 3" PARALLEL="2 1" scripts/demo-seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
HARROW=${HARROW:-.build/release/harrow}
OUT=${OUT:-.build/demo-seeds}
SEEDS=${SEEDS:-1 2 3}
PARALLEL=${PARALLEL:-2}
mkdir -p "$OUT"
for seed in $SEEDS; do
  for p in $PARALLEL; do
    dir="$OUT/seed-$seed-parallel-$p"
    mkdir -p "$dir"
    # The same experiment, but for its seed (the file keeps its name so the sweep is still called demo).
    sed "s/^  seed: {value: 1}$/  seed: {value: $seed}/" experiments/demo.yaml > "$dir/demo.yaml"
    grep -q "seed: {value: $seed}" "$dir/demo.yaml" || { echo "could not set the seed in $dir/demo.yaml"; exit 1; }
    start=$(date +%s)
    status=0; "$HARROW" sweep "$dir/demo.yaml" --parallel "$p" --db "$dir/harrow.db" > "$dir/sweep.log" 2>&1 || status=$?
    [ $status -le 1 ] || { tail -20 "$dir/sweep.log"; exit $status; }
    # The vendor's file against ours, as `make demo` runs it after the demo (its run on our file is the demo's).
    sed "s/^  seed: {value: 1}$/  seed: {value: $seed}/" experiments/vendor.yaml > "$dir/vendor.yaml"
    grep -q "seed: {value: $seed}" "$dir/vendor.yaml" || { echo "could not set the seed in $dir/vendor.yaml"; exit 1; }
    status=0; "$HARROW" sweep "$dir/vendor.yaml" --parallel "$p" --db "$dir/harrow.db" >> "$dir/sweep.log" 2>&1 || status=$?
    [ $status -le 1 ] || { tail -20 "$dir/sweep.log"; exit $status; }
    echo "seed $seed, --parallel $p: $(( $(date +%s) - start )) s ($dir)"
    "$HARROW" ablation --sweep demo --db "$dir/harrow.db" > "$dir/ablation.txt"
    "$HARROW" ablation --sweep demo --db "$dir/harrow.db" --json > "$dir/ablation.json"
    "$HARROW" report --sweep demo --db "$dir/harrow.db" --out "$dir/report" > /dev/null
    # The story checks of `make check-demo`, on this store, when the tests are built.
    if [ -x .build/debug/HarrowPackageTests.xctest ]; then
      HARROW_DEMO_DB="$PWD/$dir/harrow.db" HARROW_DEMO_REPORT="$PWD/$dir/report/index.html" \
        swift test --skip-build --filter DemoStoriesTests > "$dir/stories.log" 2>&1 && echo "  stories hold" || echo "  stories: see $dir/stories.log"
    fi
  done
done
echo
for dir in "$OUT"/seed-*; do
  echo "== $(basename "$dir")"
  sed -n '/^Evidence/,$p' "$dir/ablation.txt"
done
