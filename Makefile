# Harrow — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
SYSTEM_PACKAGES := libsqlite3-dev libopenblas-dev libgit2-dev gnuplot-nox pkgconf
BIN := .build/debug

.PHONY: all deps build test bench demo plan clean

all: build

# Installs only the system packages that are missing (needs root; apt-get update first).
deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	$(SWIFT) build

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: deps
	$(SWIFT) package --allow-writing-to-package-directory benchmark --no-progress --format jsonSmallerIsBetter --path .benchmarks
	@cat .benchmarks/*.json 2>/dev/null || true
	$(SWIFT) build -c release --product harrow-train
	.build/release/harrow-train bench --json

demo: build
	$(BIN)/harrow plan experiments/demo.yaml

clean:
	rm -rf .build .harrow reports
