# VistaRAG: `make run` sets up and runs the demo; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= .vistarag-demo
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: setup run test lint bench clean

setup: $(VENV)/.installed

# torch==2.13.0 first (a CPU wheel where one is on disk; a bare `torch` pulls a multi-GB CUDA build)
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 || $(BIN)/pip install -q torch
	$(BIN)/pip install -q uv
	$(BIN)/uv pip install --python $(BIN)/python -q -e '.[all,dev]'
	touch $@

# The main job on the embedded defaults: generate a sample corpus, ingest it, search, ask.
run: setup
	$(BIN)/python -m vistarag.evals.sample_corpus $(DEMO_DIR)/corpus
	VISTARAG_HOME=$(DEMO_DIR)/data $(BIN)/vistarag ingest $(DEMO_DIR)/corpus --kb demo
	VISTARAG_HOME=$(DEMO_DIR)/data $(BIN)/vistarag search "certificate expired" --kb demo -k 3
	VISTARAG_HOME=$(DEMO_DIR)/data $(BIN)/vistarag search "invoice total" --kb demo -k 3
	VISTARAG_HOME=$(DEMO_DIR)/data $(BIN)/vistarag ask "How often is each lorry inspected?" --kb demo

test: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m vistarag.evals.bench_ingest
	HF_HUB_OFFLINE=1 $(BIN)/python -m vistarag.evals.bench_ask
	HF_HUB_OFFLINE=1 $(BIN)/python -m vistarag.evals.rerank_eval

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
