"""Time the project's VMC step against a plain-NetKet step, in one process on one device.

Two steps are built from the same run config, the same initial parameters and the same sampler
seed:

- ``vitnqs``: what training runs (``vitnqs.train``): the J1-J2 Hamiltonian as a
  ``BondExchange`` whose local energies skip zero matrix elements and run on the device, chunk
  sizes from the device's free memory (``vitnqs.memory``).
- ``vitnqs-float32``: the same with float32 network passes in sampling and local energies
  (``forward_dtype: float32``, vitnqs.precision).
- ``netket``: the plain way of NetKet's ViT tutorial: ``nk.operator.Heisenberg`` (a numba
  ``LocalOperator``: connected configurations built on the host, all 1 + n_bonds of them
  evaluated), ``VMC_SR(use_ntk=True)`` with NetKet's defaults and a fixed ``baseline_chunk``.

For each, ``time_step_parts`` reports the median seconds of a whole optimization step, of
sampling alone and of the local energies alone (the SR part is the rest), the first step's
time (compilation included) and the device's peak memory so far. ``model_flops`` and
``step_flops`` count the floating-point operations of one step from XLA's cost analysis of the
model's forward pass and Jacobian, plus the M x M kernel and its solve; ``measure_peak_flops``
measures the device's float64 matrix-multiply rate, against which the achieved fraction is
reported.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vitnqs.config import RunConfig
from vitnqs.system import build_system, energy_per_site

IMPLEMENTATIONS = ("vitnqs", "vitnqs-float32", "netket")
LABELS = {
    "vitnqs": "vitnqs step",
    "vitnqs-float32": "vitnqs step, float32 passes",
    "netket": "plain NetKet VMC_SR (tutorial setup)",
}


TIMING_LOCK_VARIABLE = "VITNQS_TIMING_LOCK"
"""A file path: benchmark processes sharing a machine compile at once but time one at a time."""


@contextlib.contextmanager
def exclusive_timing():
    """Hold the lock file named by VITNQS_TIMING_LOCK, if set, for the block."""
    path = os.environ.get(TIMING_LOCK_VARIABLE)
    if not path:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_table(path, rows: list[dict]):
    """Write rows (with the code's git commit) as a CSV table; return the table."""
    import pandas as pd

    from vitnqs import io
    from vitnqs.provenance import git_commit

    table = pd.DataFrame(rows).assign(git_commit=git_commit())
    io.write_csv(path, table)
    return table


def peak_memory_gib() -> float:
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use", float("nan")) / 2**30


# --- building the two steps --------------------------------------------------------------------
def build_step(config: RunConfig, implementation: str, baseline_chunk: int | None = None,
               baseline_on_the_fly: bool | None = None):
    """(driver, vstate, hamiltonian, chunk description) for one implementation; the NetKet
    baseline builds its SR kernel on the fly unless baseline_on_the_fly says otherwise."""
    from vitnqs.train import build_driver, build_variational_state, plan_step

    system = build_system(config.L, config.J2)
    if implementation == "vitnqs-float32":
        return build_step(config.replace(forward_dtype="float32"), "vitnqs")
    if implementation == "vitnqs":
        vstate = build_variational_state(config, system)
        hamiltonian, plan = plan_step(config, system, vstate)
        driver = build_driver(config, hamiltonian, vstate, plan.sr_on_the_fly)
        return driver, vstate, hamiltonian, plan.describe()
    if implementation == "netket":
        import netket as nk

        vstate = build_variational_state(config.replace(chunk_size=baseline_chunk), system)
        driver = build_driver(config, system.hamiltonian, vstate, baseline_on_the_fly,
                              nk.driver.VMC_SR)
        return (driver, vstate, system.hamiltonian,
                f"chunk_size={baseline_chunk}, sr_on_the_fly={driver.on_the_fly}")
    raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")


# --- timing ---------------------------------------------------------------------------------------
def _seconds(fn) -> float:
    started = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - started


def time_step_parts(driver, vstate, hamiltonian, n_timed: int, n_warmup: int = 2) -> dict:
    """Median seconds of a step and of its sampling and local-energy parts."""

    def step():
        driver.run(1, out=None, show_progress=False)
        return vstate.parameters

    first = _seconds(step)
    jax.block_until_ready(vstate.local_estimators(hamiltonian).data)  # compile outside the timing
    steps, sampling, local = [], [], []
    with exclusive_timing():
        for _ in range(n_warmup - 1):
            _seconds(step)
        for _ in range(n_timed):
            steps.append(_seconds(step))
            vstate.reset()
            sampling.append(_seconds(lambda: vstate.samples))
            local.append(_seconds(lambda: vstate.local_estimators(hamiltonian).data))
    return {
        "seconds_per_step": statistics.median(steps),
        "seconds_min": min(steps),
        "seconds_max": max(steps),
        "seconds_sampling": statistics.median(sampling),
        "seconds_local_energies": statistics.median(local),
        "seconds_sr": statistics.median(steps) - statistics.median(sampling)
        - statistics.median(local),
        "first_step_seconds": first,
    }


def measure_peak_flops(n: int = 8192, repeats: int = 5) -> float:
    """Float64 matrix-multiply rate of the device in FLOP/s (best of `repeats`)."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype=jnp.float64)
    matmul = jax.jit(lambda x: x @ x)
    jax.block_until_ready(matmul(a))
    with exclusive_timing():
        best = min(_seconds(lambda: matmul(a)) for _ in range(repeats))
    return 2 * n**3 / best


# --- counting -------------------------------------------------------------------------------------
def _flops(fn, *args) -> float:
    """XLA's count of fn(*args) lowered for the CPU: the count is the program's, not the
    device's, and on a GPU the compiled analysis leaves out matrix products done by library
    calls and the lowered one reports nothing (jax 0.11.2)."""
    cpu = jax.devices("cpu")[0]
    args = jax.device_put(args, cpu)
    # NetKet sets a mesh of the accelerators at import; the CPU lowering needs a CPU one
    cpu_mesh = jax.sharding.Mesh(np.array([cpu]), ("S",))
    with jax.default_device(cpu), jax.set_mesh(cpu_mesh):
        analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    return float((analysis or {}).get("flops", float("nan")))


def model_flops(vstate) -> dict[str, float]:
    """FLOPs per configuration of the forward pass and per sample of the Jacobian."""
    from vitnqs.memory import PROBE_ROWS, row_probes

    probes = row_probes(vstate)
    try:
        return {name: _flops(fn, *args) / PROBE_ROWS for name, (fn, args) in probes.items()}
    except (ValueError, RuntimeError) as error:  # the timings matter more than the count
        print(f"benchmark: FLOPs not counted ({type(error).__name__}: {error})", flush=True)
        return dict.fromkeys(probes, float("nan"))


def step_flops(config: RunConfig, n_params: int, model: dict[str, float],
               networks_per_sample: float, kernel_share: float = 1.0) -> dict[str, float]:
    """Floating-point operations of one step, by part, from ``model_flops``.

    networks_per_sample: network passes per sample in the local energies (1 + n_bonds for
    NetKet's padded kernel; 1 + antiparallel bonds for vitnqs). kernel_share: the part of the
    full 2M x 2M product that is computed (vitnqs.sr.KERNEL_SHARE with a stored Jacobian).
    """
    M, N = config.n_samples, config.n_sites
    sweeps = config.n_discard_per_chain + M // config.chains
    rows = 2 * M  # complex mode: real and imaginary parts
    return {
        "flops_sampling": sweeps * N * config.chains * model["forward"],
        "flops_local_energies": M * networks_per_sample * model["forward"],
        "flops_jacobian": M * model["jacobian"],
        "flops_kernel": kernel_share * 2.0 * rows * rows * n_params,
        "flops_solve": rows**3 / 3 + 2.0 * rows * n_params,
        "flops_forward_per_config": model["forward"],
    }


def kernel_share(driver) -> float:
    """The part of the 2M x 2M kernel product this driver computes."""
    from vitnqs.sr import KERNEL_SHARE, SymmetricKernelVMC_SR

    if isinstance(driver, SymmetricKernelVMC_SR) and not driver.on_the_fly:
        return KERNEL_SHARE
    return 1.0


def networks_per_sample(vstate, hamiltonian) -> float:
    """Network passes per sample in the local energies of this Hamiltonian."""
    from vitnqs.exchange import BondExchange, antiparallel_fraction

    if isinstance(hamiltonian, BondExchange):
        return 1 + antiparallel_fraction(vstate.samples, hamiltonian) * hamiltonian.n_bonds
    return 1 + hamiltonian.max_conn_size


# --- one configuration, both implementations ------------------------------------------------------
def benchmark(config: RunConfig, n_timed: int = 3, baseline_chunk: int | None = 2000,
              peak_flops: float | None = None,
              implementations: tuple[str, ...] = IMPLEMENTATIONS,
              on_row=None) -> list[dict[str, Any]]:
    """A row per implementation on this device (netket last), each with its speedup over netket.

    on_row(rows) is called after each implementation (to save partial results)."""
    from vitnqs.provenance import device_name

    unknown = sorted(set(implementations) - set(IMPLEMENTATIONS))
    if unknown:
        raise ValueError(f"unknown implementation(s) {unknown}; choose from {IMPLEMENTATIONS}")
    chunk = baseline_chunk if baseline_chunk and config.n_samples % baseline_chunk == 0 else None
    rows, model = [], None
    for implementation in implementations:
        driver, vstate, hamiltonian, chunks = build_step(config, implementation, chunk)
        times = time_step_parts(driver, vstate, hamiltonian, n_timed)
        model = model or model_flops(vstate)  # the same network in every implementation
        flops = step_flops(config, vstate.n_parameters, model,
                           networks_per_sample(vstate, hamiltonian), kernel_share(driver))
        total = sum(v for k, v in flops.items() if k != "flops_forward_per_config")
        rows.append({
            "implementation": LABELS[implementation],
            "L": config.L, "attention": config.attention, "n_layers": config.n_layers,
            "n_samples": config.n_samples, "n_chains": config.chains, "chunks": chunks,
            "n_params": int(vstate.n_parameters), **times,
            "peak_gib_so_far": peak_memory_gib(),
            **flops, "flops_per_step": total,
            "device_peak_flops": peak_flops,
            "fraction_of_peak": (total / times["seconds_per_step"] / peak_flops
                                 if peak_flops else None),
            "device": device_name(),
        })
        del driver, vstate
        if on_row is not None:
            on_row(rows)
    if implementations[-1] == "netket":
        for row in rows:
            row["speedup_over_netket"] = rows[-1]["seconds_per_step"] / row["seconds_per_step"]
    return rows


def compare_trajectories(config: RunConfig, n_steps: int, every: int = 20,
                         implementations: tuple[str, ...] = IMPLEMENTATIONS) -> list[dict]:
    """Energies of each implementation from the same initial state and sampler seed, NetKet's
    (the last) with the same SR form (stored Jacobian or not) as the first.

    Rows every `every` steps: each implementation's energy per site and error, and for each
    its difference from netket (the last) in units of the combined error sqrt(e_a^2 + e_b^2).
    """
    histories = {}
    on_the_fly = None
    chunk = config.chunk_size if isinstance(config.chunk_size, int) else None
    for implementation in implementations:
        driver, _, _, _ = build_step(config, implementation, chunk, on_the_fly)
        on_the_fly = driver.on_the_fly  # the baseline (last) uses the same SR form
        log = []

        def record(step, log_data, driver, log=log):
            stats = driver._loss_stats
            log.append((float(np.real(stats.mean)), float(stats.error_of_mean)))
            return True

        started = time.perf_counter()
        driver.run(n_steps, out=None, show_progress=False, callback=record)
        print(f"compare: {implementation} {n_steps} steps in {time.perf_counter() - started:.0f} s",
              flush=True)
        histories[implementation] = energy_per_site(np.asarray(log), config.n_sites)
    reference = histories[implementations[-1]]
    rows = []
    for step in range(0, n_steps, every):
        row = {"step": step}
        for name, history in histories.items():
            row[f"energy_{name}"], row[f"error_{name}"] = history[step]
        for name, history in list(histories.items())[:-1]:
            combined = float(np.hypot(history[step, 1], reference[step, 1]))
            row[f"difference_{name}_over_combined_error"] = (
                abs(history[step, 0] - reference[step, 0]) / combined
            )
        rows.append(row)
    return rows


def same_state_energies(config: RunConfig, variables=None, n_burn_in: int = 0) -> dict[str, float]:
    """One state (random, or `variables`, e.g. a trained run's), one set of samples (after
    n_burn_in draws that continue the chains): its energy per site through each
    implementation's local energies, and the relative difference of each from NetKet's."""
    from vitnqs.train import build_variational_state

    system = build_system(config.L, config.J2)
    vstate = build_variational_state(config, system, variables=variables)
    for _ in range(n_burn_in):
        vstate.sample()
    mixed = build_variational_state(config.replace(forward_dtype="float32"), system,
                                    variables=variables)
    mixed._samples = vstate.samples  # the same samples
    local = {
        "vitnqs": vstate.local_estimators(system.local_energy_operator()),
        "vitnqs-float32": mixed.local_estimators(system.local_energy_operator()),
        "netket": vstate.local_estimators(system.hamiltonian),
    }
    energies = {k: float(np.real(np.asarray(v.data).mean())) for k, v in local.items()}
    out = {}
    for name, energy in energies.items():
        out[f"same_samples_energy_{name}"] = energy_per_site(energy, config.n_sites)
        out[f"same_samples_relative_difference_{name}"] = (
            abs(energy - energies["netket"]) / abs(energies["netket"])
        )
    return out
