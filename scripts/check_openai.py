"""Drives `harrow-train serve` with the official `openai` client: the models list, a plain completion, a json_schema
reply of a judge's schema (parsed and validated), the client's structured-output parse helper, a json_object reply,
and the errors the client raises for a wrong model and unsupported requests. Prints what it checked; exits non-zero on
any failure. Run by `make check-openai` (scripts/check-openai.mk), which starts the server and passes its address.
"""

import argparse
import json
import sys
import time

import openai
import pydantic

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "helpful": {"type": "integer", "minimum": 1, "maximum": 5},
        "honest": {"type": "integer", "minimum": 1, "maximum": 5},
        "harmless": {"type": "integer", "minimum": 1, "maximum": 5},
        "rationale": {"type": "string"},
    },
    "required": ["helpful", "honest", "harmless", "rationale"],
    "additionalProperties": False,
}
# Short: the shipped chat model reads 192 tokens (bytes) at most, and the reply needs some of them.
JUDGE_MESSAGES = [
    {"role": "system", "content": "You grade replies."},
    {"role": "user", "content": "Q: capital of Brandistan?\nReply: Thimport.\nGrade it."},
]


class Judgement(pydantic.BaseModel):
    helpful: int = pydantic.Field(ge=1, le=5)
    honest: int = pydantic.Field(ge=1, le=5)
    harmless: int = pydantic.Field(ge=1, le=5)
    rationale: str


failures = []
passed = 0
requests = 0


def check(name, condition, detail=""):
    global passed
    print(("  ok    " if condition else "  FAIL  ") + name + (": " + detail if detail else ""))
    if condition:
        passed += 1
    else:
        failures.append(name)


def timed(call):
    global requests
    requests += 1
    start = time.monotonic()
    try:
        return call(), time.monotonic() - start
    except openai.APIStatusError as error:
        return error, time.monotonic() - start


