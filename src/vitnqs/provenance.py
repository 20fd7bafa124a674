"""Where a result came from: code commit, device, package versions, host, time."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from importlib import import_module, metadata
from pathlib import Path

PACKAGES = ("vitnqs", "netket", "jax", "jaxlib", "flax", "optax", "numpy")

RUNS_ON_GPU_VARIABLE = "VITNQS_RUNS_ON_GPU"
"""Set by a launcher that starts several runs on one GPU (.device/train.sh): how many it started
there. Their step times are not one run's alone, so the device name says so."""


def git_commit(root: Path | str | None = None) -> str:
    """The commit of this source tree, '+dirty' if a tracked file outside results/ has
    uncommitted changes: what results/ holds is what the code wrote, not the code that runs
    (a GPU call's run folders unpacked into the checkout do not make an analysis 'dirty').

    ``VITNQS_GIT_COMMIT`` overrides it, for copies of the tree that travel without .git
    (a GPU node that receives the working tree, a container image). root: a folder of the
    checkout (default: this package's).
    """
    if os.environ.get("VITNQS_GIT_COMMIT"):
        return os.environ["VITNQS_GIT_COMMIT"]
    root = Path(__file__).resolve().parent if root is None else Path(root)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/",
             ":(top,exclude)results"], cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def device_name() -> str:
    """The accelerator (or CPU) that JAX computes on, e.g. 'NVIDIA H100 80GB HBM3 x1', or
    'NVIDIA H200 x1 shared by 2 runs' where RUNS_ON_GPU_VARIABLE says the launcher started
    two runs on this GPU (counted at their start: one may finish first)."""
    import jax

    devices = jax.devices()
    kind = (devices[0].device_kind if devices[0].platform != "cpu"
            else f"cpu ({platform.processor() or platform.machine()})")
    runs = runs_on_gpu()
    return f"{kind} x{len(devices)}" + (f" shared by {runs} runs" if runs > 1 else "")


def runs_on_gpu() -> int:
    """How many runs the launcher started on this process's GPU (RUNS_ON_GPU_VARIABLE), 1 if
    it does not say."""
    value = os.environ.get(RUNS_ON_GPU_VARIABLE, "").strip()
    if not value:
        return 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{RUNS_ON_GPU_VARIABLE}={value!r}: expected the number of runs started "
                         "on this GPU, a whole number of at least 1")
    return int(value)


def package_version(name: str) -> str:
    """The installed version of a package; for one imported from a source tree without being
    installed (``PYTHONPATH=src`` on a GPU node), its ``__version__``, saying so."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
    try:
        version = getattr(import_module(name), "__version__", None)
    except ImportError:
        version = None
    return f"{version} (source tree, not installed)" if version else "not installed"


def package_versions() -> dict[str, str]:
    versions = {name: package_version(name) for name in PACKAGES}
    return {"python": platform.python_version(), **versions}


def record() -> dict:
    """The provenance fields every summary carries."""
    return {
        "device": device_name(),
        "git_commit": git_commit(),
        "host": platform.node(),
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
    }


@contextmanager
def recorded(path: str | Path, **settings):
    """Time the block; if it succeeds, write to path (JSON) where its result came from: the
    provenance fields (the commit as the block began: a checkout that moves on during a long
    computation does not relabel it), its wall seconds and the settings it was computed with.

    The analysis scripts wrap their computation in it, so that every committed analysis file
    has a ``.provenance.json`` beside it.
    """
    from vitnqs import io

    start, commit = time.perf_counter(), git_commit()  # the code that runs: the tree at the start
    yield
    io.write_json(path, {**record(), "git_commit": commit,
                         "wall_seconds": round(time.perf_counter() - start, 3),
                         "settings": settings})
