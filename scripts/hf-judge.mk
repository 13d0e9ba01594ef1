# scorers/hf_judge.py (the judge protocol on a local transformers model) on models/chat, outside `make test`
# (scripts/check_hf_judge.py): its message, the protocol as a client with a window sees it (a helpful answer, a
# refusal, a made-up answer, bad lines answered with errors and the lines after them still judged), every score the
# argmax of the levels' log-likelihoods recomputed with transformers alone, and requests per second on 2 threads.
# CPU torch and transformers come from .build/memory-venv (made as `make measure-memory` makes it; needs
# scripts/measure-memory.mk); models/chat is built as `make models` builds it. About a minute once both exist.
# HF_JUDGE_MODEL=DIR checks an existing model folder instead (nothing is built).
HF_JUDGE_MODEL ?=

.PHONY: check-hf-judge
check-hf-judge: memory-venv
	@if [ -z "$(HF_JUDGE_MODEL)" ]; then \
	  $(MAKE) --no-print-directory deps && $(SWIFT) build --product harrow-train && \
	  $(MAKE) --no-print-directory models TRAIN=$(BIN)/harrow-train; fi
	OMP_NUM_THREADS=2 $(MEMORY_VENV)/bin/python scripts/check_hf_judge.py --model $(or $(HF_JUDGE_MODEL),models/chat)