def judge_scores(obj):
    return all(isinstance(obj.get(k), int) and not isinstance(obj.get(k), bool) and 1 <= obj[k] <= 5 for k in ("helpful", "honest", "harmless"))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True, help="the model id the server serves")
    parser.add_argument("--log", help="the server's stderr, to count its request lines")
    args = parser.parse_args()
    # No retries, so every call is one request the server logs.
    client = openai.OpenAI(base_url=args.base_url, api_key="not-needed", max_retries=0, timeout=120)
    print("openai %s against %s" % (openai.__version__, args.base_url))

    print("models.list()")
    models, seconds = timed(lambda: client.models.list())
    ids = [m.id for m in getattr(models, "data", [])]
    check("one model, the one served", ids == [args.model], "%s in %.3f s" % (ids, seconds))
    check("owned_by harrow", bool(ids) and models.data[0].owned_by == "harrow")

    print("chat.completions.create() plain")
    reply, seconds = timed(lambda: client.chat.completions.create(
        model=args.model, messages=[{"role": "user", "content": "What is the capital of Brandistan?"}], max_tokens=48))
    ok = isinstance(reply, openai.types.chat.ChatCompletion)
    check("a ChatCompletion", ok, "%.3f s" % seconds if ok else repr(reply))
    if ok:
        choice = reply.choices[0]
        check("one assistant choice with text", len(reply.choices) == 1 and choice.message.role == "assistant"
              and isinstance(choice.message.content, str), repr(choice.message.content))
        check("finish_reason stop or length", choice.finish_reason in ("stop", "length"), choice.finish_reason)
        u = reply.usage
        check("usage adds up", u.total_tokens == u.prompt_tokens + u.completion_tokens and 0 < u.completion_tokens <= 48,
              "prompt %d + completion %d" % (u.prompt_tokens, u.completion_tokens))
        check("id and object", reply.id.startswith("chatcmpl-") and reply.object == "chat.completion", reply.id)

    print("chat.completions.create() with response_format json_schema (a judge's schema)")
    reply, seconds = timed(lambda: client.chat.completions.create(
        model=args.model, messages=JUDGE_MESSAGES, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "judgement", "strict": True, "schema": JUDGE_SCHEMA}}))
    content = reply.choices[0].message.content if isinstance(reply, openai.types.chat.ChatCompletion) else None
    check("a ChatCompletion", content is not None, "%.3f s" % seconds if content is not None else repr(reply))
    try:
        obj = json.loads(content or "")
    except ValueError:
        obj = None
    check("content parses as JSON", isinstance(obj, dict), repr(content))
    if isinstance(obj, dict):
        check("exactly the schema's keys", set(obj) == set(JUDGE_SCHEMA["properties"]), ", ".join(obj))
        check("scores are integers in 1..5", judge_scores(obj), json.dumps({k: obj.get(k) for k in ("helpful", "honest", "harmless")}))
        check("rationale is a string", isinstance(obj.get("rationale"), str), repr(obj.get("rationale")))
        check("keys in the schema's required order", list(obj) == JUDGE_SCHEMA["required"], ", ".join(obj))

    parse = getattr(client.chat.completions, "parse", None) or client.beta.chat.completions.parse
    print("chat.completions.parse(response_format=Judgement) (pydantic)")
    reply, seconds = timed(lambda: parse(model=args.model, messages=JUDGE_MESSAGES, response_format=Judgement))
    parsed = getattr(reply.choices[0].message, "parsed", None) if hasattr(reply, "choices") else None
    check("parsed into Judgement", isinstance(parsed, Judgement), "%r in %.3f s" % (parsed, seconds) if parsed else repr(reply))
    if parsed is not None:
        check("the same reply as json_schema", obj == parsed.model_dump(), "greedy decoding, same schema")

    print("chat.completions.create() with response_format json_object (free generation)")
    reply, seconds = timed(lambda: client.chat.completions.create(
        model=args.model, messages=[{"role": "user", "content": "Answer in JSON: capital of Brandistan?"}], max_tokens=64,
        response_format={"type": "json_object"}))
    ok = isinstance(reply, openai.types.chat.ChatCompletion)
    check("a ChatCompletion", ok, "%.3f s" % seconds if ok else repr(reply))
    if ok:
        try:
            json.loads(reply.choices[0].message.content)
            parsed_note = "the model wrote JSON"
        except ValueError:
            parsed_note = "the model did not write JSON (allowed: json_object constrains nothing here)"
        print("        " + parsed_note + ": " + repr(reply.choices[0].message.content))

    print("errors")
    cases = [
        ("a model not served", openai.NotFoundError, "model_not_found",
         lambda: client.chat.completions.create(model="gpt-4o", messages=JUDGE_MESSAGES)),
        ("stream=True", openai.BadRequestError, None,
         lambda: client.chat.completions.create(model=args.model, messages=JUDGE_MESSAGES, stream=True)),
        ("n=2", openai.BadRequestError, None,
         lambda: client.chat.completions.create(model=args.model, messages=JUDGE_MESSAGES, n=2)),
        ("an unbounded integer in the schema", openai.BadRequestError, None,
         lambda: client.chat.completions.create(model=args.model, messages=JUDGE_MESSAGES, response_format={
             "type": "json_schema", "json_schema": {"name": "j", "schema": {
                 "type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}}})),
    ]
    for name, expected, code, call in cases:
        error, seconds = timed(call)
        check("%s raises %s" % (name, expected.__name__), isinstance(error, expected) and (code is None or error.code == code),
              "%s %s" % (getattr(error, "status_code", "?"), getattr(error, "message", repr(error))))

    if args.log:
        lines = [l for l in open(args.log).read().splitlines() if " /v1/" in l]
        check("the server logged one line per request", len(lines) == requests, "%d lines, %d requests" % (len(lines), requests))

    if failures:
        print("failed: " + "; ".join(failures))
    print("%d requests served; check-openai: %d passed, %d failed" % (requests, passed, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
