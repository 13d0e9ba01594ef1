#!/usr/bin/env python3
"""Measured peak training memory of Llama-architecture models, for checking Harrow's memory estimate.

Builds transformers' LlamaForCausalLM from a config (random weights, nothing downloaded), runs a training step
(forward on batch x seq random token ids with labels, backward, AdamW step) and records the peak of live tensor
storage bytes, as tallied by a TorchDispatchMode that sees every aten op: each untyped storage is counted once, from
the op that first returns it until it is freed. That is the set of tensors a GPU would hold (parameters, gradients,
optimiser states, activations saved for backward, temporaries), i.e. what torch.cuda.max_memory_allocated() reports,
without the CUDA context, allocator rounding and fragmentation (reserved) or library workspaces.

Which step: a warm-up step on a 1 x 16 batch first creates AdamW's states (they have the parameters' shapes, not the
batch's), then gradients are set to None and the measured step runs at the case's batch and sequence length. So the
peak is the steady-state peak of any step after the first, with optimiser states alive throughout.

LoRA is hand-written (the same tensors peft adds: A r x in, B out x r, y = base(x) + B(A(x)) * alpha/r, dropout 0) on
the chosen projections; the base model is frozen (requires_grad False), so it has no gradients and no states.

Precisions: fp32 (all fp32); bf16 (pure bf16: weights, gradients and AdamW states bf16); amp_bf16 (trainable weights
fp32 with autocast bf16 compute, as HF Trainer's bf16=True; for LoRA the frozen base is loaded in bf16 and the
adapters are fp32, as LLaMA-Factory does).

Usage: measure_memory.py [--cases scripts/memory-cases.json] [--out FILE] [--only NAME ...] [--cross-check]
"""
import argparse
import gc
import json
import math
import os
import platform
import sys
import tempfile
import time
import weakref

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import transformers
from transformers import LlamaConfig, LlamaForCausalLM

MB = 1024 * 1024


# ----------------------------------------------------------------------------------------------------------------
# The tally of live storages.

class LiveStorageTally(TorchDispatchMode):
    """Counts the bytes of untyped storages alive, op by op.

    A storage is registered the first time it is seen (as an op's output or input, or by `register`), keyed by its
    StorageImpl address while it is alive, and unregistered by a weakref callback when its StorageImpl is freed
    (PyTorch keeps one Python object per live storage, so the callback fires exactly then). Storages that an op
    resizes in place are re-measured after every op that touches them.
    """

    def __init__(self):
        super().__init__()
        self.live = {}            # key -> [nbytes, registration id]
        self.current = 0
        self.peak = 0
        self.peak_ids = {}        # registration id -> bytes, of the storages alive at the peak
        self.phase = "setup"
        self.phase_peaks = {}
        self.next_id = 0
        self.ops = 0

    def _key(self, st):
        return st._cdata

    def _free(self, key, rid):
        entry = self.live.get(key)
        if entry is not None and entry[1] == rid:
            del self.live[key]
            self.current -= entry[0]

    def _see(self, t):
        st = t.untyped_storage()
        n = st.nbytes()
        key = self._key(st)
        entry = self.live.get(key)
        if entry is None:
            if n == 0:
                return
            rid = self.next_id
            self.next_id += 1
            self.live[key] = [n, rid]
            self.current += n
            weakref.finalize(st, self._free, key, rid)
        elif entry[0] != n:
            self.current += n - entry[0]
            entry[0] = n

    def register(self, tensors):
        for t in tensors:
            if isinstance(t, torch.Tensor):
                self._see(t)
        self._note_peak()

    def rid_of(self, t):
        entry = self.live.get(self._key(t.untyped_storage()))
        return None if entry is None else entry[1]

    def set_phase(self, name):
        self.phase = name
        self.phase_peaks.setdefault(name, self.current)

    def _note_peak(self):
        if self.current > self.phase_peaks.get(self.phase, -1):
            self.phase_peaks[self.phase] = self.current
        if self.current > self.peak:
            self.peak = self.current
            self.peak_ids = {e[1]: e[0] for e in self.live.values()}
            self.peak_phase = self.phase

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        for t in tree_flatten((out, args, kwargs))[0]:
            if isinstance(t, torch.Tensor):
                self._see(t)
        self._note_peak()
        return out


