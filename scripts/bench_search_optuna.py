"""Optuna's TPE sampler on the search benchmark's objective, beside Harrow's own figures.

Reads `harrow-train search-bench --json` on stdin (the grid's best and Harrow's trials per method), runs
optuna.samplers.TPESampler (independent, Optuna 4.9's defaults) for the same seeds over the same space, each trial
valued by `harrow-train objective --print` so both sides score the very same function, and prints both.
"""
import json
import subprocess
import sys

import optuna

HARROW_TRAIN = sys.argv[1]
MAX_TRIALS = 150


def objective_value(params):
    out = subprocess.run([HARROW_TRAIN, "objective", "--print", "--params", json.dumps(params)],
                         check=True, capture_output=True, text=True)
    return float(out.stdout)


def trials_to_target(seed, target):
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    for n in range(1, MAX_TRIALS + 1):
        trial = study.ask()
        params = {
            "base_model": trial.suggest_categorical("base_model", ["base", "chat"]),
            "epochs": trial.suggest_int("epochs", 1, 10),
            "lr": trial.suggest_float("lr", 1e-5, 1e-2, log=True),
            "warmup_ratio": trial.suggest_float("warmup_ratio", 0.0, 0.2),
            "lora_r": trial.suggest_int("lora_r", 4, 64),
        }
        value = objective_value(params)
        study.tell(trial, value)
        if value <= target:
            return n
    return MAX_TRIALS + 1


def main():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    harrow = json.load(sys.stdin)
    target, seeds = harrow["target"], harrow["seeds"]
    optuna_trials = [trials_to_target(seed, target) for seed in range(1, seeds + 1)]
    optuna_trials_sorted = sorted(optuna_trials)
    mid = len(optuna_trials_sorted) // 2
    median = (optuna_trials_sorted[mid] if len(optuna_trials_sorted) % 2
              else (optuna_trials_sorted[mid - 1] + optuna_trials_sorted[mid]) / 2)
    print(f"grid: {harrow['grid_points']} points, best {harrow['grid_best']:.4f}; target within 1%: {target:.4f}")
    print(f"trials to reach it, median over {seeds} seeds (at most {MAX_TRIALS}; {MAX_TRIALS + 1} = not reached):")
    for row in harrow["methods"]:
        print(f"  harrow {row['method']:<7} {row['median_trials']:>6}   {' '.join(str(t) for t in row['trials'])}")
    print(f"  optuna tpe     {median:>6}   {' '.join(str(t) for t in optuna_trials)}   (optuna {optuna.__version__})")
    hb = harrow["hyperband"]
    print(f"hyperband over the grid: {hb['steps_run']} of {hb['steps_total']} evaluations run "
          f"({hb['saved_fraction']:.0%} saved), {hb['stopped']} trials stopped, best unchanged: {hb['best_unchanged']}")


if __name__ == "__main__":
    main()
