"""Time one VMC_SR optimization step of a run config on the current device.

``time_step(config)`` builds the run's state and driver exactly as training does, runs warm-up
steps (the first compiles), then times ``n_timed`` steps with the device synchronized, and
reports the median, the compile time and the device's peak memory. Each configuration should be
measured in its own process when peak memory matters (JAX's peak counter never resets).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from vitnqs.config import RunConfig
from vitnqs.system import build_system


def _peak_gib() -> float:
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use", float("nan")) / 2**30


def time_step(config: RunConfig, n_timed: int = 5, n_warmup: int = 2) -> dict[str, Any]:
    """Median wall seconds of one optimization step, with compile time and peak memory."""
    from vitnqs.provenance import device_name
    from vitnqs.train import build_driver, build_variational_state

    system = build_system(config.L, config.J2)
    vstate = build_variational_state(config, system)
    driver = build_driver(config, system, vstate)

    def step():
        driver.run(1, out=None, show_progress=False)
        jax.block_until_ready(vstate.parameters)

    started = time.perf_counter()
    step()
    compile_seconds = time.perf_counter() - started
    for _ in range(n_warmup - 1):
        step()
    seconds = []
    for _ in range(n_timed):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    return {
        "L": config.L,
        "attention": config.attention,
        "n_layers": config.n_layers,
        "n_samples": config.n_samples,
        "n_chains": config.chains,
        "chunk_size": config.chunk_size,
        "sr_on_the_fly": config.sr_on_the_fly,
        "n_params": int(vstate.n_parameters),
        "seconds_per_step": float(np.median(seconds)),
        "seconds_min": float(np.min(seconds)),
        "seconds_max": float(np.max(seconds)),
        "compile_seconds": compile_seconds,
        "peak_gib": _peak_gib(),
        "device": device_name(),
    }
