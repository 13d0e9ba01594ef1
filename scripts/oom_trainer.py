#!/usr/bin/env python3
"""A real PyTorch trainer on a simulated GPU of a declared size, for showing Harrow's memory features (`make show-oom`).

Usage: oom_trainer.py TRIAL_JSON   (Harrow's `{config}`; metrics go to $HARROW_METRICS)

Builds transformers' LlamaForCausalLM from the config.json in `base_model` (random weights, nothing downloaded) and
trains `max_steps` AdamW steps, each of `grad_accum` micro-batches of `batch_size` x `max_seq_len` synthetic tokens,
then logs a validation loss. Full fine-tuning with `full_finetune: true`, else LoRA (`lora_r`, default 8, on
`lora_targets`, default q_proj and v_proj: the defaults Harrow's estimate assumes for a transformers trainer).
TrainingArguments' names (`per_device_train_batch_size`, `gradient_accumulation_steps`, `max_length`) are read too.

The card: tensors live in host memory, but a TorchDispatchMode tallies live tensor storage bytes exactly as
scripts/measure_memory.py does (what torch.cuda.memory_allocated() counts on a GPU) from the moment the model is
placed on the card. The card holds that and a CUDA context; when a new storage takes the two past the trial's
`device_memory` (`2GB`, `768MiB`; GB read as GiB, as Harrow reads `gpu_memory`), the op raises PyTorch's own
torch.OutOfMemoryError with the CUDA caching allocator's message, uncaught: the traceback goes to stderr and the
process exits 1, as a real CUDA OOM does. The allocator's rounding and cache are not simulated. Without
`device_memory` the card has no limit. Standard output says which card (CUDA_VISIBLE_DEVICES) the trial had, from when
to when, and its peak.
"""
import json
import math
import os
import re
import sys
import time
import weakref

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from transformers import LlamaConfig, LlamaForCausalLM

GIB = 1 << 30
# What a real card loses to the CUDA context (the driver's and PyTorch's kernels) before the first tensor: 300-500
# MiB with lazy module loading; 512 MiB, as Harrow's estimate takes it.
CUDA_CONTEXT = 512 << 20


def parse_size(text):
    """`1GB`, `768 MiB`, `1.5G`, a plain byte count; GB and GiB alike are 2^30, as Harrow reads gpu_memory."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(I?B)?\s*", str(text).upper())
    if not m:
        raise SystemExit(f"device_memory must be a size like 1GB or 768MiB, not {text!r}")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2) or " "))


def format_size(n):
    """c10/cuda/CUDACachingAllocator.cpp's format_size: two decimals, 1024-based units."""
    if n <= 1024:
        return f"{n} bytes"
    if n <= 1 << 20:
        return f"{n / 1024:.2f} KiB"
    if n <= 1 << 30:
        return f"{n / (1 << 20):.2f} MiB"
    return f"{n / GIB:.2f} GiB"


class SimulatedCard(TorchDispatchMode):
    """Live tensor storage bytes, op by op (scripts/measure_memory.py's LiveStorageTally), and a CUDA context, against a
    capacity.

    Each untyped storage counts once, from the op that first returns or reads it until a weakref callback sees it
    freed; in-place resizes are re-measured. A storage that takes the total past the capacity raises the error a CUDA
    allocation of that size would."""

    def __init__(self, capacity, context=CUDA_CONTEXT):
        super().__init__()
        self.capacity = capacity
        self.context = context
        self.live = {}  # StorageImpl address -> [bytes, registration id]
        self.current = 0  # tensor bytes: what torch.cuda.memory_allocated() reports
        self.peak = 0
        self.next_id = 0

    def _free(self, key, rid):
        entry = self.live.get(key)
        if entry is not None and entry[1] == rid:
            del self.live[key]
            self.current -= entry[0]

    def _see(self, t):
        st = t.untyped_storage()
        n, key = st.nbytes(), st._cdata
        entry = self.live.get(key)
        if entry is None:
            if n == 0:
                return
            self.live[key] = [n, self.next_id]
            weakref.finalize(st, self._free, key, self.next_id)
            self.next_id += 1
            grown = n
        elif entry[0] != n:
            grown = n - entry[0]
            entry[0] = n
        else:
            return
        self.current += grown
        if self.capacity is not None and grown > 0 and self.context + self.current > self.capacity:
            self.out_of_memory(grown)
        self.peak = max(self.peak, self.current)

    def out_of_memory(self, size):
        # The message of DeviceCachingAllocator::malloc in pytorch/pytorch c10/cuda/CUDACachingAllocator.cpp
        # (TORCH_CHECK_WITH(OutOfMemoryError, false, "CUDA out of memory. Tried to allocate ", ...)), with its
        # format_size. "GPU 0": a process sees its CUDA_VISIBLE_DEVICES card as device 0. Nothing is cached here, so
        # nothing is reserved but unallocated; the allocator rounds requests up to 512 bytes (kMinBlockSize).
        allocated = self.current - size
        free = max(0, self.capacity - self.context - allocated)
        raise torch.OutOfMemoryError(
            f"CUDA out of memory. Tried to allocate {format_size(-(-size // 512) * 512)}. GPU 0 has a total capacity of "
            f"{format_size(self.capacity)} of which {format_size(free)} is free. Of the allocated memory "
            f"{format_size(allocated)} is allocated by PyTorch, and {format_size(0)} is reserved by PyTorch but "
            "unallocated. If reserved but unallocated memory is large try setting "
            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory "
            "Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)")

    def place(self, tensors):
        """Tensors made before the mode (the model), as model.to("cuda") would allocate them."""
        for t in tensors:
            self._see(t)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten((out, args, kwargs))[0]:
            if isinstance(t, torch.Tensor):
                self._see(t)
        return out


