"""The vitnqs step against NetKet's VMC_SR at every step of one trajectory ("shadow" comparison).

Two trajectories run side by side decorrelate: round-off differences flip Metropolis decisions,
and during the fast descent two statistically equivalent runs sit at different heights at the
same step (results/benchmarks/notes.md, sessions 3 and 5). Comparing them step by step tests the
chaos of the optimization, not the step. Here one trajectory is driven by the vitnqs step; at
every step, after the vitnqs update is computed, NetKet's plain VMC_SR (its numba Heisenberg
operator, the same SR form) shares the variational state and computes its own energy and update
from the same parameters and the same samples. Both are then compared exactly:

- energy_relative_difference = |E_vitnqs - E_netket| / |E_netket| (same samples: round-off);
- update_relative_difference = max |dp_vitnqs - dp_netket| / max |dp_netket| over all parameters.

The trajectory continues with the vitnqs update, so the comparison covers the states that a
vitnqs run actually visits.
"""

from __future__ import annotations

from typing import Any

import netket as nk
import numpy as np
from jax.flatten_util import ravel_pytree
from netket.callbacks import AbstractCallback
from netket.utils import struct

from vitnqs.config import RunConfig
from vitnqs.system import build_system, energy_per_site


class NetKetShadow(AbstractCallback, mutable=True):
    """After the driver's update is computed, the baseline driver (sharing its state, so its
    samples) computes its own; keeps one row of both every `every` steps."""

    baseline: Any = struct.field(pytree_node=False, serialize=False)
    n_sites: int = struct.field(pytree_node=False, serialize=False)
    every: int = struct.field(pytree_node=False, serialize=False)
    rows: list = struct.field(pytree_node=False, serialize=False)

    def __init__(self, baseline, n_sites: int, every: int):
        self.baseline = baseline
        self.n_sites = n_sites
        self.every = every
        self.rows = []

    def on_compute_update_end(self, step, log_data, driver):
        if step % self.every:
            return False
        self.baseline._step_count = driver.step_count  # the same diagonal-shift schedule point
        baseline_stats, baseline_update = self.baseline.compute_loss_and_update()
        fast = np.asarray(ravel_pytree(driver._dp)[0])
        reference = np.asarray(ravel_pytree(baseline_update)[0])
        energies = [float(np.real(stats.mean)) for stats in (driver._loss_stats, baseline_stats)]
        errors = [float(stats.error_of_mean) for stats in (driver._loss_stats, baseline_stats)]
        self.rows.append({
            "step": step,
            "energy_vitnqs": energy_per_site(energies[0], self.n_sites),
            "error_vitnqs": energy_per_site(errors[0], self.n_sites),
            "energy_netket": energy_per_site(energies[1], self.n_sites),
            "energy_relative_difference": abs(energies[0] - energies[1]) / abs(energies[1]),
            "update_relative_difference": (float(np.max(np.abs(fast - reference)))
                                           / float(np.max(np.abs(reference)))),
            "update_norm": float(np.linalg.norm(reference)),
        })
        return False


def shadow_trajectory(config: RunConfig, n_steps: int, every: int = 20) -> list[dict]:
    """Rows every `every` steps of a vitnqs trajectory of n_steps, each comparing the vitnqs
    energy and update with NetKet's VMC_SR on the same state and samples."""
    from vitnqs.benchmark import build_step
    from vitnqs.train import build_driver

    driver, vstate, _, _ = build_step(config, "vitnqs")
    baseline = build_driver(config, build_system(config.L, config.J2).hamiltonian, vstate,
                            driver.on_the_fly, nk.driver.VMC_SR)
    shadow = NetKetShadow(baseline, config.n_sites, every)
    driver.run(n_steps, out=None, show_progress=False, callback=shadow)
    return shadow.rows
