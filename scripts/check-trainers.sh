#!/usr/bin/env bash
# Real trainers under harrow's profiles (`make check-trainers`): a TRL SFTTrainer script under `profile: hf`
# (checkpoints, and HarrowCallback), and `llamafactory-cli train` under `profile: llamafactory`, each a small sweep
# on models/chat into a temporary store, checked by scripts/check_trainers.py. About 3 minutes on 2 cores once the
# venv exists; creating it (about 4 minutes, 1.8 GB) happens only when it is missing or its versions differ.
#
# Environment: HARROW_BIN (folder with harrow and harrow-train; default .build/debug), TRAINERS_VENV (default
# .build/trainers-venv), TORCH_WHEEL (a CPU torch wheel; default the one in /opt/wheels, else the CPU index),
# CHECK_TRAINERS_STORE (keep the store there instead of a temporary folder), CHECK_TRAINERS_MIX=1 (also the
# LLaMA-Factory data-mix trial, which fails today).
set -euo pipefail
cd "$(dirname "$0")/.."

HARROW_BIN=${HARROW_BIN:-.build/debug}
VENV=${TRAINERS_VENV:-.build/trainers-venv}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
LLAMAFACTORY=llamafactory==0.9.5

fail() { echo "check-trainers: $*" >&2; exit 1; }

[ -x "$HARROW_BIN/harrow" ] || fail "no harrow in $HARROW_BIN (build it, or set HARROW_BIN)"
[ -f models/chat/tokenizer.json ] || fail "models/chat has no tokenizer.json: run \`make models TRAIN=$HARROW_BIN/harrow-train\`"

# The venv is current when it imports everything at the versions checked here.
venv_ok() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as m
import torch, torchaudio, transformers, peft, trl, datasets, accelerate, llamafactory
want = {"transformers": "4.57.6", "peft": "0.18.1", "trl": "0.24.0", "llamafactory": "0.9.5"}
assert all(m.version(k) == v for k, v in want.items()), {k: m.version(k) for k in want}
EOF
}

if ! venv_ok; then
  echo "creating $VENV (CPU torch, transformers, peft, trl, llamafactory) ..."
  start=$(date +%s)
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  pip=("$VENV/bin/pip" install -q --disable-pip-version-check)
  wheel=${TORCH_WHEEL:-$(ls /opt/wheels/torch-*.whl 2>/dev/null | head -1 || true)}
  if [ -n "$wheel" ]; then
    "${pip[@]}" --no-deps "$wheel"
  else
    "${pip[@]}" --no-deps --index-url "$TORCH_INDEX" torch
  fi
  # Keep that torch: a constraint stops pip from replacing it with the CUDA build from PyPI.
  constraints=$(mktemp)
  grep -v '^#' scripts/trainers-constraints.txt > "$constraints"
  echo "torch==$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))')" >> "$constraints"
  "${pip[@]}" -c "$constraints" filelock "typing-extensions>=4.10.0" "sympy>=1.13.3" "networkx>=2.5.1" jinja2 "fsspec>=0.8.5" "setuptools>=77.0.3"
  "${pip[@]}" -c "$constraints" -r scripts/trainers-requirements.txt
  # gradio, av and torchvision (web UI, video, images) are left out: see scripts/trainers-requirements.txt.
  "${pip[@]}" --no-deps "$LLAMAFACTORY"
  rm -f "$constraints"
  # torchaudio from PyPI is a CUDA build whose extensions need libtorch_cuda; without them it imports in
  # pure-Python mode, which is all LLaMA-Factory's unconditional `import torchaudio` needs for text.
  if ! "$VENV/bin/python" -c 'import torchaudio' 2>/dev/null; then
    rm -f "$("$VENV/bin/python" -c 'import importlib.util as u; print(u.find_spec("torchaudio").submodule_search_locations[0])')"/lib/*.so
  fi
  venv_ok || fail "$VENV does not import torch, transformers, peft, trl and llamafactory at the versions wanted"
  echo "$VENV ready in $(( $(date +%s) - start )) s"
fi
# harrow's Python package (HarrowCallback) from this checkout, every time: it is small and may have changed.
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall ./python >/dev/null

"$VENV/bin/python" - <<'EOF'
import importlib.metadata as m
print("versions:", ", ".join(f"{k} {m.version(k)}" for k in
      ["torch", "transformers", "peft", "trl", "accelerate", "datasets", "llamafactory", "torchaudio"]))
EOF

store=${CHECK_TRAINERS_STORE:-$(mktemp -d /tmp/harrow-check-trainers.XXXXXX)}
echo "store: $store"
# The trainers harrow starts are found on PATH (python3, llamafactory-cli); nothing is fetched from the Hub.
case $VENV in /*) ;; *) VENV=$PWD/$VENV ;; esac
export PATH="$VENV/bin:$PATH"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_DATASETS_CACHE="$store/hf-datasets" TOKENIZERS_PARALLELISM=false
mix=()
[ "${CHECK_TRAINERS_MIX:-0}" = 1 ] && mix=(--mix)
start=$(date +%s)
status=0
python3 scripts/check_trainers.py --harrow "$HARROW_BIN/harrow" --store "$store" "${mix[@]}" || status=$?
echo "check-trainers: $(( $(date +%s) - start )) s for the sweeps and checks"
if [ $status -eq 0 ] && [ -z "${CHECK_TRAINERS_STORE:-}" ]; then rm -rf "$store"; fi
exit $status
