# The GPU memory features with a real PyTorch trainer, outside `make test`: experiments/gpu-oom.yaml's 8 trials of
# scripts/oom_trainer.py (transformers' Llama on a simulated card) on two cards, in a new temporary folder (named at
# the start and kept). Prints the plan's memory estimates, the sweep, which trials shared a card, the out-of-memory
# retries and the failure causes as `harrow sweeps`, `runs --json`, `show --json` and the report give them. Fails
# unless a trial larger than a card is refused (out_of_memory_gpu), a trial that ran out of memory in PyTorch succeeds
# at half its micro-batch, two trials trained on one card at once, and the report names the causes. About a minute
# on 2 cores once .build/memory-venv exists (made as `make measure-memory` makes it; needs scripts/measure-memory.mk).
# HARROW_BIN=DIR uses built binaries from DIR instead of building the release ones.
.PHONY: show-oom

# The folder mirrors the repository's layout, so the experiment's relative paths (model, trainer, venv) hold in both.
show-oom: memory-venv
	@if [ -z "$(HARROW_BIN)" ]; then $(MAKE) --no-print-directory release; fi
	@set -e; harrow=$(abspath $(or $(HARROW_BIN),$(REL)))/harrow; \
	  dir=$$(mktemp -d "$${TMPDIR:-/tmp}/harrow-show-oom.XXXXXX"); echo "in $$dir"; \
	  mkdir -p $$dir/experiments $$dir/scripts $$dir/.build; \
	  cp experiments/gpu-oom.yaml $$dir/; cp -R experiments/gpu-oom $$dir/experiments/; cp scripts/oom_trainer.py scripts/measure_memory.py $$dir/scripts/; \
	  ln -s $(abspath $(MEMORY_VENV)) $$dir/.build/memory-venv; \
	  cd $$dir; \
	  echo; echo "== harrow plan gpu-oom.yaml --memory"; $$harrow plan gpu-oom.yaml --memory; $$harrow plan gpu-oom.yaml --json > plan.json; \
	  echo; echo "== harrow sweep gpu-oom.yaml"; start=$$(date +%s); status=0; $$harrow sweep gpu-oom.yaml || status=$$?; \
	  echo "sweep: exit $$status after $$(( $$(date +%s) - start )) s"; [ $$status -le 1 ] || exit $$status; \
	  echo; echo "== harrow sweeps"; $$harrow sweeps; $$harrow sweeps --json > sweeps.json; \
	  $$harrow runs --sweep gpu-oom --json > runs.json; \
	  for id in $$(python3 -c 'import json; print(*[r["id"] for r in json.load(open("runs.json"))])'); do \
	    $$harrow show $$id --json > show-$$id.json; done; \
	  echo; echo "== harrow report --sweep gpu-oom --out report"; $$harrow report --sweep gpu-oom --out report; \
	  echo; python3 -c "$$SHOW_OOM_CHECK"

# Reads what the commands above wrote (and each trainer's stdout: its card and when it trained) and says whether the
# story holds.
define SHOW_OOM_CHECK_PY
import glob, json, os, re, sys
GIB = 1 << 30
load = lambda name: json.load(open(name))
plan = {t["key"]: t for t in load("plan.json")["trials"]}
runs = load("runs.json")
sweep = load("sweeps.json")[0]
show = {r["id"]: load("show-" + r["id"] + ".json") for r in runs}
shape = lambda r: "%s x %s" % (r["params"]["batch_size"], r["params"]["max_seq_len"])
estimate = lambda r: "%.2f GiB" % (plan[r["params_key"]]["memory"]["total_bytes"] / GIB)

