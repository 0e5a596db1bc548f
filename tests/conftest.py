import os

# Tests never reach the hub: the same loading code runs on local files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


RAY_MODULES = ("test_ray_engine.py",)


def pytest_collection_modifyitems(config, items):
    """Ray's tests run last; `gpu` tests need CUDA: without it they are deselected (reported as
    such), never skipped or faked.

    Ray leaves a dozen threads in the pytest process, even after `ray.shutdown()`; a test that
    forks worker processes after that (build, dedupe, to-multiturn) copies their locks but not
    the threads, and can hang on one. Run after every other test, Ray has nothing left to
    disturb. (`make test` runs Ray's files in a pytest process of their own, alongside the
    rest: tools/run_tests.sh.) `make gpu-check` runs the gpu tests on a GPU machine (`pytest -m gpu tests/test_gpu.py`).
    """
    items.sort(key=lambda item: item.path.name in RAY_MODULES)  # stable: the order is otherwise kept
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    config.hook.pytest_deselected(items=gpu_tests)
    items[:] = [item for item in items if not item.get_closest_marker("gpu")]
