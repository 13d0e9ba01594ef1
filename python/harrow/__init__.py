"""Write Harrow's metrics lines from a Python trainer.

Harrow starts every trial with ``HARROW_METRICS`` naming the file it reads, one JSON object per line::

    import harrow
    harrow.start(total_steps=600, steps_per_epoch=200, warmup_steps=18)
    harrow.log({"train/loss": 1.93, "lr": 2e-4}, step=120)
    harrow.log({"val/loss": 2.10}, step=120)
    harrow.done(best_step=400)

For a Hugging Face Trainer or TRL trainer, pass ``callbacks=[harrow.HarrowCallback()]``: it maps the trainer's
names onto Harrow's (``loss`` -> ``train/loss``, ``eval_loss`` -> ``val/loss``, ``learning_rate`` -> ``lr``).
Outside Harrow (no ``HARROW_METRICS``) every call does nothing, so the same script runs anywhere.
"""

import json
import math
import os

__all__ = ["log", "start", "done", "canonical", "HarrowCallback"]

# Names that describe timing, not the model: left out of the curves.
_TIMING = {"eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_model_preparation_time", "total_flos"}


def _write(entry):
    path = os.environ.get("HARROW_METRICS")
    if not path:
        return
    line = json.dumps(entry, allow_nan=False)
    # One write of a whole line, appended: Harrow reads complete lines only, so a line is never seen half written.
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def log(metrics, step):
    """Logs numbers at a training step. Non-numeric and non-finite values are left out."""
    entry = {"step": int(step)}
    for key, value in metrics.items():
        number = _number(value)
        if number is not None and key != "step":
            entry[str(key)] = number
    if len(entry) > 1:
        _write(entry)


def start(total_steps=None, steps_per_epoch=None, warmup_steps=None):
    """The schedule, which diagnosis reads (epochs, warmup); call it once before the first ``log``."""
    entry = {"event": "start"}
    for key, value in (("total_steps", total_steps), ("steps_per_epoch", steps_per_epoch), ("warmup_steps", warmup_steps)):
        if value is not None:
            entry[key] = int(value)
    _write(entry)


def done(checkpoint=None, best_checkpoint=None, best_step=None):
    """The end of training, with the checkpoint folders (relative to the run folder) and the best step."""
    entry = {"event": "done"}
    for key, value in (("checkpoint", checkpoint), ("best_checkpoint", best_checkpoint)):
        if value is not None:
            entry[key] = str(value)
    if best_step is not None:
        entry["best_step"] = int(best_step)
    _write(entry)


def canonical(key):
    """A Hugging Face Trainer log name as Harrow names it; None for timing entries."""
    if key == "loss":
        return "train/loss"
    if key == "eval_loss":
        return "val/loss"
    if key == "learning_rate":
        return "lr"
    if key in _TIMING:
        return None
    if key.startswith("eval_"):
        rest = key[len("eval_"):]
        return "val/" + rest[: -len("_loss")] + "/loss" if rest.endswith("_loss") else "val/" + rest
    return key


class _HarrowCallbackMethods:
    """Trainer events: the schedule at the start, every log, the best checkpoint at the end."""

    def on_train_begin(self, args, state, control, **kwargs):
        total = getattr(state, "max_steps", None) or None
        epochs = getattr(state, "num_train_epochs", None) or getattr(args, "num_train_epochs", None)
        per_epoch = round(total / epochs) if total and epochs and epochs > 0 and math.isfinite(epochs) else None
        warmup = None
        if total and hasattr(args, "get_warmup_steps"):
            warmup = args.get_warmup_steps(total)
        start(total_steps=total, steps_per_epoch=per_epoch, warmup_steps=warmup)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "train_runtime" in logs:  # the closing summary is not a point
            return
        mapped = {}
        for key, value in logs.items():
            name = canonical(key)
            if name is not None:
                mapped[name] = value
        log(mapped, step=getattr(state, "global_step", 0))

    def on_train_end(self, args, state, control, **kwargs):
        best = getattr(state, "best_model_checkpoint", None)
        step = getattr(state, "best_global_step", None)
        done(best_checkpoint=os.path.basename(best) if best else None, best_step=step)

    def __getattr__(self, name):
        # Every other trainer event does nothing.
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def __getattr__(name):
    # HarrowCallback is built on first use: a subclass of transformers' TrainerCallback when transformers is there,
    # so importing harrow never imports transformers.
    if name == "HarrowCallback":
        try:
            from transformers import TrainerCallback
        except ImportError:
            TrainerCallback = object
        cls = type("HarrowCallback", (_HarrowCallbackMethods, TrainerCallback), {})
        globals()["HarrowCallback"] = cls
        return cls
    raise AttributeError(name)
