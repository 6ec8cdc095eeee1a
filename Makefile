# The two set-up commands of the README:
#   make demo   creates the environment if needed and runs the main job on the embedded default
#   make test   creates the environment if needed, brings up a Docker engine and the cpu image, runs every test
# .ci/run calls `make test`.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TINY := .cache/tiny-llama
STAMP := $(VENV)/.sumbench-installed
# SkyPilot pins click<8.2, huggingface_hub needs click>=8.4: it gets a host-only environment of its own.
SKY_VENV := .cache/venv-sky

.PHONY: demo test lint docker-ready sky-env clean

$(STAMP): pyproject.toml constraints/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build is what the embedded default and the tests need.
	$(BIN)/python -m pip install -q -c constraints/dev.txt torch
	$(BIN)/python -m pip install -q -c constraints/dev.txt -e '.[worker,data,report,dev,k8s,ssh]'
	touch $@

$(SKY_VENV)/.installed: pyproject.toml constraints/sky.txt
	test -x $(SKY_VENV)/bin/python || $(PYTHON) -m venv $(SKY_VENV)
	$(SKY_VENV)/bin/python -m pip install -q -c constraints/sky.txt -e '.[sky]'
	touch $@

sky-env: $(SKY_VENV)/.installed

# Rebuilt when its builder changes: a checkpoint from an older builder lacks what a newer one writes
# (the random-weights mark in its config.json, which makes the demo say its ROUGE is not meaningful).
$(TINY)/config.json: $(STAMP) runner/worker/models.py
	$(BIN)/runner model tiny $(TINY)

demo: $(STAMP) $(TINY)/config.json
	$(BIN)/runner launch --model $(TINY) --batch-size 8 --results results

lint: $(STAMP)
	$(BIN)/ruff check runner tests benchmarks
	$(BIN)/runner schema --check

docker-ready: $(STAMP)
	bash scripts/docker-engine.sh start > .cache/docker-env
	source .cache/docker-env && bash scripts/build-base-image.sh && bash scripts/wheelhouse.sh cpu \
	  && BASE_IMAGE=local/python:3.11-bookworm REVISION=$$(git rev-parse HEAD) docker buildx bake cpu

test: $(STAMP) $(TINY)/config.json $(SKY_VENV)/.installed lint docker-ready
	source .cache/docker-env && $(BIN)/python -m pytest -q -ra

clean:
	rm -rf $(VENV) .cache .pytest_cache
