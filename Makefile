# MASSeg pipeline: install, test, bench, demo, submission.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# the tested versions; setup.cfg itself only gives ranges
CONSTRAINTS := -c constraints.txt
CONFIG ?= configs/mose_masseg.toml

.PHONY: install test bench gpu-check demo submission clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24" "setuptools>=70" wheel

install: $(BIN)/python
	# torch/torchvision at the tested versions (constraints.txt): they come from the local cache
	$(PIP) install -q $(CONSTRAINTS) torch torchvision
	# sam2 is an sdist whose build needs torch: build it against the torch above, without CUDA ops
	SAM2_BUILD_CUDA=0 $(PIP) install -q $(CONSTRAINTS) --no-build-isolation sam2
	$(PIP) install -q $(CONSTRAINTS) -e ".[test,ray,train]"
	# headless Chromium for the report's browser test (Debian's chromium-headless-shell, ~200 MB): installed with apt
	# when missing and we are root (CI); elsewhere that one test skips and says why
	@if command -v chromium-headless-shell >/dev/null 2>&1 || [ -n "$$MASSEG_CHROMIUM" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium-headless-shell; \
	else echo "note: chromium-headless-shell not installed (needs root and apt): the report's browser test will skip"; fi

test:
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench:
	# references for the side-by-side runs; vos-benchmark asks for opencv-python, which would clash with the
	# headless build the tests use, so it comes without its dependencies (the rest are ours already)
	$(PIP) install -q scikit-image && $(PIP) install -q --no-deps vos-benchmark==0.1.0
	$(BIN)/python -m pytest -q -s -p no:cacheprovider -o python_files="bench_*.py" tests/benchmarks

gpu-check:
	# on one CUDA GPU, < 8 min: the gpu-marked tests (bf16/AMP/compiled vs references) and FPS per member next to
	# the published figures; without CUDA it says so and exits 0
	$(BIN)/python -m tests.benchmarks.gpu_check

demo:
	# ends with the HTML report of the demo run: runs/demo/report/index.html (runs/ is never committed)
	$(BIN)/masseg demo
	@test -f runs/demo/report/index.html && echo "report: runs/demo/report/index.html"

submission:
	$(BIN)/masseg run $(CONFIG)

clean:
	rm -rf build *.egg-info .pytest_cache
