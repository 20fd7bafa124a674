"""Shared fixtures: small systems and models that run on two CPU cores in seconds."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest
from train_helpers import train_in_subprocess, write_config

jax.config.update("jax_enable_x64", True)

from vitnqs import ViT, build_system  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def jax_compilation_cache(tmp_path_factory):
    """One persistent XLA cache for the session's subprocesses (training CLI, Snakemake jobs):
    each compiles a tiny run in ~12 s alone, ~2 s from the cache, with bit-identical results."""
    settings = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax-cache")),
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    before = {key: os.environ.get(key) for key in settings}
    os.environ.update({key: before[key] or value for key, value in settings.items()})
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """The reference: one tiny run (TINY_RUN) trained without interruption, in a fresh process."""
    root = tmp_path_factory.mktemp("uninterrupted")
    config = write_config(root / "run.yaml")
    result = train_in_subprocess(config, root / "run")
    assert result.returncode == 0, result.stderr
    return root / "run"


def random_sz0_configurations(n_sites: int, n_configs: int, seed: int = 0) -> np.ndarray:
    """Random +-1 configurations with total Sz = 0 (as many up as down spins)."""
    rng = np.random.default_rng(seed)
    base = np.array([1.0] * (n_sites // 2) + [-1.0] * (n_sites // 2))
    return np.stack([rng.permutation(base) for _ in range(n_configs)])


@pytest.fixture(scope="session")
def system_4x4():
    return build_system(4, 0.5)


@pytest.fixture(params=["t5", "decoupled", "factored"])
def mechanism(request):
    return request.param


def small_vit(attention: str, n_layers: int = 2) -> ViT:
    return ViT(n_layers=n_layers, d_model=8, n_heads=2, patch_size=2, attention=attention)
