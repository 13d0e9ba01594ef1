# `harrow-train serve` driven by the official `openai` Python client, outside `make test`: the models list, a plain
# completion, a judge's json_schema reply (parsed and validated), the client's parse helper, a json_object reply and
# the errors the client raises (scripts/check_openai.py). The server runs on models/chat on a free port of 127.0.0.1
# and is stopped with SIGTERM at the end; its request log is printed. The client goes into .build/openai-venv.
# HARROW_BIN=DIR uses a built harrow-train from DIR instead of building the debug one.
OPENAI_VENV ?= .build/openai-venv
OPENAI_VERSION := 3.63.0

.PHONY: check-openai openai-venv
openai-venv:
	@if [ "$$($(OPENAI_VENV)/bin/python -c 'import openai; print(openai.__version__)' 2>/dev/null)" != "$(OPENAI_VERSION)" ]; then \
	  echo "creating $(OPENAI_VENV) (openai $(OPENAI_VERSION)) ..."; \
	  rm -rf $(OPENAI_VENV) && python3 -m venv $(OPENAI_VENV) && \
	  $(OPENAI_VENV)/bin/pip install -q --disable-pip-version-check openai==$(OPENAI_VERSION) || exit 1; \
	fi

check-openai: openai-venv
	@if [ -z "$(HARROW_BIN)" ]; then $(SWIFT) build --product harrow-train; fi
	@if [ ! -f models/chat/model.safetensors ]; then $(MAKE) --no-print-directory models; fi
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/harrow-check-openai.XXXXXX"); \
	  $(or $(HARROW_BIN),$(BIN))/harrow-train serve --model models/chat --port 0 --port-file $$dir/port 2> $$dir/serve.log & pid=$$!; \
	  for i in $$(seq 200); do [ -s $$dir/port ] && break; kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; \
	  if [ ! -s $$dir/port ]; then echo "harrow-train serve did not start:"; cat $$dir/serve.log; kill $$pid 2>/dev/null; exit 1; fi; \
	  status=0; $(OPENAI_VENV)/bin/python scripts/check_openai.py --base-url http://127.0.0.1:$$(cat $$dir/port)/v1 --model chat \
	    --log $$dir/serve.log || status=$$?; \
	  kill -TERM $$pid; wait $$pid; served=$$?; \
	  echo; echo "== the server's log ($$dir/serve.log)"; cat $$dir/serve.log; \
	  if [ $$served -ne 0 ]; then echo "harrow-train serve exited $$served on SIGTERM"; status=1; fi; \
	  exit $$status
