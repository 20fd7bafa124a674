"""Shared fixtures: small systems and models that run on two CPU cores in seconds."""

from __future__ import annotations

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from vitnqs import ViT, build_system  # noqa: E402


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
