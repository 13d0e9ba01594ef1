#!/usr/bin/env python3
"""The score protocol of `harrow-train score`, for any transformers causal LM (and a PEFT adapter).

    harrow eval --scorer 'python3 scorers/hf_scorer.py --model models/chat' --evalset evalsets/domain-3h

JSON lines on stdin, one answer per line on stdout:
  {"id", "prompt", "continuation", "template"?} -> {"id", "logprob", "n_tokens", "is_greedy"}
  {"id", "prompt", "max_tokens", "stop"?, "template"?} -> {"id", "text"}
  {"id", "messages": [{"role", "content"}], "max_tokens", "stop"?} -> {"id", "text"}  (a judged item's chat turns)
  anything wrong with a request -> {"id", "error"}
template "raw" (the default) is the beginning-of-text token then the prompt's tokens; "chat" is the
tokenizer's chat template for one user message with the generation prompt. The continuation is tokenized on
its own and follows the prompt directly. Contexts are cut from the left to fit max_position_embeddings.

Only transformers, peft, torch and the standard library.
"""

import argparse
import inspect
import json
import os
import select
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model folder (or hub id)")
    p.add_argument("--adapter", help="PEFT adapter folder, merged into the model")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--batch-size", type=int, default=8, help="log-likelihood requests per forward pass")
    p.add_argument("--device", help="default: cuda when available, else cpu")
    return p.parse_args()


class RequestError(Exception):
    pass


def load_model(owner, args):
    """Sets on `owner` what a scorer or judge reads of a model: device, tokenizer (the adapter's when it has one),
    model (the adapter merged), max_length, bos, pad, the end tokens and the KV cache's argument name. Shared with
    hf_judge.py."""
    owner.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    tokenizer_dir = args.model
    if args.adapter and os.path.exists(os.path.join(args.adapter, "tokenizer_config.json")):
        tokenizer_dir = args.adapter
    owner.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.dtype))
    if args.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.adapter).merge_and_unload()
    owner.model = model.to(owner.device).eval()
    owner.max_length = getattr(model.config, "max_position_embeddings", None) or 2048
    owner.bos = owner.tokenizer.bos_token_id
    pad = owner.tokenizer.pad_token_id
    owner.pad = pad if pad is not None else (owner.tokenizer.eos_token_id or 0)
    # Generation ends at any end token the model names (harrow's: end of text and end of turn).
    ends = set()
    for source in (getattr(model, "generation_config", None), model.config, owner.tokenizer):
        e = getattr(source, "eos_token_id", None)
        ends.update(e if isinstance(e, (list, tuple)) else [] if e is None else [e])
    owner.ends = ends
    # transformers 5.x names the KV cache `cache`; earlier versions `past_key_values`.
    owner.cache_name = "cache" if "cache" in inspect.signature(owner.model.forward).parameters else "past_key_values"


def ids_of(encoded):
    """apply_chat_template returns a list in transformers 4 and a BatchEncoding in 5."""
    if isinstance(encoded, dict) or hasattr(encoded, "input_ids"):
        encoded = encoded["input_ids"]
    if hasattr(encoded, "tolist"):
        encoded = encoded.tolist()
    if encoded and isinstance(encoded[0], list):
        encoded = encoded[0]
    return list(encoded)


