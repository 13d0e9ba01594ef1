#!/usr/bin/env python3
"""The judge protocol (docs/DESIGN.md's "Judge protocol") on a local transformers causal LM (and a PEFT adapter).

    judge: {command: [python3, scorers/hf_judge.py, --model, path/or/hub-id]}     # in an evalset's manifest.yaml

JSON lines on stdin, one answer per line on stdout, each written and flushed as soon as it is ready:
  {"id", "prompt": "…" | [{"role", "content"}, …], "reply", "reference"?, "notes"?,
   "rubric": {DIMENSION: {"scale": [lo, hi], "levels"?: {"1": "…", …}}}}
      -> {"id", "scores": {DIMENSION: int}, "rationale": "…"}
  anything wrong with a request -> {"id", "error"}      (the process keeps serving; it exits at the end of input)

Scoring follows G-Eval's probability scoring (Liu et al. 2023, "G-Eval: NLG Evaluation using GPT-4 with Better
Human Alignment", arXiv:2303.16634, section 2): the judge model reads one prompt showing the rubric, the question
(or conversation), the reference and notes when given, and the reply; its answer starts with the cue
"DIMENSION score (lo-hi): ", and every integer level of the scale is scored by the log-likelihood of its tokens as
what follows the cue. G-Eval reports the probability-weighted mean; the protocol wants an integer, so the score is
the level of highest likelihood, always within the scale whatever the model would have generated. Levels of several
tokens are scored by the sum of their tokens' log-probabilities. When one level's tokens begin another's ("1" and
"10" in a byte-level tokenizer), every level of that dimension is scored with the line break that ends the score,
so that "1" means exactly 1 and not the start of 10. Tokens every level shares (the cue, and a merge of the cue's
last space into the level) are scored once and left out, which leaves the ranking unchanged.

The prompt is the tokenizer's chat template around one user message when the tokenizer has a template, otherwise
the beginning-of-text token and plain text. When it does not fit the model's context (max_position_embeddings)
with the longest cue and level, the message is cut from its start (the instructions and rubric go first; the
reply, at the end, last) and marked with "…".

The rationale is a greedy generation of up to --rationale-tokens tokens after the score lines ("helpful score
(1-5): 4" …, then "Reason:"), ending at an end token or line break; with --rationale-tokens 0 (or when the model
says nothing) it lists each dimension's chosen level and its probability among the scale's levels, e.g.
"helpful p(4)=0.41; honest p(5)=0.62". --explain adds {"explain": {"context": [token ids scored on],
"levels": {DIMENSION: {"LEVEL": log-likelihood}}}} to each answer, for checking and for seeing why.

Only transformers, peft (for --adapter), torch and the standard library.
"""

import argparse
import inspect
import json
import math
import os
import re
import sys

import torch

# The score protocol's scorer beside this file: its model loading, token-id reading and batching of stdin.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_scorer import ids_of, line_batches, load_model  # noqa: E402

MAX_LEVELS = 101  # a scale of 0-100 at most: every level costs a scored continuation
ELLIPSIS = "…"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model folder (or hub id)")
    p.add_argument("--adapter", help="PEFT adapter folder, merged into the model")
    p.add_argument("--device", help="default: cuda when available, else cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--rationale-tokens", type=int, default=48, help="0: the rationale is the level probabilities")
    p.add_argument("--batch", type=int, default=8, help="scored sequences per forward pass (one per dimension of a request)")
    p.add_argument("--explain", action="store_true", help="add the scored context and every level's log-likelihood")
    args = p.parse_args(argv)
    if args.rationale_tokens < 0:
        p.error("--rationale-tokens must be 0 or more")
    return args


class RequestError(Exception):
    pass


# Requests (pure: no model, no I/O)


class Dimension:
    def __init__(self, name, lo, hi, levels):
        self.name, self.lo, self.hi, self.levels = name, lo, hi, levels

    @property
    def scale(self):
        return range(self.lo, self.hi + 1)

    @property
    def cue(self):
        return f"{self.name} score ({self.lo}-{self.hi}): "


