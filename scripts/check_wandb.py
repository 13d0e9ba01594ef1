"""W&B scripts under harrow with the real W&B SDK (`make check-wandb`).

Runs the unmodified W&B scripts of examples/wandb (hyperparameters from `wandb.config`, curves through `wandb.log`)
under `harrow sweep` into a temporary store, offline, and checks against what the SDK itself recorded:

- each trial's `wandb.config` (the config in the run's `.wandb` file) equals the parameters harrow planned;
- every point the script logged is in the store (counted in the `.wandb` file by W&B's own reader,
  `wandb/sdk/internal/datastore.py` of wandb 0.19.11, parsed with the installed SDK's protobufs);
- curves reached the store while the runs were running (a poller reads `harrow runs --json` twice a second);
- under `method: bayes` with hyperband, trials were stopped on the logged metric and no proposal stood on a
  missing value;
- the nested-parameter sweep of wandb/sweeps' examples passes each trial its dict as W&B's agent does.

    python scripts/check_wandb.py --harrow .build/debug/harrow --python VENV/bin/python --datastore DATASTORE_PY
"""
import argparse
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "wandb")


def harrow_json(harrow, *args):
    out = subprocess.run([harrow, *args], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"harrow {' '.join(args)} exited {out.returncode}: {out.stderr.strip()[:500]}")
    return json.loads(out.stdout)


class SDKReader:
    """W&B's own reader of a `.wandb` file."""

    def __init__(self, datastore_py):
        import wandb
        from wandb.proto import wandb_internal_pb2

        wandb._assert_is_internal_process = True  # the 0.19 reader asks; later SDKs dropped the attribute
        spec = importlib.util.spec_from_file_location("w_datastore", datastore_py)
        self.ds = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.ds)
        self.pb = wandb_internal_pb2

    def read(self, path):
        """(config, {key: finite points}) of a run file."""
        store = self.ds.DataStore()
        store.open_for_scan(path)
        config, points = {}, {}
        while (data := store.scan_data()) is not None:
            r = self.pb.Record()
            r.ParseFromString(data)
            kind = r.WhichOneof("record_type")
            if kind in ("run", "config"):
                for item in (r.run.config.update if kind == "run" else r.config.update):
                    key = item.key or ".".join(item.nested_key)
                    if not key.startswith("_"):
                        config[key] = json.loads(item.value_json)
            elif kind == "history":
                for item in r.history.item:
                    key = item.key or ".".join(item.nested_key)
                    if key.startswith("_"):
                        continue
                    value = json.loads(item.value_json)
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                        points[key] = points.get(key, 0) + 1
        return config, points


def flatten(config, prefix=""):
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


class Poller(threading.Thread):
    """Points of each running run's metrics, twice a second, from `harrow runs --json`."""

    def __init__(self, harrow, db, sweep):
        super().__init__(daemon=True)
        self.harrow, self.db, self.sweep = harrow, db, sweep
        self.seen = {}  # run -> [points while running]
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.5):
            try:
                if not os.path.exists(self.db):
                    continue
                for r in harrow_json(self.harrow, "runs", "--sweep", self.sweep, "--json", "--db", self.db):
                    if r["status"] == "running":
                        total = sum(m["count"] for m in (r.get("metrics") or {}).values())
                        self.seen.setdefault(r["id"], []).append(total)
            except (RuntimeError, json.JSONDecodeError, subprocess.TimeoutExpired):
                pass