def storage_bytes(tensors):
    """Bytes of the distinct storages behind tensors."""
    seen = {}
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.untyped_storage().nbytes() > 0:
            st = t.untyped_storage()
            seen[st._cdata] = st.nbytes()
    return sum(seen.values())


# ----------------------------------------------------------------------------------------------------------------
# Model, LoRA, optimiser.

class LoRALinear(nn.Module):
    """y = base(x) + B(A(x)) * alpha / r, as peft's LoRA Linear with lora_dropout 0."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dtype):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False, dtype=dtype)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, dtype=dtype)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        result = self.base_layer(x)
        x = x.to(self.lora_A.weight.dtype) if not torch.is_autocast_enabled() else x
        return result + self.lora_B(self.lora_A(x)) * self.scaling


def build_model(case):
    cfg = case["config"]
    precision = case["precision"]
    config = LlamaConfig(
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_key_value_heads"],
        vocab_size=cfg["vocab_size"],
        tie_word_embeddings=cfg["tie_word_embeddings"],
        max_position_embeddings=cfg.get("max_position_embeddings", 4096),
        rms_norm_eps=1e-5,
        attention_dropout=0.0,
        use_cache=False,
        attn_implementation=case.get("attn_implementation", "sdpa"),
    )
    torch.manual_seed(0)
    lora = case["mode"] == "lora"
    if precision == "fp32":
        base_dtype, train_dtype = torch.float32, torch.float32
    elif precision == "bf16":
        base_dtype, train_dtype = torch.bfloat16, torch.bfloat16
    elif precision == "amp_bf16":
        # Trainable weights fp32 under autocast; a LoRA base frozen in bf16.
        base_dtype, train_dtype = (torch.bfloat16 if lora else torch.float32), torch.float32
    else:
        raise SystemExit(f"unknown precision {precision}")
    model = LlamaForCausalLM(config).to(base_dtype)
    if lora:
        model.requires_grad_(False)
        targets = set(case["lora_targets"])
        for name, module in list(model.named_modules()):
            for child_name, child in list(module.named_children()):
                if child_name in targets and isinstance(child, nn.Linear):
                    setattr(module, child_name, LoRALinear(child, case["lora_r"], case.get("lora_alpha", 2 * case["lora_r"]), train_dtype))
    if case.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return model, config


def make_optimizer(model):
    params = [p for p in model.parameters() if p.requires_grad]
    # foreach=True is AdamW's default on GPUs (it makes list-wide temporaries during the step); CPU's default is the
    # per-tensor loop, so it is asked for explicitly to hold the same tensors a GPU would.
    return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, foreach=True)


def batch(config, b, s, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, config.vocab_size, (b, s), generator=g)
    return ids, ids.clone()


def train_step(model, opt, ids, labels, precision, tally=None):
    phase = tally.set_phase if tally else (lambda _: None)
    phase("forward")
    if precision == "amp_bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids=ids, labels=labels)
    else:
        out = model(input_ids=ids, labels=labels)
    loss = out.loss
    del out
    phase("backward")
    loss.backward()
    grads_rids = None
    if tally:
        grads_rids = {tally.rid_of(p.grad) for p in model.parameters() if p.grad is not None}
    grad_bytes = storage_bytes([p.grad for p in model.parameters() if p.grad is not None])
    phase("optimizer")
    opt.step()
    phase("zero_grad")
    opt.zero_grad(set_to_none=True)
    return float(loss.detach()), grad_bytes, grads_rids


# ----------------------------------------------------------------------------------------------------------------
# One case.

def count_params(model):
    seen, total, trainable = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def run_case(case, cross_check=False):
    gc.collect()
    model, config = build_model(case)
    opt = make_optimizer(model)
    precision = case["precision"]
    # Warm-up step: creates AdamW's states (parameter-shaped, independent of the batch).
    wids, wlabels = batch(config, 1, 16, seed=1)
    train_step(model, opt, wids, wlabels, precision)
    del wids, wlabels
    gc.collect()

    ids, labels = batch(config, case["batch"], case["seq_len"], seed=2)
    params = list(model.parameters())
    buffers = list(model.buffers())
    states = [v for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
    param_bytes = storage_bytes(params)
    buffer_bytes = storage_bytes(buffers)
    state_bytes = storage_bytes(states)

    tally = LiveStorageTally()
    prof = None
    t0 = time.time()
    with tally:
        tally.register(params + buffers + states + [ids, labels])
        baseline = tally.current
        param_rids = {tally.rid_of(p) for p in params} | {tally.rid_of(b) for b in buffers}
        state_rids = {tally.rid_of(s) for s in states}
        if cross_check:
            prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True)
            prof.__enter__()
        loss, grad_bytes, grad_rids = train_step(model, opt, ids, labels, precision, tally)
        if prof is not None:
            prof.__exit__(None, None, None)
    seconds = time.time() - t0

    # What the peak held, by kind: parameters and buffers, AdamW states, gradients (the storages that end up as
    # .grad, counted only if already alive at the peak), and the rest (activations saved for backward, temporaries,
    # the batch).
    at_peak = tally.peak_ids
    def bytes_of(rids):
        return sum(n for rid, n in at_peak.items() if rid in rids)
    peak_params = bytes_of(param_rids)
    peak_states = bytes_of(state_rids)
    peak_grads = bytes_of(grad_rids)
    peak_rest = tally.peak - peak_params - peak_states - peak_grads
    total, trainable = count_params(model)
    cfg = case["config"]
    result = {
        "name": case["name"],
        "model": case["model"],
        "hidden_size": cfg["hidden_size"],
        "intermediate_size": cfg["intermediate_size"],
        "num_hidden_layers": cfg["num_hidden_layers"],
        "num_attention_heads": cfg["num_attention_heads"],
        "num_key_value_heads": cfg["num_key_value_heads"],
        "vocab_size": cfg["vocab_size"],
        "tie_word_embeddings": cfg["tie_word_embeddings"],
        "attn_implementation": case.get("attn_implementation", "sdpa"),
        "precision": precision,
        "mode": case["mode"],
        "lora_r": case.get("lora_r"),
        "lora_alpha": case.get("lora_alpha", 2 * case["lora_r"]) if case["mode"] == "lora" else None,
        "lora_targets": case.get("lora_targets"),
        "batch": case["batch"],
        "seq_len": case["seq_len"],
        "gradient_checkpointing": bool(case.get("gradient_checkpointing", False)),
        "optimizer": "AdamW(foreach=True)",
        "total_params": total,
        "trainable_params": trainable,
        "peak_bytes": tally.peak,
        "peak_phase": tally.peak_phase,
        "forward_peak_bytes": tally.phase_peaks.get("forward"),
        "backward_peak_bytes": tally.phase_peaks.get("backward"),
        "optimizer_peak_bytes": tally.phase_peaks.get("optimizer"),
        "param_bytes": param_bytes,
        "buffer_bytes": buffer_bytes,
        "grad_bytes": grad_bytes,
        "optimizer_state_bytes": state_bytes,
        "peak_minus_params_grads_states_bytes": tally.peak - param_bytes - buffer_bytes - grad_bytes - state_bytes,
        "peak_minus_params_states_bytes": tally.peak - param_bytes - buffer_bytes - state_bytes,
        "at_peak_param_bytes": peak_params,
        "at_peak_grad_bytes": peak_grads,
        "at_peak_optimizer_state_bytes": peak_states,
        "at_peak_activation_bytes": peak_rest,
        "input_bytes": ids.nbytes + labels.nbytes,
        "loss": round(loss, 4),
        "aten_ops": tally.ops,
        "seconds": round(seconds, 2),
    }
    if prof is not None:
        result["cross_check"] = profiler_peak(prof, baseline, tally.peak)
    del model, opt, params, buffers, states, ids, labels, tally, prof
    gc.collect()
    return result


def profiler_peak(prof, baseline, tally_peak):
    """Peak from torch.profiler's CPU allocator events (profile_memory=True) over the same step.

    Every allocation and free of the CPU allocator is an event with its size (negative for frees); their running sum
    over the step, plus what was alive when the profiler started, is the allocator's live total."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            trace = json.load(f)
    events = [e for e in trace.get("traceEvents", []) if e.get("name") == "[memory]"]
    events.sort(key=lambda e: float(e.get("ts", 0)))
    running, peak, allocs, frees = 0, 0, 0, 0
    for e in events:
        n = int(e["args"].get("Bytes", 0))
        running += n
        peak = max(peak, running)
        allocs += n > 0
        frees += n < 0
    return {
        "method": "torch.profiler(profile_memory=True): running sum of CPU allocator events, plus the tally's baseline",
        "allocation_events": allocs,
        "free_events": frees,
        "profiler_peak_bytes": baseline + peak,
        "tally_peak_bytes": tally_peak,
        "difference_bytes": baseline + peak - tally_peak,
    }


