# VistaRAG: `make run` sets up and opens the chat on a sample knowledge base; `make test` sets up
# and runs the tests; `make demo` is the scripted command-line tour.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= .vistarag-demo
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: setup run demo sample test lint bench clean

setup: $(VENV)/.installed

# torch==2.13.0 first (a CPU wheel where one is on disk; a bare `torch` pulls a multi-GB CUDA build)
# constraints.txt pins the rest to a set that resolves together (uv: about a minute). Bytecode is
# compiled at install (as pip does; uv does not by default): otherwise each command compiles
# qdrant-client, pydantic and the rest again where it cannot write .pyc files (about 2 s).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 || $(BIN)/pip install -q torch
	$(BIN)/pip install -q uv
	$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -c constraints.txt -e '.[all,dev]'
	touch $@

# A sample corpus (PDFs, screenshots, a chart, a narrated video) in knowledge base "demo".
sample: setup
	$(BIN)/python -m vistarag.evals.sample_corpus $(DEMO_DIR)/corpus
	VISTARAG_HOME=$(DEMO_DIR)/data $(BIN)/vistarag ingest $(DEMO_DIR)/corpus --kb demo

# The main job on the embedded defaults: the chat on http://127.0.0.1:8000 over the sample.
run: sample
	VISTARAG_HOME=$(DEMO_DIR)/data $(BIN)/vistarag ui --kb demo

# The scripted tour: search and ask the sample from the command line, then the demo eval.
demo: sample
	VISTARAG_HOME=$(DEMO_DIR)/data $(BIN)/vistarag search "certificate expired" --kb demo -k 3
	VISTARAG_HOME=$(DEMO_DIR)/data $(BIN)/vistarag search "invoice total" --kb demo -k 3
	VISTARAG_HOME=$(DEMO_DIR)/data $(BIN)/vistarag ask "How often is each lorry inspected?" --kb demo
	VISTARAG_HOME=$(DEMO_DIR)/data $(BIN)/vistarag eval demo --report $(DEMO_DIR)/eval-report

# The tests see a home of their own, empty each run: nothing a user or an earlier run left in
# ~/.cache (model exports, hub downloads) or the data dir can make them pass here and fail on a
# fresh machine.
test: setup
	@home=$$(mktemp -d); \
	HOME=$$home XDG_CACHE_HOME=$$home/.cache XDG_DATA_HOME=$$home/.local/share \
	XDG_CONFIG_HOME=$$home/.config HF_HOME=$$home/.cache/huggingface \
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/pytest -q $(PYTEST_ARGS); \
	status=$$?; rm -rf $$home; exit $$status

lint: setup
	$(BIN)/ruff check .

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m vistarag.evals.bench_ingest
	HF_HUB_OFFLINE=1 $(BIN)/python -m vistarag.evals.bench_messy
	HF_HUB_OFFLINE=1 $(BIN)/python -m vistarag.evals.bench_ask
	HF_HUB_OFFLINE=1 $(BIN)/python -m vistarag.evals.rerank_eval
	HF_HUB_OFFLINE=1 $(BIN)/python -m vistarag.evals.bench_mixed --reuse
	HF_HUB_OFFLINE=1 $(BIN)/python -m vistarag.evals.bench_scale

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
