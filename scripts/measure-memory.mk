# Measured training memory (Tests/SweepTests/Fixtures/memory/measured.json), outside `make test`: peak live tensor
# bytes of Llama-architecture models (random weights, from config) over one training step, full and LoRA, at several
# sizes, batches, sequence lengths and precisions, for checking the memory estimate against measurements. CPU torch and
# transformers go into .build/memory-venv (torch from /opt/wheels when a wheel is there, else the CPU index). About 10
# minutes on 2 cores once the venv exists. MEMORY_ARGS passes options to the script, e.g.
# MEMORY_ARGS="--only llama-15m-full-fp32-b4-s128 --out /tmp/m.json".
MEMORY_VENV ?= .build/memory-venv
MEMORY_TORCH := 2.13.0+cpu
MEMORY_TRANSFORMERS := 4.57.6
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
MEMORY_ARGS ?=

.PHONY: measure-memory memory-venv
memory-venv:
	@if [ "$$($(MEMORY_VENV)/bin/python -c 'import torch, transformers; print(torch.__version__, transformers.__version__)' 2>/dev/null)" \
	      != "$(MEMORY_TORCH) $(MEMORY_TRANSFORMERS)" ]; then \
	  echo "creating $(MEMORY_VENV) (torch $(MEMORY_TORCH), transformers $(MEMORY_TRANSFORMERS)) ..."; \
	  rm -rf $(MEMORY_VENV) && python3 -m venv $(MEMORY_VENV) || exit 1; \
	  pip="$(MEMORY_VENV)/bin/pip install -q --disable-pip-version-check"; \
	  wheel=$$(ls /opt/wheels/torch-$(MEMORY_TORCH)-*.whl 2>/dev/null | head -1); \
	  if [ -n "$$wheel" ]; then $$pip --no-deps "$$wheel"; \
	  else $$pip --no-deps --index-url $(TORCH_INDEX) torch==$(MEMORY_TORCH); fi || exit 1; \
	  $$pip torch==$(MEMORY_TORCH) transformers==$(MEMORY_TRANSFORMERS) || exit 1; \
	fi

measure-memory: memory-venv
	OMP_NUM_THREADS=$$(nproc) $(MEMORY_VENV)/bin/python scripts/measure_memory.py $(MEMORY_ARGS)
