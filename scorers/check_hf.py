#!/usr/bin/env python3
"""Checks harrow-train's checkpoints against transformers and PEFT (run by `make check-hf`):

1. the base and chat models and a LoRA adapter load strictly (no missing, unexpected or mismatched tensors);
2. AutoTokenizer gives harrow-train's ids for every prompt, choice and reference of the evalsets (plain text, with
   the beginning-of-text token, through the chat template), and decodes them back;
3. pipeline("text-generation") runs on the chat model and continues a chat as `harrow-train score` does;
4. scorers/hf_scorer.py and `harrow-train score` agree on every request of the evalsets (log-likelihoods within
   1e-4 relative, identical greedy texts), with the time per item of each;
5. when harrow is built, `harrow eval --scorer '<python> scorers/hf_scorer.py --model models/chat'` gives the
   results of `harrow eval --checkpoint models/chat`.
Exits 1 on any disagreement.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

import torch
from peft import PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)
        print("FAIL " + message)
    return ok


def load_evalset(folder):
    """Items and the manifest fields the requests use (as Sources/Evaluation/Evalset.swift reads them)."""
    manifest = open(os.path.join(folder, "manifest.yaml"), encoding="utf-8").read()

    def field(name, default):
        m = re.search(rf"^{name}:\s*(.+)$", manifest, re.M)
        return json.loads(m.group(1)) if m and name != "template" else (m.group(1).strip() if m else default)

    items = [json.loads(l) for l in open(os.path.join(folder, "items.jsonl"), encoding="utf-8") if l.strip()]
    return items, field("template", "raw"), field("max_tokens", 64), field("stop", ["\n"])


def requests_of(folder):
    """The requests `harrow eval` sends for an evalset: one per choice, one generation per generative item."""
    items, template, max_tokens, stop = load_evalset(folder)
    out = []
    for item in items:
        if "choices" in item:
            out += [{"prompt": item["prompt"], "continuation": c, "template": template} for c in item["choices"]]
        else:
            out.append({"prompt": item["prompt"], "max_tokens": max_tokens, "stop": stop, "template": template})
    for i, r in enumerate(out):
        r["id"] = i
    return items, out


def run_scorer(argv, requests):
    """Answers by id, and wall seconds from start to exit (loading included)."""
    start = time.perf_counter()
    proc = subprocess.run(argv, input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True,
                          text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "2")))
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    answers = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            a = json.loads(line)
            answers[a["id"]] = a
    return answers, seconds


def strict_loading(args):
    print("== strict loading")
    for folder in (args.base, args.chat):
        model, info = AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
        problems = {k: v for k, v in info.items() if v}
        check(not problems, f"{folder}: {problems}")
        print(f"{folder}: {sum(p.numel() for p in model.parameters())} parameters, "
              f"missing/unexpected/mismatched: {len(info.get('missing_keys', []))}/"
              f"{len(info.get('unexpected_keys', []))}/{len(info.get('mismatched_keys', []))}")
    base = AutoModelForCausalLM.from_pretrained(args.adapter_base)
    peft = PeftModel.from_pretrained(base, args.adapter)
    wanted = get_peft_model_state_dict(peft)
    with safe_open(os.path.join(args.adapter, "adapter_model.safetensors"), "pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}
    missing, unexpected = sorted(set(wanted) - set(stored)), sorted(set(stored) - set(wanted))
    check(not missing and not unexpected, f"{args.adapter}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    same = all(torch.equal(wanted[k], stored[k]) for k in set(wanted) & set(stored))
    check(same, f"{args.adapter}: loaded adapter tensors differ from the file")
    print(f"{args.adapter}: {len(stored)} LoRA tensors on {args.adapter_base}, missing/unexpected: "
          f"{len(missing)}/{len(unexpected)}, values identical: {same}")


def tokenizer_ids(args, evalsets):
    print("== tokenizer")
    texts = set()
    for folder in evalsets:
        for item in load_evalset(folder)[0]:
            texts.add(item["prompt"])
            texts.update(item.get("choices", []))
            texts.update(r for r in [item.get("reference")] + item.get("references", []) if isinstance(r, str))
    # Beyond the evalsets: spaces at the ends, control characters, accents, CJK, emoji, NUL.
    texts.update(["", " ", "  two  spaces ", "tab\there\r\nline", "naïve café — ½", "日本語のテキスト", "emoji 👍🏽 ok",
                  "\x00\x01\x7f", "a" * 300])
    texts = sorted(texts)
    chats = []
    for t in texts:
        chats.append({"messages": [{"role": "user", "content": t}], "add_generation_prompt": True})
        chats.append({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": t},
                                   {"role": "assistant", "content": t[::-1]}], "add_generation_prompt": False})
    lines = [{"text": t} for t in texts] + chats
    proc = subprocess.run([args.train, "tokenize"], input="".join(json.dumps(l) + "\n" for l in lines),
                          capture_output=True, text=True, check=True)
    ours = [json.loads(l)["ids"] for l in proc.stdout.splitlines()]
    check(len(ours) == len(lines), "harrow-train tokenize answered fewer lines")
    for folder in (args.base, args.chat, args.adapter):
        tok = AutoTokenizer.from_pretrained(folder)
        bad = 0
        for line, ids in zip(lines, ours):
            if "text" in line:
                t = line["text"]
                ok = (tok(t, add_special_tokens=False)["input_ids"] == ids and tok(t)["input_ids"] == [tok.bos_token_id] + ids
                      and tok.decode(ids) == t)
            else:
                got = tok.apply_chat_template(line["messages"], add_generation_prompt=line["add_generation_prompt"], tokenize=True)
                got = got["input_ids"] if not isinstance(got, list) else got
                ok = list(got) == ids
            if not ok:
                bad += 1
                if bad <= 3:
                    print(f"  differs: {json.dumps(line)[:120]}")
        check(bad == 0, f"{folder}: AutoTokenizer differs on {bad} of {len(lines)}")
        print(f"{folder}: {type(tok).__name__}, {len(texts)} texts (plain, with bos, decoded) and {len(chats)} chats "
              f"through apply_chat_template: {len(lines) - bad} of {len(lines)} identical")


def text_generation_pipeline(args):
    print("== pipeline")
    prompt = load_evalset(args.evalsets[0])[0][0]["prompt"]
    generator = pipeline("text-generation", model=args.chat, device="cpu")
    out = generator([{"role": "user", "content": prompt}], max_new_tokens=48, do_sample=False)
    reply = out[0]["generated_text"][-1]["content"]
    ours, _ = run_scorer([args.train, "score", "--model", args.chat],
                         [{"id": 0, "prompt": prompt, "max_tokens": 48, "stop": [], "template": "chat"}])
    check(reply == ours[0]["text"], f"pipeline reply {reply!r} differs from harrow-train score {ours[0]['text']!r}")
    print(f"pipeline('text-generation', model={args.chat}) on {prompt!r}: {reply!r} "
          f"({'same as' if reply == ours[0]['text'] else 'DIFFERENT from'} harrow-train score)")


def agreement(args):
    print("== scorer agreement (hf_scorer.py vs harrow-train score; ms per item after loading, which is timed on its own)")
    setups = [("chat", ["--model", args.chat]), ("chat+lora", ["--model", args.adapter_base, "--adapter", args.adapter])]
    print(f"{'model':<10} {'evalset':<10} {'items':>5} {'reqs':>5} {'max rel diff':>12} {'texts':>7} "
          f"{'harrow ms/item':>14} {'hf ms/item':>10}")
    for name, flags in setups:
        # Start-up and loading alone: a run with no requests.
        load_ours = run_scorer([args.train, "score"] + flags, [])[1]
        load_hf = run_scorer([sys.executable, os.path.join(HERE, "hf_scorer.py")] + flags, [])[1]
        print(f"{name:<10} {'(loading)':<10} {'':>5} {'':>5} {'':>12} {'':>7} {1000 * load_ours:>11.0f} ms {1000 * load_hf:>7.0f} ms")
        for folder in args.evalsets:
            items, requests = requests_of(folder)
            ours, t_ours = run_scorer([args.train, "score"] + flags, requests)
            theirs, t_hf = run_scorer([sys.executable, os.path.join(HERE, "hf_scorer.py")] + flags, requests)
            worst, same_texts, n_texts = 0.0, 0, 0
            for r in requests:
                a, b = ours.get(r["id"], {}), theirs.get(r["id"], {})
                if "continuation" in r:
                    if not check("logprob" in a and "logprob" in b, f"{name} {folder} #{r['id']}: {a} / {b}"):
                        continue
                    rel = abs(a["logprob"] - b["logprob"]) / max(abs(a["logprob"]), 1e-12)
                    worst = max(worst, rel)
                    check(rel <= 1e-4, f"{name} {folder} #{r['id']}: logprob {a['logprob']} vs {b['logprob']}")
                    check(a["n_tokens"] == b["n_tokens"] and a["is_greedy"] == b["is_greedy"],
                          f"{name} {folder} #{r['id']}: n_tokens/is_greedy {a} vs {b}")
                else:
                    n_texts += 1
                    same = a.get("text") is not None and a.get("text") == b.get("text")
                    same_texts += same
                    check(same, f"{name} {folder} #{r['id']}: text {a.get('text')!r} vs {b.get('text')!r}")
            print(f"{name:<10} {os.path.basename(folder.rstrip('/')):<10} {len(items):>5} {len(requests):>5} "
                  f"{worst:>12.2e} {same_texts:>3}/{n_texts:<3} {1000 * max(0, t_ours - load_ours) / len(items):>14.2f} {1000 * max(0, t_hf - load_hf) / len(items):>10.2f}")


def harrow_eval(args):
    """The scorer as `harrow eval --scorer` runs it (argv split on spaces): the same results as harrow-train's."""
    if not os.access(args.harrow, os.X_OK):
        print(f"== harrow eval: skipped ({args.harrow} not built)")
        return
    print("== harrow eval --scorer")
    sets = sum((["--evalset", e] for e in args.evalsets), [])
    scorer = f"{sys.executable} {os.path.join(HERE, 'hf_scorer.py')} --model {args.chat}"
    results = []
    for how in (["--checkpoint", args.chat], ["--scorer", scorer]):
        proc = subprocess.run([args.harrow, "eval", "--json"] + how + sets, capture_output=True, text=True)
        if not check(proc.returncode == 0, f"harrow eval {' '.join(how)}: {proc.stderr[-500:]}"):
            return
        results.append([{k: v for k, v in e.items() if k != "seconds"} for e in json.loads(proc.stdout)])
    check(results[0] == results[1], "harrow eval: hf_scorer.py results differ from harrow-train score's")
    for ours, theirs in zip(*results):
        print(f"{ours['evalset']}: total {ours['total']:.4f} (harrow-train score) / {theirs['total']:.4f} (hf_scorer.py), "
              f"{'identical' if ours == theirs else 'DIFFERENT'} results per dimension and task type")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", default=".build/debug/harrow-train")
    p.add_argument("--harrow", default=".build/debug/harrow", help="checked with `harrow eval --scorer` when built")
    p.add_argument("--base", default="models/base")
    p.add_argument("--chat", default="models/chat")
    p.add_argument("--adapter", required=True, help="a LoRA adapter folder written by harrow-train sft")
    p.add_argument("--adapter-base", default="models/chat", help="the model the adapter was trained on")
    p.add_argument("--evalsets", nargs="+", default=["evalsets/domain-3h", "evalsets/general"])
    args = p.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    import transformers, peft
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    strict_loading(args)
    tokenizer_ids(args, args.evalsets)
    text_generation_pipeline(args)
    agreement(args)
    harrow_eval(args)
    print(f"\ncheck-hf: {'all checks passed' if not failures else f'{len(failures)} failures'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
