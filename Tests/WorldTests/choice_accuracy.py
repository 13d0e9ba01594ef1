#!/usr/bin/env python3
"""Multiple-choice accuracy of a model on evalsets, through `harrow-train score` (docs/DESIGN.md's score protocol).

Each choice is scored as the summed log-likelihood of the choice given the prompt (in the chat template when the
manifest says `template: chat`); the highest wins, and ties are broken by a draw seeded with the item id, so no
position is favoured. Generative items are skipped. Prints one JSON object: accuracy and item count per dimension.

    python3 Tests/WorldTests/choice_accuracy.py --model models/chat [--adapter RUN/checkpoint] evalsets/domain-3h evalsets/general
"""
import argparse, json, os, random, re, subprocess, sys, threading


def load(evalset):
    template = "chat"
    with open(os.path.join(evalset, "manifest.yaml")) as f:
        for line in f:
            m = re.match(r"template:\s*(\w+)", line)
            if m:
                template = m.group(1)
    with open(os.path.join(evalset, "items.jsonl")) as f:
        items = [json.loads(l) for l in f if l.strip()]
    return template, [i for i in items if "choices" in i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trainer", default=".build/release/harrow-train")
    ap.add_argument("--model", required=True)
    ap.add_argument("--adapter")
    ap.add_argument("--limit", type=int, default=0, help="at most this many choice items per evalset")
    ap.add_argument("evalsets", nargs="+")
    a = ap.parse_args()

    requests, owners, items = [], [], []
    for path in a.evalsets:
        template, choice_items = load(path)
        if a.limit:
            choice_items = choice_items[: a.limit]
        for item in choice_items:
            k = len(items)
            items.append(item)
            for c, choice in enumerate(item["choices"]):
                owners.append((k, c))
                requests.append({"id": len(requests), "prompt": item["prompt"], "continuation": choice, "template": template})

    argv = [a.trainer, "score", "--model", a.model, "--batch-size", "16"] + (["--adapter", a.adapter] if a.adapter else [])
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def feed():
        for r in requests:
            proc.stdin.write(json.dumps(r) + "\n")
        proc.stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    scores = [[None] * len(i["choices"]) for i in items]
    for _ in requests:
        answer = json.loads(proc.stdout.readline())
        if "error" in answer:
            sys.exit(f"scorer error: {answer}")
        k, c = owners[answer["id"]]
        scores[k][c] = answer["logprob"]
    proc.wait()

    result = {}
    for item, s in zip(items, scores):
        best = max(s)
        tied = [c for c, v in enumerate(s) if v == best]
        chosen = random.Random(item["id"]).choice(tied)
        d = result.setdefault(item["dimension"], {"correct": 0, "items": 0})
        d["items"] += 1
        d["correct"] += chosen == item["answer"]
    for d in result.values():
        d["accuracy"] = round(100.0 * d["correct"] / d["items"], 1)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
