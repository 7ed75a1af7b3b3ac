# The two commands of the README: `make demo` and `make test`. Everything they need is installed
# from this repository's own files into .venv (Python) and ~/.cache/federator (control plane).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: image lock install demo demo-real-spark test unit integration lint controlplane delegates argocd bench chart chart-crd clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Build (cached) the kube-apiserver, etcd, controllers and tools the tests and the demo run on.
controlplane: $(STAMP)
	$(BIN)/python -m federator.devcluster.build

## Build (cached) the real delegate operators the integration tests run against.
delegates: $(STAMP)
	$(BIN)/python -m federator.devcluster.delegates build all

## Build (cached) the real Argo CD tests/integration/test_argocd.py runs (about 15 min cold).
argocd: $(STAMP)
	$(BIN)/python -m federator.devcluster.delegates build argocd

demo: controlplane
	$(BIN)/federator demo

## The demo with the real kubeflow spark-operator moving the SparkApplications.
demo-real-spark: controlplane delegates
	$(BIN)/federator demo --real-spark

## The container image (cached by content): podman and buildah from Debian packages, a base
## image bootstrapped from Debian packages, the Dockerfile built on it (docs/image.md).
image: $(STAMP)
	$(BIN)/python -m federator.devcluster.image build

## The image's locks with hashes, from pyproject.toml (runtime dependencies; the build backend).
## pip-compile keeps the current pins where pyproject still accepts them.
LOCK_FLAGS := --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-find-links
lock: $(STAMP)
	$(BIN)/pip-compile $(LOCK_FLAGS) --output-file requirements/image.lock pyproject.toml
	$(BIN)/pip-compile $(LOCK_FLAGS) --only-build-deps --build-deps-for wheel --output-file requirements/image-build.lock pyproject.toml

lint: $(STAMP)
	$(BIN)/ruff check federator tests bench
	$(BIN)/ruff format --check federator tests bench
	$(BIN)/mypy federator
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

unit: $(STAMP)
	$(BIN)/pytest -m 'not integration' tests

integration: controlplane delegates argocd image
	$(BIN)/pytest -m integration tests

## Everything CI runs: lint, unit and integration tests on the real control plane and the real
## delegate operators, the container image run as the chart's Deployment says, and a real
## Argo CD syncing the chart and an application.
test: lint controlplane delegates argocd image
	$(BIN)/pytest tests

CHART_VERSION = $(shell sed -n 's/^version: *//p' charts/federator/Chart.yaml)

## The chart's own copy of the Application CRD (a chart must carry its CRD: packaged or copied
## alone, a link out of it is lost); a unit test fails while the two differ.
chart-crd:
	cp crds/application.yaml charts/federator/crds/application.yaml

## Lint, render and check the Helm chart, then package it: dist/federator-<version>.tgz, which
## `helm install federator dist/federator-<version>.tgz` takes as it is.
chart: controlplane chart-crd
	$(BIN)/pytest -q tests/unit/test_chart.py
	"$$($(BIN)/python -m federator.devcluster.build --print-bin-dir)/helm" lint --strict charts/federator
	"$$($(BIN)/python -m federator.devcluster.build --print-bin-dir)/helm" package charts/federator --destination dist
	@echo "chart: dist/federator-$(CHART_VERSION).tgz"

bench: controlplane
	$(BIN)/python bench/compile.py
	$(BIN)/python bench/reconcile.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
