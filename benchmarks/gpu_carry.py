"""What travels to the lent GPU machine for `make gpu-check`, prepared here (`make gpu-prepare`).

    python benchmarks/gpu_carry.py                  # .gpu-carry/: wheels + a build folder, size checked
    python benchmarks/gpu_carry.py --data-only --out DIR --rows 96   # just the build folder (--smoke uses it)

The GPU machine (see the device docs: python 3.12, torch, transformers, peft, accelerate,
pyarrow, tokenizers, numpy, pandas, rich, pyyaml, xxhash, click, pytest ... and nothing can be
installed from a registry there) lacks a few libraries that `idata train` needs to train from an
already-built folder. They travel as wheels (`pip download --no-deps --only-binary=:all:` for
CPython 3.12 on manylinux x86-64), pinned to the versions installed here, so the device runs the
project's code with the same data-side libraries as CI:

    pydantic, pydantic-core, annotated-types, typing-inspection   rows are validated (schema.py)
    datasets, dill, multiprocess                                  tokenization cache (training/tokenize.py)
    liger-kernel                                                  the Liger fused-CE baseline row only

`gpu_check.py --smoke` lists the distributions the GPU path really imports and fails when one
is neither on the device nor in WHEELS, so this list cannot rot. The data pipeline's own
libraries (jieba, rensa, datasketch, ftfy, opencc, openpyxl, rouge-score, nltk) are not needed
there: the build folder is made here, with `idata build`, and travels as data.

Everything that travels (tracked and untracked files, plus .gpu-carry) must stay under 64 MiB;
this script adds it up and fails above that.
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARRY = ROOT / ".gpu-carry"
LIMIT_BYTES = 64 * 2**20  # the device tool's limit on the working tree that travels
DEVICE_PYTHON = "3.12"  # KINDS.md: python3 there is Python 3.12.3
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
# The device image's Python packages (KINDS.md, "Python packages already there", read 2026-11-17),
# in normalized form. Only what the GPU path imports is checked against it.
DEVICE_PACKAGES = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy
peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl
zipp
""".split())
# What travels as wheels; None: the version installed here. liger-kernel is not installed here
# (it needs Triton and CUDA): 0.8.5 is a 0.9 MB pure-Python wheel that needs only torch and triton.
WHEELS: dict[str, str | None] = {
    "pydantic": None, "pydantic-core": None, "annotated-types": None, "typing-inspection": None,
    "datasets": None, "dill": None, "multiprocess": None, "liger-kernel": "0.8.5",
    "orjson": None,  # instruct_data.io reads JSON lines with it (the build folder's files too)
}
# Characters per example (prompt + reply) in two real Chinese SFT files (alpaca_zh_demo.json
# and oaast_sft_zh.json in shared/data, 1,689 rows pooled), as (percentile, characters).
REAL_LENGTHS = [(0, 4), (5, 30), (10, 41), (20, 63), (30, 96), (40, 134), (50, 186), (60, 253), (70, 328),
                (80, 397), (90, 502), (95, 728), (98, 1147), (99, 1646), (100, 3000)]


def normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def needed_on_device(imported: set[str]) -> list[str]:
    """The imported distributions that must travel: reached from the project's own requirements,
    not on the device. The walk stops at a package the device has (its own version brings its own
    dependencies there: the newer huggingface-hub here imports httpx2, the device's does not)."""
    from importlib.metadata import requires
    from packaging.requirements import Requirement

    def requirements(dist: str) -> list[str]:
        try:
            found = requires(dist) or []
        except PackageNotFoundError:
            return []
        parsed = [Requirement(text) for text in found]
        return [normalize(r.name) for r in parsed if r.marker is None or r.marker.evaluate({"extra": ""})]

    seen, todo = set(), requirements("instruct-data")
    while todo:
        dist = todo.pop()
        if dist in seen or dist in DEVICE_PACKAGES:
            continue
        seen.add(dist)
        todo += requirements(dist)
    return sorted(seen & {normalize(d) for d in imported})


def pinned(name: str, wanted: str | None) -> str:
    if wanted:
        return f"{name}=={wanted}"
    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        raise SystemExit(f"{name} is not installed here: `make setup` first, or pin its version in WHEELS") from None


