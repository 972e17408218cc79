# The two commands of the README: `make run` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test venv bench clean-instance

venv:
	@bash scripts/bootstrap.sh

run: venv
	$(BIN)/avatar db upgrade
	$(BIN)/avatar admin ensure
	$(BIN)/avatar serve --host $(HOST) --port $(PORT)

# three workers (pytest-xdist) on CI's 2 cores: part of the suite waits rather than computes (Chromium
# plays each capture in real time, servers and workers run in subprocesses), and the third worker fills
# that time; each file's tests run on one worker (the Chromium enrollments one after the other);
# tests/conftest.py shares PostgreSQL, Redis and the built captures between them. Each worker's models
# run on one thread (OMP_NUM_THREADS, read by torch, OpenBLAS, ctranslate2 and onnxruntime here): three
# workers' threads spinning on two cores made the model-heavy tests take 2-6 times as long
test: venv
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q --timeout=900 -n 3 --dist loadfile $(PYTEST_ARGS)

bench: venv
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean-instance:
	rm -rf instance/