# ----------------------------------------------------------------------------------------------------------------

def markdown_table(doc):
    """The README's table of a measured.json."""
    mb = lambda n: f"{n / MB:,.1f}" if n is not None else ""
    rows = ["| case | params | mode | precision | batch | seq | ckpt | attn | peak MB | peak in | params MB | grads MB | "
            "AdamW states MB | at peak: grads MB | at peak: activations MB |",
            "| --- | ---: | --- | --- | ---: | ---: | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for c in doc["cases"]:
        mode = "full" if c["mode"] == "full" else f"LoRA r={c['lora_r']} {','.join(t.replace('_proj', '') for t in c['lora_targets'])}"
        rows.append(f"| {c['name']} | {c['total_params'] / 1e6:.1f}M | {mode} | {c['precision']} | {c['batch']} | {c['seq_len']} | "
                    f"{'yes' if c['gradient_checkpointing'] else 'no'} | {c['attn_implementation']} | {mb(c['peak_bytes'])} | "
                    f"{c['peak_phase']} | {mb(c['param_bytes'] + c['buffer_bytes'])} | {mb(c['grad_bytes'])} | "
                    f"{mb(c['optimizer_state_bytes'])} | {mb(c['at_peak_grad_bytes'])} | {mb(c['at_peak_activation_bytes'])} |")
    return "\n".join(rows)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=os.path.join(here, "memory-cases.json"))
    fixture = os.path.normpath(os.path.join(here, "..", "Tests", "SweepTests", "Fixtures", "memory", "measured.json"))
    ap.add_argument("--out", default=fixture, help="where to write the results (default: the fixture)")
    ap.add_argument("--only", nargs="*", help="case names to run (default: all)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--table", metavar="MEASURED_JSON", help="print the README's markdown table of a measured.json and exit")
    args = ap.parse_args()
    if args.table:
        with open(args.table) as f:
            print(markdown_table(json.load(f)))
        return
    if args.threads:
        torch.set_num_threads(args.threads)

    with open(args.cases) as f:
        spec = json.load(f)
    models = spec["models"]
    cases = []
    for c in spec["cases"]:
        c = dict(c)
        c["config"] = models[c["model"]]
        c.setdefault("lora_targets", ["q_proj", "v_proj"] if c["mode"] == "lora" else None)
        cases.append(c)
    if args.only:
        cases = [c for c in cases if c["name"] in args.only]

    started = time.time()
    results = []
    for c in cases:
        r = run_case(c, cross_check=c.get("cross_check", False))
        results.append(r)
        print(f"{r['name']:<40} params {r['total_params']/1e6:6.1f}M  peak {r['peak_bytes']/MB:8.1f} MB in {r['peak_phase']:<9} "
              f"(params {r['param_bytes']/MB:.1f}, grads {r['grad_bytes']/MB:.1f}, states {r['optimizer_state_bytes']/MB:.1f}; "
              f"at the peak: grads {r['at_peak_grad_bytes']/MB:.1f}, activations {r['at_peak_activation_bytes']/MB:.1f})  "
              f"{r['seconds']:.1f}s",
              flush=True)
        if "cross_check" in r:
            x = r["cross_check"]
            print(f"    profiler peak {x['profiler_peak_bytes']/MB:.1f} MB vs tally {x['tally_peak_bytes']/MB:.1f} MB "
                  f"(difference {x['difference_bytes']/MB:+.2f} MB)", flush=True)
    doc = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "method": ("Peak of live tensor storage bytes over one training step (forward, backward, AdamW step), tallied "
                   "by a TorchDispatchMode that registers every untyped storage an aten op returns or reads, once, "
                   "until it is freed. A warm-up step on a 1x16 batch creates AdamW's states first, so the measured "
                   "step is a steady-state step with states alive throughout; gradients are None at its start "
                   "(zero_grad(set_to_none=True)). Random weights, transformers LlamaForCausalLM, on CPU."),
        "step": "second (after a 1x16 warm-up step that creates the optimizer states)",
        "total_seconds": round(time.time() - started, 1),
        "cases": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.only and os.path.normpath(os.path.abspath(args.out)) == fixture:
        print("(--only without --out: the fixture is left as it is; the results follow)")
        json.dump(doc, sys.stdout, indent=1)
        return
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out} ({len(results)} cases, {doc['total_seconds']} s)")


if __name__ == "__main__":
    main()
