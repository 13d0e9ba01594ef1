"""A W&B script whose sweep nests parameters (the shape of wandb/sweeps examples/nested-params).

W&B's agent passes a nested block as one argument, `--optimizer={'lr': 0.001, 'nadam': {'beta': 0.9}}`, which
argparse takes as a string; `wandb.init(config=args)` then replaces it with the mapping from the sweep's config
file, so `wandb.config["optimizer"]["lr"]` is the trial's value.
"""
import argparse
import time

import wandb

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch_size", type=int, default=16)
parser.add_argument("--optimizer", type=str, default=None)
args = parser.parse_args()

wandb.init(config=args)
for epoch in range(wandb.config["epochs"]):
    lr = wandb.config["optimizer"]["lr"]
    beta = wandb.config["optimizer"]["nadam"]["beta"]
    loss = 1 - (epoch / wandb.config["epochs"]) * lr * wandb.config["batch_size"] * beta
    wandb.log({"loss": loss})
    time.sleep(0.1)
