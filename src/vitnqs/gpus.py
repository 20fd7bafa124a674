"""GPUs per training job: count the visible GPUs and claim free ones with file locks.

Snakemake limits concurrent training jobs by the number of GPUs (``resources: gpu=1`` per job
unless ``--set-resources train:gpu=N``; global limit from ``visible_gpus()``); ``claim_gpus``
then gives each job its own cards by taking an exclusive lock on ``<lock dir>/gpu-<id>.lock``
per card and setting ``CUDA_VISIBLE_DEVICES`` to those ids before JAX is imported (NetKet then
shards the run's chains over them). The locks are released when the job ends, even if it
crashes, since the operating system drops them with the process. A job that sees just the cards
it asked for (a SLURM job) locks nothing; with none, training runs on the CPU.

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
    n_gpus = sum(line.startswith("GPU ") for line in listing.splitlines())
    return [str(i) for i in range(n_gpus)]


def set_xla_flags() -> None:
    """Add GPU_XLA_FLAGS to XLA_FLAGS unless the user set that flag; call before importing JAX."""
    if "xla_gpu_enable_triton_gemm" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {GPU_XLA_FLAGS}".strip()


@contextlib.contextmanager
def claim_gpus(count: int = 1, poll_seconds: float = 5.0) -> Iterator[str | None]:
    """Hold `count` free GPUs for the duration of the block (XLA flags set) and yield their ids
    as CUDA_VISIBLE_DEVICES now holds them ("3", or "3,5" for two), or None without GPUs.

    A job that sees exactly `count` GPUs (a SLURM job sees its own) takes them without locks.
    Otherwise it locks free cards one by one; if fewer than `count` are free it gives back
    those it took and waits, so two jobs never hold half of what each needs.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"a training job needs a positive number of GPUs, got gpu={count!r}")
    set_xla_flags()
    gpus = visible_gpus()
    if not gpus:
        yield None
        return
    if len(gpus) < count:
        raise RuntimeError(f"this job asks for {count} GPUs but sees {len(gpus)} "
                           f"(CUDA_VISIBLE_DEVICES={','.join(gpus)}): lower the train rule's "
                           "gpu resource")
    if len(gpus) == count:
        yield ",".join(gpus)
        return
    lock_dir = Path(os.environ.get(LOCK_DIR_VARIABLE)
                    or Path(tempfile.gettempdir(), "vitnqs-gpu-locks"))
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        held = []
        for gpu in gpus:
            handle = open(lock_dir / f"gpu-{gpu}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            held.append((gpu, handle))
            if len(held) == count:
                break
        if len(held) == count:
            ids = ",".join(gpu for gpu, _ in held)
            os.environ["CUDA_VISIBLE_DEVICES"] = ids
            try:
                yield ids
            finally:
                for _, handle in held:
                    handle.close()  # closing the file releases the lock
            return
        for _, handle in held:
            handle.close()
        time.sleep(poll_seconds)  # too few cards free (other jobs, another Snakemake?)