class HFScorer:
    def __init__(self, args):
        load_model(self, args)
        self.batch_size = max(1, args.batch_size)

    # requests

    def context(self, request):
        messages = request.get("messages")
        if messages is not None:
            if not (isinstance(messages, list) and messages and all(
                    isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages)):
                raise RequestError('"messages" must be a list of {"role", "content"}')
            return ids_of(self.tokenizer.apply_chat_template(
                [{"role": m["role"], "content": m["content"]} for m in messages], add_generation_prompt=True, tokenize=True))
        prompt = request.get("prompt")
        if not isinstance(prompt, str):
            raise RequestError('"prompt" must be a string')
        template = request.get("template", "raw")
        if template == "chat":
            return ids_of(self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True))
        if template == "raw":
            return ([] if self.bos is None else [self.bos]) + self.encode(prompt)
        raise RequestError('"template" must be "chat" or "raw"')

    def encode(self, text):
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def parse(self, request):
        if not isinstance(request, dict):
            raise RequestError("not a JSON object")
        context = self.context(request)
        if "continuation" in request:
            text = request["continuation"]
            if not isinstance(text, str) or not text:
                raise RequestError('"continuation" must be a non-empty string')
            continuation = self.encode(text)
            if len(continuation) >= self.max_length:
                raise RequestError(f"continuation of {len(continuation)} tokens does not fit the context of {self.max_length}")
            return ("ll", context, continuation)
        max_tokens = request.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            raise RequestError('needs "continuation" (log-likelihood) or a non-negative integer "max_tokens" (generation)')
        stop = request.get("stop", [])
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise RequestError('"stop" must be a list of strings')
        return ("gen", context, max_tokens, stop)

    def answer(self, lines):
        """One answer per line, in order: log-likelihoods sorted by length and batched, then generations."""
        answers = [None] * len(lines)
        scoring, generating = [], []
        for i, line in enumerate(lines):
            try:
                request = json.loads(line)
            except ValueError:
                request = None
            rid = request.get("id") if isinstance(request, dict) else None
            if not isinstance(rid, (str, int, float)) or isinstance(rid, bool):
                rid = None
            try:
                parsed = self.parse(request)
            except RequestError as e:
                answers[i] = {"id": rid, "error": str(e)}
                continue
            (scoring if parsed[0] == "ll" else generating).append((i, rid, parsed))
        sequences = [(i, rid, (ctx + cont)[-self.max_length:], len(cont)) for i, rid, (_, ctx, cont) in scoring]
        sequences.sort(key=lambda s: -len(s[2]))
        for start in range(0, len(sequences), self.batch_size):
            batch = sequences[start:start + self.batch_size]
            for (i, rid, _, n), (logprob, greedy) in zip(batch, self.log_likelihoods([(s[2], s[3]) for s in batch])):
                answers[i] = {"id": rid, "logprob": logprob, "n_tokens": n, "is_greedy": greedy}
        for i, rid, (_, ctx, max_tokens, stop) in generating:
            answers[i] = {"id": rid, "text": self.generate(ctx, max_tokens, stop)}
        return answers

    # model

    @torch.inference_mode()
    def log_likelihoods(self, batch):
        """Right-padded: a causal model's logits at real positions never see the padding after them."""
        t = max(len(seq) for seq, _ in batch)
        ids = torch.full((len(batch), t), self.pad, dtype=torch.long)
        mask = torch.zeros((len(batch), t), dtype=torch.long)
        for b, (seq, _) in enumerate(batch):
            ids[b, :len(seq)] = torch.tensor(seq)
            mask[b, :len(seq)] = 1
        logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False).logits
        out = []
        for b, (seq, n) in enumerate(batch):
            rows = logits[b, len(seq) - n - 1:len(seq) - 1].to(torch.float64).log_softmax(-1)
            target = torch.tensor(seq[len(seq) - n:], device=rows.device)
            picked = rows.gather(1, target[:, None])[:, 0]
            out.append((float(picked.sum()), bool((rows.argmax(-1) == target).all())))
        return out

    @torch.inference_mode()
    def generate(self, context, max_tokens, stop):
        """Greedy, with the KV cache. Past max_position_embeddings the window slides, as harrow-train's does, and
        each step then runs on the whole window (positions restart at its first token)."""
        seq = context[-(self.max_length - 1):]
        produced, text = [], ""
        past, fed = None, 0
        stop = [s for s in stop if s]
        while len(produced) < max_tokens:
            if past is None:
                out = self.model(input_ids=torch.tensor([seq], device=self.device), use_cache=True)
            else:
                out = self.model(input_ids=torch.tensor([seq[fed:]], device=self.device), use_cache=True, **{self.cache_name: past})
            past, fed = getattr(out, self.cache_name), len(seq)
            token = int(out.logits[0, -1].argmax())
            if token in self.ends:
                break
            produced.append(token)
            seq.append(token)
            if len(seq) > self.max_length:
                seq.pop(0)
                past = None
            text = self.tokenizer.decode(produced, skip_special_tokens=True)
            cuts = [k for k in (text.find(s) for s in stop) if k >= 0]
            if cuts:
                return text[:min(cuts)]
        return text


def line_batches(batch_lines):
    """The request lines already available on stdin (up to batch_lines), then more once those are answered: a client
    that keeps a bounded window of requests in flight never waits on us. Shared with hf_judge.py."""
    fd = sys.stdin.fileno()
    buffer, eof = b"", False
    while not eof or buffer:
        lines = []
        while len(lines) < batch_lines:
            nl = buffer.find(b"\n")
            if nl >= 0:
                line, buffer = buffer[:nl], buffer[nl + 1:]
                if line.strip():
                    lines.append(line.decode("utf-8", "replace"))
                continue
            if eof:
                if buffer.strip():
                    lines.append(buffer.decode("utf-8", "replace"))
                buffer = b""
                break
            if lines and not select.select([fd], [], [], 0)[0]:
                break
            chunk = os.read(fd, 1 << 16)
            if chunk:
                buffer += chunk
            else:
                eof = True
        if lines:
            yield lines


def serve(scorer, batch_lines=256):
    for lines in line_batches(batch_lines):
        out = "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in scorer.answer(lines))
        sys.stdout.write(out)
        sys.stdout.flush()


def main():
    args = parse_args()
    torch.set_grad_enabled(False)
    serve(HFScorer(args))


if __name__ == "__main__":
    main()
