# Two commands matter (see README): `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch: the CPU build. On plain PyPI `torch==X` is the CUDA build for Linux (19 nvidia packages
# and triton, several GB); the CPU build is `X+cpu`, taken from the configured indexes when they
# carry it, else from PyTorch's CPU index. A GPU machine names its own build:
#   make setup TORCH_SPEC='torch==2.13.0'
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SPEC ?=
EXTRAS ?= test,ray,lmeval
OUT ?= demo-out

.PHONY: setup fonts browser demo test bench clean gpu-prepare gpu-check gpu-check-smoke install-dry-run

setup: $(VENV)/.installed fonts browser

# A CJK font for the report's plots (Chinese category labels). Best effort: Debian's
# fonts-wqy-microhei (1.6 MB) when apt-get can run as root; else plots fall back to ASCII labels
# and report.md says so. Any CJK font installed another way (fonts-noto-cjk …) is used too.
fonts:
	@fc-list :lang=zh 2>/dev/null | grep -q . \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && apt-get install -y -q fonts-wqy-microhei >/dev/null 2>&1 && echo "installed fonts-wqy-microhei"; } \
	  || echo "no CJK font installed: plot labels that are not ASCII fall back to [n] (apt-get install fonts-noto-cjk)"

# Debian's chromium, for the test that renders `idata view`'s page (tests/test_view.py) as a user's
# browser would. Best effort, like the fonts: without it those tests are skipped with the reason.
browser:
	@command -v chromium >/dev/null 2>&1 \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && { apt-get install -y -q chromium >/dev/null 2>&1 \
	            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; } \
	       && echo "installed chromium"; } \
	  || echo "no chromium: the tests of idata view's page are skipped (apt-get install chromium)"

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ]; then $(PY) -m pip install -q "$(TORCH_SPEC)"; \
	elif ! $(PY) -m pip install -q "torch==$(TORCH_VERSION)+cpu" 2>/dev/null; then \
	  echo "torch $(TORCH_VERSION)+cpu is not on the configured indexes: taking it from $(TORCH_CPU_INDEX)"; \
	  $(PY) -m pip install -q --extra-index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)+cpu"; fi
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	# LLaMA-Factory's own data loader, for the test of `idata export --to llama-factory`. No deps:
	# its pins (datasets<=4.0, peft<=0.18.1, transformers<=5.6) would downgrade ours, and its data
	# code needs none of its extras beyond omegaconf (in the test extra).
	$(PY) -m pip install -q --no-deps 'llamafactory==0.9.5'
	touch $@

# What setup installs into a fresh venv, resolved and not installed, as pip's JSON report
# (tests/test_install.py: no nvidia, cuda or triton package in it). PY: any python with pip.
REPORT ?= install-report.json
install-dry-run:
	$(PY) -m pip install -q --dry-run --ignore-installed --report $(REPORT) \
	  "$(if $(TORCH_SPEC),$(TORCH_SPEC),torch==$(TORCH_VERSION)+cpu)" -e '.[$(EXTRAS)]'

demo: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/idata demo --out $(OUT)

# Test files run on TEST_PROCESSES pytest processes (pytest-xdist), a whole file per process so
# that its module fixtures are built once; Ray's test files run alongside, in a pytest process of
# their own (tools/run_tests.sh says why).
TEST_PROCESSES ?= 2
test: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 bash tools/run_tests.sh $(PY) $(TEST_PROCESSES)

# Speed and memory benchmarks (scripts, not tests): each prints its table. Minutes each, at full size.
bench: setup
	$(PY) benchmarks/bench_build.py --rows 1000000 --workers 2
	$(PY) benchmarks/bench_dedupe.py --rows 1000000
	$(PY) benchmarks/bench_multiturn.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_eval.py

# GPU proof (benchmarks/gpu_check.py): training and evaluation measured on a lent GPU in one call.
# Here: `make gpu-prepare` puts the wheels the GPU machine lacks and a build folder in .gpu-carry/.
# There (device tool): run(command="python3 benchmarks/gpu_check.py", carry=[".gpu-carry"], timeout_s=480),
# which is what `make gpu-check` runs. It uses
# that machine's own python3 (no venv, no setup). Anywhere: `make gpu-check-smoke`, tiny shapes on the CPU.
GPU_PY ?= python3

gpu-prepare: setup
	$(PY) benchmarks/gpu_carry.py

gpu-check:
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 $(GPU_PY) benchmarks/gpu_check.py $(ARGS)

gpu-check-smoke: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) benchmarks/gpu_check.py --smoke $(ARGS)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
