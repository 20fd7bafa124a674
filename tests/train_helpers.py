"""Tiny run configs and subprocess helpers shared by the training and fault tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

TINY_RUN = dict(
    L=4, J2=0.5, n_layers=1, attention="t5", d_model=8, n_heads=2, seed=3,
    n_steps=24, n_samples=64, n_chains=16, n_discard_per_chain=1, learning_rate=0.02,
    diag_shift=1e-3, n_samples_final=256, checkpoint_every=4, log_every=4,
    sr_on_the_fly=False, protocol="test",
)
"""A run that takes seconds on one CPU core once compiled."""


def write_config(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump({**TINY_RUN, **changes}))
    return path


def train_command(config_path: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "vitnqs.cli", "train", str(config_path), str(run_dir), "--quiet"]


def train_in_subprocess(config_path: Path, run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(train_command(config_path, run_dir), capture_output=True, text=True,
                          timeout=600, env=_env())


def kill_training_when(config_path: Path, run_dir: Path, ready, timeout: float = 300) -> bool:
    """Start training, SIGKILL it as soon as ready(run_dir) holds; False if it finished first."""
    process = subprocess.Popen(train_command(config_path, run_dir), env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if ready(run_dir):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.01)
    process.wait()
    return False


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env["PYTHONUNBUFFERED"] = "1"
    return env
