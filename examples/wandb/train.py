"""A training script written for W&B sweeps, unchanged for Harrow.

It reads its hyperparameters from `wandb.config` (the defaults below, replaced by the sweep's values) and reports
with `wandb.log`: what W&B's agent runs, and what `harrow sweep sweep-grid.yaml` runs. Harrow writes the agent's
config file for each trial, runs W&B offline, and reads the curves from the run's `.wandb` file as it grows.

The "training" is a toy LoRA fine-tune curve so the example runs in seconds: validation loss is lowest near a
learning rate of 3e-3 and rises again after its minimum when dropout is low (overfitting).
"""
import math
import random
import time

import wandb

defaults = {"learning_rate": 0.01, "dropout": 0.2, "epochs": 20}
run = wandb.init(config=defaults)
config = wandb.config

rng = random.Random(f"{config.learning_rate}-{config.dropout}")
fit = 0.3 * (math.log10(config.learning_rate) + 2.5) ** 2  # how far this learning rate is from the best one
for epoch in range(1, config.epochs + 1):
    progress = 1 - math.exp(-epoch / 4)
    train_loss = 2.0 - 1.5 * progress + fit + rng.gauss(0, 0.01)
    overfit = max(0, epoch - 8) * 0.02 * (0.3 - min(config.dropout, 0.3)) / 0.3
    val_loss = 2.1 - 1.4 * progress + fit + overfit + rng.gauss(0, 0.01)
    wandb.log({"epoch": epoch, "loss": train_loss, "val_loss": val_loss})
    time.sleep(0.15)
wandb.finish()
