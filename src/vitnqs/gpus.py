"""One GPU per training job: count the visible GPUs and claim a free one with a file lock.

Snakemake limits concurrent training jobs to the number of GPUs (``resources: gpu=1`` per job,
global limit from ``visible_gpus()``); ``claim_gpu`` then gives each job its own card by taking
an exclusive lock on ``<lock dir>/gpu-<id>.lock`` and setting ``CUDA_VISIBLE_DEVICES`` to that
id before JAX is imported. The lock is released when the job ends, even if it crashes, since
the operating system drops it with the process. With one visible GPU (a SLURM job, which sees
only its own card) nothing is locked; with none, training runs on the CPU.

This module imports no JAX: it must run before JAX picks its devices.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

GPU_XLA_FLAGS = "--xla_gpu_enable_triton_gemm=false"
"""XLA's Triton GEMM fusions find no valid config for some float64 dots of the factored
attention's Jacobian on H100 (jax 0.11.2: 'No candidates could be compiled'); cuBLAS does them."""

LOCK_DIR_VARIABLE = "VITNQS_GPU_LOCK_DIR"
"""Environment variable that overrides the lock folder (default: <tmp>/vitnqs-gpu-locks)."""


def visible_gpus() -> list[str]:
    """The ids of the GPUs this process may use: CUDA_VISIBLE_DEVICES, else nvidia-smi -L."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        ids = [i.strip() for i in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if i.strip()]
        return [] if ids[:1] == ["-1"] else ids
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in listing.splitlines() if l.startswith("GPU "))]


def set_xla_flags() -> None:
    """Add GPU_XLA_FLAGS to XLA_FLAGS unless the user set that flag; call before importing JAX."""
    if "xla_gpu_enable_triton_gemm" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {GPU_XLA_FLAGS}".strip()


@contextlib.contextmanager
def claim_gpu(poll_seconds: float = 5.0) -> Iterator[str | None]:
    """Hold a free GPU for the duration of the block (XLA flags set); yield its id, or None."""
    set_xla_flags()
    gpus = visible_gpus()
    if len(gpus) <= 1:
        yield gpus[0] if gpus else None
        return
    lock_dir = Path(os.environ.get(LOCK_DIR_VARIABLE) or Path(tempfile.gettempdir(), "vitnqs-gpu-locks"))
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        for gpu in gpus:
            handle = open(lock_dir / f"gpu-{gpu}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
            try:
                yield gpu
            finally:
                handle.close()  # closing the file releases the lock
            return
        time.sleep(poll_seconds)  # every card is taken (another Snakemake on this machine?)