class Request:
    def __init__(self, prompt, reply, reference, notes, dimensions):
        self.prompt, self.reply, self.reference, self.notes, self.dimensions = prompt, reply, reference, notes, dimensions


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def request_id(obj):
    rid = obj.get("id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, (str, int, float)) and not isinstance(rid, bool) else None


def parse_request(obj):
    """A request of the judge protocol, validated; RequestError names the first thing wrong."""
    if not isinstance(obj, dict):
        raise RequestError("not a JSON object")
    prompt = obj.get("prompt")
    if isinstance(prompt, list):
        if not prompt or not all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                                 for m in prompt):
            raise RequestError('"prompt" messages must be a non-empty list of {"role", "content"} strings')
    elif not isinstance(prompt, str):
        raise RequestError('"prompt" must be a string or a list of chat messages')
    reply = obj.get("reply")
    if not isinstance(reply, str):
        raise RequestError('"reply" must be a string')
    optional = {}
    for key in ("reference", "notes"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise RequestError(f'"{key}" must be a string or null')
        optional[key] = value or None
    rubric = obj.get("rubric")
    if not isinstance(rubric, dict) or not rubric:
        raise RequestError('"rubric" must be an object with at least one dimension')
    dimensions = []
    for name, spec in rubric.items():
        if not name.strip() or "\n" in name:
            raise RequestError(f"rubric dimension {name!r}: the name must be one non-empty line")
        if not isinstance(spec, dict):
            raise RequestError(f'rubric dimension "{name}" must be an object with "scale"')
        scale = spec.get("scale")
        if not isinstance(scale, list) or len(scale) != 2 or not all(is_int(v) for v in scale):
            raise RequestError(f'rubric dimension "{name}": "scale" must be two integers [lo, hi]')
        lo, hi = scale
        if lo > hi or hi - lo + 1 > MAX_LEVELS:
            raise RequestError(f'rubric dimension "{name}": scale [{lo}, {hi}] must have lo <= hi and at most {MAX_LEVELS} levels')
        levels = spec.get("levels") or {}
        if not isinstance(levels, dict):
            raise RequestError(f'rubric dimension "{name}": "levels" must be an object')
        described = {}
        for key, text in levels.items():
            if not re.fullmatch(r"-?\d+", key.strip()) or not lo <= int(key) <= hi or not isinstance(text, str):
                raise RequestError(f'rubric dimension "{name}": level {key!r} must be an integer of the scale with a text')
            described[int(key)] = text
        dimensions.append(Dimension(name, lo, hi, described))
    return Request(prompt, reply, optional["reference"], optional["notes"], dimensions)


def judge_content(request):
    """The user message the judge model reads: instructions, rubric, question, reference, notes, then the reply last
    (the part kept longest when the message must be cut to fit)."""
    out = ["You are grading an assistant's reply. Score it on each criterion with a whole number on the criterion's "
           "scale; the level descriptions say what the numbers mean.", "", "Criteria:"]
    for d in request.dimensions:
        out.append(f"- {d.name} ({d.lo}-{d.hi})")
        out += [f"  {level}: {d.levels[level]}" for level in sorted(d.levels)]
    if isinstance(request.prompt, str):
        out += ["", "Question:", request.prompt]
    else:
        out += ["", "Conversation:"] + [f"{m['role'].capitalize()}: {m['content']}" for m in request.prompt]
    if request.reference is not None:
        out += ["", "Reference answer:", request.reference]
    if request.notes is not None:
        out += ["", "Notes for grading:", request.notes]
    out += ["", "Reply to grade:", request.reply]
    return "\n".join(out)


def score_lines(request, scores):
    """The judge's answer up to its rationale: one line per dimension, then the rationale's cue."""
    return "".join(f"{d.cue}{scores[d.name]}\n" for d in request.dimensions) + "Reason:"


def level_probabilities(logprobs):
    """Each level's probability among the scale's levels."""
    top = max(logprobs.values())
    total = sum(math.exp(lp - top) for lp in logprobs.values())
    return {level: math.exp(lp - top) / total for level, lp in logprobs.items()}


def choose(logprobs):
    """The level of highest likelihood (the lowest such level on a tie)."""
    return max(sorted(logprobs), key=lambda level: logprobs[level])


def probability_rationale(request, levels):
    parts = []
    for d in request.dimensions:
        chosen = choose(levels[d.name])
        parts.append(f"{d.name} p({chosen})={level_probabilities(levels[d.name])[chosen]:.2f}")
    return "; ".join(parts)


def common_prefix(sequences):
    n = min(len(s) for s in sequences)
    for i in range(n):
        if any(s[i] != sequences[0][i] for s in sequences):
            return i
    return n


# Model


class HFJudge:
    def __init__(self, args):
        load_model(self, args)
        self.batch = max(1, args.batch)
        self.rationale_tokens = args.rationale_tokens
        self.explain = args.explain
        self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        forward = inspect.signature(self.model.forward).parameters
        # Only the positions scored need the vocabulary projection (transformers >= 4.50 takes their indices).
        self.keep_logits = "logits_to_keep" in forward
        self.candidates_of = {}

    def encode(self, text):
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def context_ids(self, content):
        if self.chat:
            return ids_of(self.tokenizer.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                                             tokenize=True))
        return ([] if self.bos is None else [self.bos]) + self.encode(content + "\n\n")

    def fit(self, content, room):
        """The context with the message cut from its start until the context takes at most `room` tokens, or None."""
        ids = self.context_ids(content)
        cut = 0
        while len(ids) > room:
            if cut >= len(content):
                return None
            rest = content[cut:]
            per_token = len(rest) / max(1, len(self.encode(rest)))
            cut = min(len(content), cut + max(1, math.ceil((len(ids) - room) * per_token)))
            ids = self.context_ids(ELLIPSIS + content[cut:])
        return ids

    def candidates(self, d):
        """(tokens every level shares after the context, {level: its own tokens}) for a dimension."""
        key = (d.name, d.lo, d.hi)
        if key not in self.candidates_of:
            own = None
            for end in ("", "\n"):
                tokens = {level: self.encode(d.cue + str(level) + end) for level in d.scale}
                if len(tokens) == 1:
                    own = tokens
                    break
                seqs = list(tokens.values())
                if not any(a != b and b[:len(a)] == a for a in seqs for b in seqs) and len(set(map(tuple, seqs))) == len(seqs):
                    own = tokens
                    break
            if own is None:
                raise RequestError(f'rubric dimension "{d.name}": the tokenizer cannot tell its levels apart')
            # A scale of one level still scores its last token, so every level has tokens of its own.
            shared = common_prefix(list(own.values())) if len(own) > 1 else len(own[d.lo]) - 1
            self.candidates_of[key] = (own[d.lo][:shared], {level: t[shared:] for level, t in own.items()})
        return self.candidates_of[key]

    def prepare(self, request):
        """The scoring context of a request, fitted to leave room for its longest cue and level."""
        longest = max(len(shared) + len(t) for shared, levels in map(self.candidates, request.dimensions) for t in levels.values())
        context = self.fit(judge_content(request), self.max_length - longest)
        if context is None:
            raise RequestError(f"the rubric's cues do not fit the judge model's context of {self.max_length} tokens")
        return context

    @torch.inference_mode()
    def score(self, prepared):
        """{request index: {dimension: {level: log-likelihood}}} for prepared [(request, context)].

        One sequence per dimension runs the context, the shared tokens and a level's tokens but its last; it scores
        every level whose tokens but the last begin it, so levels of one token need one sequence per dimension."""
        sequences = []  # (tokens, [(request index, dimension, level, first scored position, level tokens)])
        for r, (request, context) in enumerate(prepared):
            for d in request.dimensions:
                shared, levels = self.candidates(d)
                base = context + shared
                feeds = {}
                for level, tokens in levels.items():
                    feeds.setdefault(tuple(tokens[:-1]), []).append(level)
                # A feed that begins a longer one is scored on (the first) one of them.
                longest = [f for f in feeds if not any(g != f and g[:len(f)] == f for g in feeds)]
                covered = {f: [] for f in longest}
                for g, lvs in feeds.items():
                    covered[next(f for f in longest if f[:len(g)] == g)] += lvs
                for f in longest:
                    sequences.append((base + list(f), [(r, d.name, lv, len(base) - 1, levels[lv]) for lv in covered[f]]))
        results = {}
        sequences.sort(key=lambda s: -len(s[0]))
        for start in range(0, len(sequences), self.batch):
            for (r, name, level), lp in self.log_likelihoods(sequences[start:start + self.batch]):
                results.setdefault(r, {}).setdefault(name, {})[level] = lp
        return results

    def log_likelihoods(self, batch):
        """Right-padded: a causal model's logits at real positions never see the padding after them."""
        t = max(len(seq) for seq, _ in batch)
        ids = torch.full((len(batch), t), self.pad, dtype=torch.long)
        mask = torch.zeros((len(batch), t), dtype=torch.long)
        for b, (seq, _) in enumerate(batch):
            ids[b, :len(seq)] = torch.tensor(seq)
            mask[b, :len(seq)] = 1
        positions = sorted({p + k for _, wanted in batch for *_, p, tokens in wanted for k in range(len(tokens))})
        extra = {"logits_to_keep": torch.tensor(positions, device=self.device)} if self.keep_logits else {}
        logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False, **extra).logits
        row_of = {p: i for i, p in enumerate(positions)} if self.keep_logits else {p: p for p in positions}
        out = []
        for b, (_, wanted) in enumerate(batch):
            for r, name, level, first, tokens in wanted:
                rows = logits[b, [row_of[first + k] for k in range(len(tokens))]].to(torch.float64).log_softmax(-1)
                picked = rows.gather(1, torch.tensor(tokens, device=rows.device)[:, None])[:, 0]
                out.append(((r, name, level), float(picked.sum())))
        return out

    @torch.inference_mode()
    def rationale(self, request, scores, content):
        """Greedy, with the KV cache, after the score lines; the message is cut to leave room for them and the
        rationale, or the context's start is dropped when even that cannot make room."""
        answer = self.encode(score_lines(request, scores))
        budget = min(self.rationale_tokens, self.max_length // 2)
        room = self.max_length - len(answer) - budget
        context = self.fit(content, room) if room > 0 else None
        seq = ((context if context is not None else self.context_ids(content)) + answer)[-(self.max_length - budget):]
        produced, past, fed = [], None, 0
        while len(produced) < budget and len(seq) < self.max_length:
            inputs = torch.tensor([seq[fed:]], device=self.device)
            out = self.model(input_ids=inputs, use_cache=True, **({self.cache_name: past} if past is not None else {}))
            past, fed = getattr(out, self.cache_name), len(seq)
            token = int(out.logits[0, -1].argmax())
            if token in self.ends:
                break
            produced.append(token)
            seq.append(token)
            text = self.tokenizer.decode(produced, skip_special_tokens=True)
            if "\n" in text.strip():
                break
        return self.tokenizer.decode(produced, skip_special_tokens=True).strip().split("\n")[0]

    def answer(self, rid, request, context, levels):
        scores = {d.name: choose(levels[d.name]) for d in request.dimensions}
        text = self.rationale(request, scores, judge_content(request)) if self.rationale_tokens else ""
        out = {"id": rid, "scores": scores, "rationale": text or probability_rationale(request, levels)}
        if self.explain:
            out["explain"] = {"context": context, "levels": {d.name: {str(lv): lp for lv, lp in levels[d.name].items()}
                                                             for d in request.dimensions}}
        return out


# Serving


def write(answer):
    sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def judge_lines(judge, lines):
    """Answers every line: errors at once, then the valid requests scored together, each answer written when ready."""
    prepared, ids = [], []
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError as e:
            write({"id": None, "error": f"not JSON: {e}"})
            continue
        rid = request_id(obj)
        try:
            request = parse_request(obj)
            prepared.append((request, judge.prepare(request)))
            ids.append(rid)
        except RequestError as e:
            write({"id": rid, "error": str(e)})
        except Exception as e:  # the tokenizer or its chat template refusing the text
            write({"id": rid, "error": f"judge failed: {type(e).__name__}: {e}"})
    if not prepared:
        return
    try:
        levels = judge.score(prepared)
    except Exception as e:  # e.g. out of memory on a long batch: these requests fail, the judge keeps serving
        for rid in ids:
            write({"id": rid, "error": f"judge failed: {type(e).__name__}: {e}"})
        return
    for r, (rid, (request, context)) in enumerate(zip(ids, prepared)):
        try:
            write(judge.answer(rid, request, context, levels[r]))
        except Exception as e:
            write({"id": rid, "error": f"judge failed: {type(e).__name__}: {e}"})


def serve(judge, batch_lines=64):
    for lines in line_batches(batch_lines):
        judge_lines(judge, lines)


def main():
    args = parse_args()
    torch.set_grad_enabled(False)
    serve(HFJudge(args))


if __name__ == "__main__":
    main()
