import os

# Tests never reach the hub: the same loading code runs on local files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


RAY_MODULES = ("test_ray_engine.py",)
# The longest test files, longest first (from make test's --durations): started first, so that
# the two pytest-xdist workers end together instead of one finishing a long file alone. xdist's
# own order (most tests first, tools/run_tests.sh turns it off) put these few-test files last.
LONGEST_FIRST = ("test_command_faults.py", "test_train_signals.py", "test_train.py", "test_faults.py",
                 "test_guarantees.py", "test_gpu_check.py", "test_readme.py", "test_readme_flow_templates.py",
                 "test_smoke.py", "test_eval_knowledge.py", "test_install.py", "test_stats_tokens.py")


def pytest_collection_modifyitems(config, items):
    """The longest files first, Ray's tests last; `gpu` tests need CUDA: without it they are
    deselected (reported as such), never skipped or faked.

    Ray leaves a dozen threads in the pytest process, even after `ray.shutdown()`; a test that
    forks worker processes after that (build, dedupe, to-multiturn) copies their locks but not
    the threads, and can hang on one. Run after every other test, Ray has nothing left to
    disturb. (`make test` runs Ray's files in a pytest process of their own, alongside the
    rest: tools/run_tests.sh.) `make gpu-check` runs the gpu tests on a GPU machine
    (`pytest -m gpu tests/test_gpu.py`).
    """
    def rank(item) -> tuple[bool, int]:
        name = item.path.name
        return name in RAY_MODULES, LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order is otherwise kept
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    config.hook.pytest_deselected(items=gpu_tests)
    items[:] = [item for item in items if not item.get_closest_marker("gpu")]