# Each attempt's card and time on it, from the trainer's own lines; an attempt that ran out of memory ends when its
# stderr was last written.
spans = []
for r in runs:
    folder = r["run_dir"]
    attempts = sorted(glob.glob(folder + "/attempts/*/"), key=lambda p: int(p.rstrip("/").split("/")[-1])) + [folder + "/"]
    for n, path in enumerate(attempts, 1):
        log = open(path + "stdout.log").read() if os.path.exists(path + "stdout.log") else ""
        start = re.search(r"^start ([0-9.]+) card (\S+) .*micro-batch (\d+ x \d+)", log, re.M)
        if not start:
            continue
        end = re.search(r"^end ([0-9.]+) card \S+: peak (.*) of tensors", log, re.M)
        err = open(path + "stderr.log").read().strip().splitlines() if os.path.exists(path + "stderr.log") else []
        oom = [line for line in err if line.startswith("torch.OutOfMemoryError: CUDA out of memory.")]
        spans.append(dict(run=r["id"], attempt=n, card=start.group(2), micro=start.group(3), start=float(start.group(1)),
                          end=float(end.group(1)) if end else os.path.getmtime(path + "stderr.log"),
                          peak=end.group(2) if end else None, oom=oom[-1] if oom else None))
t0 = min(s["start"] for s in spans)
print("Cards (from each trainer's stdout; seconds from the first trainer's start):")
most = {}
for card in sorted({s["card"] for s in spans}):
    on = sorted((s for s in spans if s["card"] == card), key=lambda s: s["start"])
    most[card] = max(sum(1 for o in on if o["start"] <= s["start"] < o["end"]) for s in on)
    print("  card %s, at most %d at once:" % (card, most[card]))
    for s in on:
        what = "peak %s of tensors" % s["peak"] if s["peak"] else "out of memory"
        print("    %5.1f-%5.1f s  %s attempt %d  micro-batch %s  %s" % (s["start"] - t0, s["end"] - t0, s["run"], s["attempt"], s["micro"], what))

print("\nEvery run (runs --json, show --json):")
for r in runs:
    f = r["failure"]
    print("  %s %-8s %-9s estimate %s  attempt %d  %s" % (r["id"], shape(r), r["status"], estimate(r), r["attempt"],
          "%.0f s" % r["duration_s"] if r["duration_s"] is not None else "-"))
    if f:
        print("      failure %s (%s): %s" % (f["cause"], f["label"], " / ".join(f["lines"])))
    for a in show[r["id"]]["attempts"]:
        if a["note"]:
            oom = [s["oom"] for s in spans if s["run"] == r["id"] and s["attempt"] == a["attempt"] and s["oom"]]
            print("      attempt %d %s after %.0f s: %s" % (a["attempt"], a["status"], a["duration_s"], oom[0][:160] if oom else "-"))
            print("        then: %s" % a["note"])
print("harrow sweeps --json: failures %s" % json.dumps(sweep["failures"]))

refused = [r for r in runs if (r["failure"] or {}).get("cause") == "out_of_memory_gpu"
           and any("by its memory estimate" in line for line in r["failure"]["lines"]) and not any(s["run"] == r["id"] for s in spans)]
# Succeeded, after an attempt that PyTorch's error ended and Harrow noted, at half the planned micro-batch.
retried = [r for r in runs if r["status"] == "succeeded" and any(
    (a["note"] or "").startswith("out of memory (GPU): again at")
    and any(s["oom"] for s in spans if s["run"] == r["id"] and s["attempt"] == a["attempt"]) for a in show[r["id"]]["attempts"])
    and any(s["run"] == r["id"] and s["peak"] and int(s["micro"].split()[0]) * 2 == r["params"]["batch_size"] for s in spans)]
index = open("report/index.html").read()
pages = [open("report/runs/%s.html" % r["id"]).read() for r in retried]
checks = [
    ("a trial larger than a card refused without starting, out_of_memory_gpu", refused),
    ("a trial that ran out of memory in PyTorch succeeded at half its micro-batch", retried),
    ("two trials trained on one card at once", [c for c in most if most[c] >= 2]),
    ("harrow sweeps counts out_of_memory_gpu", sweep["failures"].get("out_of_memory_gpu")),
    ("the report says why: out of memory (GPU)", re.search(r"why: [^<]*out of memory \(GPU\)", index)),
    ("the report's run pages show each retry", pages and all("out of memory (GPU): again at" in p for p in pages)),
]
print()
for what, ok in checks:
    print("%s %s" % ("ok    " if ok else "FAILED", what))
sys.exit(0 if all(ok for _, ok in checks) else 1)
endef
show-oom: export SHOW_OOM_CHECK = $(SHOW_OOM_CHECK_PY)