def check_sweep(harrow, python, reader, work, file, expect_runs, failures, hyperband=False, live=True):
    sweep_file = os.path.join(work, file)
    sweep = os.path.splitext(file)[0]
    db = os.path.join(work, f"{sweep}.db")
    env = dict(os.environ, PATH=os.path.dirname(python) + os.pathsep + os.environ["PATH"])
    env.pop("WANDB_MODE", None)
    print(f"\n=== harrow sweep {file}", flush=True)
    poller = Poller(harrow, db, sweep)
    poller.start()
    started = time.time()
    # A sweep without `name:` is named by its file's stem.
    proc = subprocess.run([harrow, "sweep", sweep_file, "--db", db], cwd=work, env=env, text=True, capture_output=True)
    poller.stop.set()
    poller.join()
    print(proc.stdout.rstrip()[-4000:])
    if proc.returncode != 0:
        print(proc.stderr.rstrip()[-3000:])
        failures.append(f"{file}: harrow sweep exited {proc.returncode}")
        return
    print(f"({time.time() - started:.0f} s)")
    runs = harrow_json(harrow, "runs", "--sweep", sweep, "--json", "--db", db)
    if len(runs) != expect_runs:
        failures.append(f"{file}: {len(runs)} runs, expected {expect_runs}")
    stopped = 0
    for r in runs:
        rid, status = r["id"], r["status"]
        stopped += status == "stopped_early"
        if status not in ("succeeded", "stopped_early"):
            failures.append(f"{file}/{rid}: {status}")
            continue
        files = [os.path.join(d, f) for d, _, fs in os.walk(r["run_dir"]) for f in fs if f.endswith(".wandb")]
        if len(files) != 1:
            failures.append(f"{file}/{rid}: {len(files)} .wandb files in {r['run_dir']}")
            continue
        config, points = reader.read(files[0])
        seen = flatten(config)
        planned = r["params"]
        wrong = {k: (v, seen.get(k)) for k, v in planned.items() if seen.get(k) != v}
        if wrong:
            failures.append(f"{file}/{rid}: wandb.config differs from the plan (planned, seen): {wrong}")
        stored = {k: m["count"] for k, m in (r.get("metrics") or {}).items()}
        if stored != points:
            failures.append(f"{file}/{rid}: the store holds {stored}, the .wandb file {points}")
        total = sum(points.values())
        if live and status == "succeeded" and not any(0 < n < total for n in poller.seen.get(rid, [])):
            failures.append(f"{file}/{rid}: no partial curve stored while it ran (polled: {poller.seen.get(rid)}, final {total})")
        print(f"{rid} {status}: config as planned ({len(planned)} parameters), {total} points as W&B's reader counts "
              f"them, seen while running: {poller.seen.get(rid, [])}")
    if hyperband:
        if stopped == 0:
            failures.append(f"{file}: hyperband stopped no trial")
        if "best so far 0 " in proc.stdout or "best so far 0;" in proc.stdout:
            failures.append(f"{file}: a proposal stood on a missing value (best so far 0)")
        print(f"hyperband stopped {stopped} of {len(runs)} trials")


def check_fixture(harrow, python, datastore, work, failures):
    """A fresh SDK recording, imported by harrow, against the SDK's reader's counts."""
    out = os.path.join(work, "fixture")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wandb_fixture.py")
    subprocess.run([python, script, out, datastore], check=True, capture_output=True)
    expected = json.load(open(os.path.join(out, "expected.json")))
    db = os.path.join(work, "import.db")
    subprocess.run([harrow, "import", "wandb", os.path.join(out, "run.wandb"), "--db", db], check=True, capture_output=True)
    [run] = harrow_json(harrow, "runs", "--json", "--db", db)
    counts = {k: m["count"] for k, m in run["metrics"].items()}
    print(f"\n=== harrow import wandb: {counts}; W&B's reader: {expected['points']}")
    if counts != expected["points"]:
        failures.append(f"import: harrow stored {counts}, W&B's reader counts {expected['points']}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--harrow", required=True)
    p.add_argument("--python", required=True, help="a Python with the wandb SDK")
    p.add_argument("--datastore", required=True, help="wandb 0.19.11's wandb/sdk/internal/datastore.py")
    a = p.parse_args()
    harrow = os.path.abspath(a.harrow)
    a.python = os.path.abspath(a.python)
    sys.path.insert(0, os.path.dirname(a.python))
    reader = SDKReader(a.datastore)
    failures = []
    work = tempfile.mkdtemp(prefix="check-wandb-")
    for name in os.listdir(EXAMPLES):
        shutil.copy(os.path.join(EXAMPLES, name), work)
    check_fixture(harrow, a.python, a.datastore, work, failures)
    check_sweep(harrow, a.python, reader, work, "sweep-grid.yaml", 4, failures)
    # Its trials last half a second: too short to be seen running.
    check_sweep(harrow, a.python, reader, work, "sweep-nested.yaml", 8, failures, live=False)
    check_sweep(harrow, a.python, reader, work, "sweep-bayes.yaml", 10, failures, hyperband=True)
    print()
    if failures:
        print("check-wandb FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("check-wandb: every trial's wandb.config was its plan, every logged point reached the store, live")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
