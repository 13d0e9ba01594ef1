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
import os
import re
import sys
import time

import torch
import torch.nn as nn
from transformers import LlamaConfig, LlamaForCausalLM

from measure_memory import LiveStorageTally, LoRALinear

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


class SimulatedCard(LiveStorageTally):
    """measure_memory.py's tally of live tensor storage, op by op, plus a CUDA context, against a capacity: a storage
    that takes the total past the capacity raises the error a CUDA allocation of that size would."""

    def __init__(self, capacity, context=CUDA_CONTEXT):
        super().__init__()
        self.capacity = capacity
        self.context = context

    def _see(self, t):
        before = self.current
        super()._see(t)
        grown = self.current - before
        if self.capacity is not None and grown > 0 and self.context + self.current > self.capacity:
            self.out_of_memory(grown)

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
                    setattr(module, name, LoRALinear(child, r, float(trial.get("lora_alpha", 2 * r)), child.weight.dtype))
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
        tally.register(list(model.parameters()) + list(model.buffers()))  # as model.to("cuda") would place them
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
