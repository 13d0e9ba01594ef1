"""Records a W&B offline run with the real SDK and writes what W&B's own reader finds in it.

Used by `make check-wandb`: `python scripts/wandb_fixture.py OUT_DIR DATASTORE_PY` runs a short training-like
script offline (300 `wandb.log` calls, a config update larger than two 32 KiB blocks, so records span blocks), copies
its `run-*.wandb` file to OUT_DIR/run.wandb, and writes OUT_DIR/expected.json: the history counted by the SDK's own
LevelDB reader (`wandb/sdk/internal/datastore.py` of wandb 0.19.11, the last SDK with a Python reader, given as
DATASTORE_PY) and parsed with the installed SDK's protobufs.
"""
import glob
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile


def record(out_dir: str) -> str:
    work = tempfile.mkdtemp()
    script = os.path.join(work, "train.py")
    with open(script, "w") as f:
        f.write(
            "import math, wandb\n"
            "run = wandb.init(config={'lr': 1e-4, 'lora': {'r': 8, 'alpha': 16}, 'targets': ['q_proj', 'v_proj']})\n"
            "wandb.config.update({'notes': 'x' * 80000})\n"
            "for step in range(300):\n"
            "    row = {'train/loss': 2.0 * math.exp(-step / 80) + 0.1, 'lr': 1e-4 * (1 - step / 300)}\n"
            "    if step % 10 == 9:\n"
            "        row['val_loss'] = 2.1 * math.exp(-step / 90) + 0.15\n"
            "    if step == 150:\n"
            "        row['grad_norm'] = float('nan')\n"
            "    wandb.log(row)\n"
            "wandb.finish()\n"
        )
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=work, WANDB_SILENT="true", WANDB_RUN_ID="fixture01")
    subprocess.run([sys.executable, script], check=True, env=env, cwd=work)
    [path] = glob.glob(os.path.join(work, "wandb", "offline-run-*", "run-*.wandb"))
    shutil.copy(path, os.path.join(out_dir, "run.wandb"))
    return os.path.join(out_dir, "run.wandb")


def expected(path: str, datastore_py: str) -> dict:
    import wandb
    from wandb.proto import wandb_internal_pb2 as pb

    # The 0.19 reader asserts it runs in W&B's internal process, an attribute later SDKs dropped.
    wandb._assert_is_internal_process = True
    spec = importlib.util.spec_from_file_location("w_datastore", datastore_py)
    ds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ds)
    store = ds.DataStore()
    store.open_for_scan(path)
    histories, points, config = 0, {}, {}
    while True:
        data = store.scan_data()
        if data is None:
            break
        r = pb.Record()
        r.ParseFromString(data)
        kind = r.WhichOneof("record_type")
        if kind == "history":
            histories += 1
            for item in r.history.item:
                key = item.key or ".".join(item.nested_key)
                if key.startswith("_"):
                    continue
                value = json.loads(item.value_json)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    points[key] = points.get(key, 0) + 1
        elif kind in ("run", "config"):
            items = r.run.config.update if kind == "run" else r.config.update
            for item in items:
                key = item.key or ".".join(item.nested_key)
                if not key.startswith("_"):
                    config[key] = json.loads(item.value_json)
    return {"sdk": wandb.__version__, "reader": "wandb 0.19.11 wandb/sdk/internal/datastore.py", "history_records": histories,
            "points": points, "config_keys": sorted(config), "size": os.path.getsize(path)}


if __name__ == "__main__":
    out, datastore_py = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    path = record(out)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected(path, datastore_py), f, indent=1, sort_keys=True)
        f.write("\n")
    print(open(os.path.join(out, "expected.json")).read())
