#!/bin/sh
# Harrow's overhead under Slurm next to the local executor, on the one-node test cluster (scripts/slurm-cluster.sh):
# N trials whose trainer logs one point and sleeps S seconds, P at a time (local slots, or the array's throttle).
# Prints wall time, the ideal (N/P × S), harrow's overhead per trial, and Slurm's submit-to-start latency (from the
# array's manifest to each task's first file). Usage: scripts/bench-slurm.sh [N] [P] [S]  (needs root; see Makefile)
set -eu
N=${1:-24} P=${2:-4} S=${3:-1}
root=$(pwd)
harrow=${HARROW_BIN:-$root/.build/debug}/harrow
cluster=$root/.build/slurm-bench
work=$(mktemp -d /tmp/harrow-bench-slurm.XXXXXX)
"$root/scripts/slurm-cluster.sh" start "$cluster" >/dev/null
trap '"$root/scripts/slurm-cluster.sh" stop "$cluster"' EXIT
export SLURM_CONF=$cluster/slurm.conf

for executor in local slurm; do
  dir=$work/$executor
  mkdir -p "$dir"
  cat > "$dir/trainer.sh" <<TRAINER
#!/bin/sh
echo '{"step": 1, "train/loss": 1.0}' >> "\$HARROW_METRICS"
sleep $S
TRAINER
  chmod +x "$dir/trainer.sh"
  cat > "$dir/exp.yaml" <<EXP
name: bench-$executor
parameters: {x: {min: 1, max: $N}}
trainer: {command: [./trainer.sh]}
resources: {parallel: $P}
executor: {type: $executor, array_parallelism: $P, poll: 2}
EXP
  start=$(date +%s.%N)
  (cd "$dir" && "$harrow" sweep exp.yaml --executor "$executor" >/dev/null 2>"$dir/harrow.log")
  end=$(date +%s.%N)
  (cd "$dir" && "$harrow" runs --json > "$dir/runs.json")
  python3 - "$executor" "$start" "$end" "$N" "$P" "$S" "$dir" <<'PY'
import datetime, glob, json, os, sys
kind, start, end, n, p, s, d = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
wall = end - start
ideal = n / p * s
line = f"{kind:6s} {n} trials, {p} at a time, {s:g} s each: {wall:6.1f} s wall, ideal {ideal:.1f} s, overhead {(wall - ideal) * p / n:.2f} s per trial"
manifests = glob.glob(d + "/.harrow/slurm/*.runs")
if manifests:
    lat = []
    for m in manifests:
        t0 = os.path.getmtime(m)
        for run in open(m).read().split():
            job = run + "/slurm_job"
            if os.path.exists(job):
                lat.append(os.path.getmtime(job) - t0)
    lat.sort()
    first = [x for x in lat][:p]
    line += f"; submit-to-start: first {p} tasks {sum(first) / len(first):.2f} s (median of all {lat[len(lat) // 2]:.1f} s incl. the queue)"
    # Harrow's part: from the exit status a task wrote to the run's end in the store.
    lag = sorted(datetime.datetime.fromisoformat(r["ended_at"].replace("Z", "+00:00")).timestamp() - os.path.getmtime(r["run_dir"] + "/exit_status")
                 for r in json.load(open(d + "/runs.json")))
    line += f"; end seen by harrow after {lag[len(lag) // 2]:.2f} s (median), {lag[-1]:.2f} s (max)"
print(line)
PY
done