class LoRALinear(nn.Module):
    """y = base(x) + B(A(x)) * alpha / r, peft's LoRA Linear with dropout 0 (as measure_memory.py's)."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(x)) * self.scaling


def setting(trial, names, default=None):
    for name in names:
        if trial.get(name) is not None:
            return trial[name]
    return default


def synthetic_batch(gen, batch, seq, vocab):
    """Token ids a model can learn from in a few steps: each row counts up from a random start by a random stride
    (mod 256), with a third of its ids replaced by random ones."""
    n = min(vocab, 256)
    start = torch.randint(0, n, (batch, 1), generator=gen)
    stride = torch.randint(1, 8, (batch, 1), generator=gen)
    ids = (start + stride * torch.arange(seq)) % n
    noise = torch.rand(batch, seq, generator=gen) < 1 / 3
    return torch.where(noise, torch.randint(0, n, (batch, seq), generator=gen), ids)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.split("\n\n")[1])
    with open(sys.argv[1]) as f:
        trial = json.load(f)
    model_dir = setting(trial, ["base_model", "model_name_or_path"])
    batch = int(setting(trial, ["batch_size", "per_device_train_batch_size"], 8))
    accum = int(setting(trial, ["grad_accum", "gradient_accumulation_steps"], 1))
    seq = int(setting(trial, ["max_seq_len", "max_length"], 128))
    steps = int(trial.get("max_steps", 4))
    lr = float(trial.get("lr", 1e-3))
    capacity = parse_size(trial["device_memory"]) if trial.get("device_memory") is not None else None
    torch.manual_seed(int(trial.get("seed", 0)))

    with open(os.path.join(model_dir, "config.json")) as f:
        config = LlamaConfig(**json.load(f), use_cache=False, attn_implementation="sdpa")
    model = LlamaForCausalLM(config)
    if trial.get("full_finetune"):
        mode = "full fine-tuning"
    else:
        r = int(setting(trial, ["lora_r", "lora_rank"], 8))
        targets = setting(trial, ["lora_targets", "lora_target"], ["q_proj", "v_proj"])
        targets = targets.split(",") if isinstance(targets, str) else targets
        model.requires_grad_(False)
        for module in list(model.modules()):
            for name, child in list(module.named_children()):
                if name in targets and isinstance(child, nn.Linear):
                    setattr(module, name, LoRALinear(child, r, float(trial.get("lora_alpha", 2 * r))))
        mode = f"LoRA r {r} on {', '.join(targets)}"
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    # foreach=True: AdamW's default on CUDA (CPU's is a per-tensor loop), so the step holds what it would on a GPU.
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, foreach=True)

    card = os.environ.get("CUDA_VISIBLE_DEVICES", "none")
    size = format_size(capacity) if capacity else "no limit"
    print(f"start {time.time():.3f} card {card} ({size}): {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params, "
          f"{mode}, micro-batch {batch} x {seq} tokens, {accum} micro-batches a step", flush=True)
    metrics = open(os.environ.get("HARROW_METRICS", os.devnull), "a", buffering=1)
    metrics.write(json.dumps({"event": "start", "total_steps": steps, "steps_per_epoch": steps, "warmup_steps": 0}) + "\n")

    gen = torch.Generator().manual_seed(1)
    with SimulatedCard(capacity) as tally:
        tally.place(list(model.parameters()) + list(model.buffers()))
        for step in range(1, steps + 1):
            total = 0.0
            for _ in range(accum):
                ids = synthetic_batch(gen, batch, seq, config.vocab_size)
                loss = model(input_ids=ids, labels=ids).loss / accum
                loss.backward()
                total += float(loss.detach())
                del loss
            opt.step()
            opt.zero_grad(set_to_none=True)
            metrics.write(json.dumps({"step": step, "train/loss": round(total, 5), "lr": lr,
                                      "memory/peak_gib": round(tally.peak / GIB, 4)}) + "\n")
        model.eval()
        with torch.no_grad():
            vgen = torch.Generator().manual_seed(2)
            losses = []
            for _ in range(2):
                ids = synthetic_batch(vgen, batch, seq, config.vocab_size)
                losses.append(float(model(input_ids=ids, labels=ids).loss))
            val = sum(losses) / len(losses)
    metrics.write(json.dumps({"step": steps, "val/loss": round(val, 5)}) + "\n")
    metrics.write(json.dumps({"event": "done"}) + "\n")
    print(f"end {time.time():.3f} card {card}: peak {format_size(tally.peak)} of tensors, val/loss {val:.4f}", flush=True)


if __name__ == "__main__":
    main()