def download_wheels(folder: Path) -> list[Path]:
    """The WHEELS for the device's Python, one version each (two of one name stop pip's install)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.whl"):
        old.unlink()
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", DEVICE_PYTHON, "--implementation", "cp", "-d", str(folder)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    subprocess.run(command + [pinned(n, v) for n, v in WHEELS.items()], check=True)
    return sorted(folder.glob("*.whl"))


def sample_length(rng: random.Random) -> int:
    """A length in characters, from the real files' percentiles (linear between them)."""
    u = rng.uniform(0, 100)
    at = bisect.bisect_left([p for p, _ in REAL_LENGTHS], u)
    (p0, c0), (p1, c1) = REAL_LENGTHS[max(at - 1, 0)], REAL_LENGTHS[at]
    return max(8, round(c0 + (c1 - c0) * ((u - p0) / (p1 - p0) if p1 > p0 else 0)))


def write_raw(path: Path, n_rows: int, seed: int = 0) -> None:
    """Belle-like rows (benchmarks/corpus.py's text) stretched or cut to the real length spread."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from corpus import rows

    rng = random.Random(seed)
    source = (row for row, _ in rows(n_rows * 8, seed=seed))
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(n_rows):
            row = next(source)
            prompt = len(row["instruction"]) + len(row.get("input") or "")
            want = max(sample_length(rng) - prompt, 4)
            reply = row["output"]
            while len(reply) < want:
                reply += next(source)["output"]
            # A full stop at the cut: a reply that stops mid-sentence is rejected by the cleaning rules.
            fh.write(json.dumps({**row, "output": reply[:want - 1].rstrip("，。") + "。"}, ensure_ascii=False) + "\n")


def build_folder(out: Path, n_rows: int, heldout: int) -> Path:
    """`idata build` on the synthetic rows: a real build folder, as a user brings to a GPU box."""
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.parent / f"{out.name}-raw.jsonl"
    write_raw(raw, n_rows)
    built = subprocess.run([sys.executable, "-m", "instruct_data", "build", str(raw), "--out", str(out), "--heldout",
                            str(heldout), "--workers", "1", "--no-near"], capture_output=True, text=True)
    if built.returncode != 0:
        raise SystemExit(f"idata build failed:\n{built.stderr[-3000:]}")
    raw.unlink()
    for name in ("conversations.jsonl", "duplicates.jsonl", "rejects.jsonl"):  # not needed to train: travel less
        (out / name).unlink(missing_ok=True)
    for plot in out.glob("*.png"):
        plot.unlink()
    return out


def travelling_bytes() -> int:
    """Tracked and untracked-not-ignored files (what the device tool sends), plus .gpu-carry."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.split(b"\0")
    tree = sum((ROOT / p.decode()).stat().st_size for p in listed if p and (ROOT / p.decode()).is_file())
    carry = sum(f.stat().st_size for f in CARRY.rglob("*") if f.is_file()) if CARRY.is_dir() else 0
    return tree + carry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  make gpu-prepare                                        # wheels + build folder in .gpu-carry\n"
               "  python benchmarks/gpu_carry.py --data-only --out /tmp/b --rows 96")
    parser.add_argument("--rows", type=int, default=2400, help="rows given to idata build (default 2400)")
    parser.add_argument("--heldout", type=int, default=64, help="held-out rows of the build (default 64)")
    parser.add_argument("--data-only", action="store_true", help="only write the build folder (no wheels)")
    parser.add_argument("--out", type=Path, default=None, help="build folder (default .gpu-carry/build)")
    args = parser.parse_args(argv)
    build = build_folder(args.out or CARRY / "build", args.rows, args.heldout)
    print(f"build folder: {build} ({sum(1 for _ in (build / 'train.jsonl').open(encoding='utf-8')):,} training rows)")
    if args.data_only:
        return
    wheels = download_wheels(CARRY / "wheels")
    for wheel in wheels:
        print(f"  {wheel.stat().st_size / 2**20:6.2f} MiB  {wheel.name}")
    total = travelling_bytes()
    print(f"travels: {total / 2**20:.1f} MiB of the {LIMIT_BYTES / 2**20:.0f} MiB limit (working tree + .gpu-carry)")
    if total > LIMIT_BYTES:
        raise SystemExit("too large to travel: remove untracked files from the working tree or carry less")


if __name__ == "__main__":
    main()
