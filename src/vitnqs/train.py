"""One optimization run: build, optimize with VMC_SR, checkpoint, resume, summarize.

``run(config, run_dir)`` called again on the same directory continues from the last checkpoint;
on the CPU the finished outputs are bit-for-bit those of an uninterrupted run (the timing
columns aside). A non-finite energy or parameter stops the run with ``NonFiniteError`` naming the
step; the last good checkpoint is kept and nothing non-finite is written. A SIGTERM during the
steps (SLURM's time limit, ``timeout``, a cancelled job) ends the step under way, writes its
checkpoint and raises ``TrainingStopped``: no completed step is lost. The final energy is drawn
in batches of M samples, each recorded as it is drawn: a SIGTERM there ends the batch under way,
and a rerun (after a SIGTERM or a SIGKILL) continues with the next batch. What a run directory
holds, and who writes it: ``vitnqs.recorder``.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import netket as nk
import numpy as np
import optax

from vitnqs import io, provenance, segments
from vitnqs.config import ConfigError, RunConfig
from vitnqs.memory import plan_chunks
from vitnqs.recorder import NonFiniteError, RunDirectoryError, RunRecorder, TrainingStopped
from vitnqs.sharding import check_chains_split
from vitnqs.sr import SymmetricKernelVMC_SR
from vitnqs.system import build_system, energy_per_site, variance_spin_half


# --- building blocks ----------------------------------------------------------------------------
def build_model(config: RunConfig):
    import jax.numpy as jnp

    from vitnqs.model import ViT

    return ViT(
        n_layers=config.n_layers, d_model=config.d_model, n_heads=config.n_heads,
        patch_size=config.patch_size, attention=config.attention,
        positional_init=config.positional_init, query_key=config.query_key,
        param_dtype=getattr(jnp, config.dtype),
    )


def build_variational_state(config: RunConfig, system=None, model=None, variables=None):
    """The NetKet MCState of a run: ViT, Metropolis exchange sampler, M samples.

    ``model`` and ``variables`` replace the run's ViT and its random initialization (the
    analysis samples trained or modified networks through the run's own sampler this way).
    """
    system = system or build_system(config.L, config.J2)
    model = build_model(config) if model is None else model
    state_type, extra = nk.vqs.MCState, {}
    if config.forward_dtype != config.dtype:  # float32 passes, float64 parameters
        from vitnqs.precision import MixedPrecisionMCState, float32_model

        state_type = MixedPrecisionMCState
        extra["forward_model"] = float32_model(model)
    return state_type(
        system.sampler(n_chains=config.chains, d_max=config.d_max),
        model,
        n_samples=config.n_samples,
        n_discard_per_chain=config.n_discard_per_chain,
        chunk_size=None if config.chunk_size == "auto" else config.chunk_size,
        variables=variables,
        seed=config.seed,
        sampler_seed=config.seed + 1,
        **extra,
    )


def plan_step(config: RunConfig, system, vstate):
    """Chunk sizes and SR mode for this device (chunk set on vstate; vitnqs.memory), and the
    Hamiltonian the step evaluates. Returns (hamiltonian, plan)."""
    plan = plan_chunks(vstate, system.local_energy_operator().n_bonds,
                       chunk_size=config.chunk_size, block_size=config.local_energy_block,
                       sr_on_the_fly=config.sr_on_the_fly)
    vstate.chunk_size = plan.chunk_size
    return system.local_energy_operator(plan.block_size), plan


def build_driver(config: RunConfig, hamiltonian, vstate, sr_on_the_fly: bool | None = None,
                 driver_type=SymmetricKernelVMC_SR):
    """VMC_SR in its kernel (minSR) form with a cosine-decayed learning rate; by default the
    one whose stored-Jacobian kernel is a symmetric product (vitnqs.sr)."""
    schedule = optax.cosine_decay_schedule(
        config.learning_rate, config.n_steps,
        alpha=config.learning_rate_final / config.learning_rate
    )
    return driver_type(
        hamiltonian, optax.sgd(schedule), diag_shift=diag_shift_schedule(config),
        variational_state=vstate, use_ntk=True, on_the_fly=sr_on_the_fly,
    )


def diag_shift_schedule(config: RunConfig):
    """The diagonal shift VMC_SR takes: a number, or with a damped start (diag_shift_initial)
    RunConfig.diag_shift_at, which VMC_SR calls with its step count (a Python int)."""
    return config.diag_shift if config.diag_shift_initial is None else config.diag_shift_at


# --- the run ------------------------------------------------------------------------------------
def run(config: RunConfig | dict, run_dir: Path | str, *, quiet: bool = False,
        until_step: int | None = None) -> dict[str, Any] | None:
    """Train one run into run_dir (resuming if a checkpoint is there) and return its summary.

    ``until_step`` < n_steps trains only up to that step, checkpoints it and returns None (a run
    already past it is left as it is); the same call without it continues to the end, on the
    trajectory of an uninterrupted run (the schedule is always that of n_steps).
    """
    config = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    if until_step is not None and not 0 < until_step <= config.n_steps:
        raise ConfigError(f"until_step must be in [1, n_steps={config.n_steps}], "
                          f"got {until_step}")
    target = config.n_steps if until_step is None else until_step
    check_chains_split(config.run_id, config.chains)
    run_dir = Path(run_dir)
    _claim_run_directory(config, run_dir)
    logger = _logger(run_dir, quiet)
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        logger.info("%s already finished; nothing to do", run_dir)
        return io.read_json(summary_path)
    recorder = RunRecorder(config, run_dir, logger)
    recorder.refuse_to_restart_a_finished_run()

    for folder in (run_dir, run_dir / "checkpoint", run_dir / "snapshots"):
        for path in io.remove_stale_temporaries(folder):
            logger.info("removed %s, left by a write that was killed", path)
    system = build_system(config.L, config.J2)
    vstate = build_variational_state(config, system)
    hamiltonian, plan = plan_step(config, system, vstate)
    logger.info("memory plan: %s", plan.describe())
    driver = build_driver(config, hamiltonian, vstate, plan.sr_on_the_fly)
    recorder.restore(driver)

    # One SIGTERM handler from the first step to the last batch of the final energy: a stop
    # asked for in between (while recorder.finish writes the last checkpoint) ends the run
    # after the first batch, recorded, instead of at once.
    try:
        with _stop_when_safe_on(signal.SIGTERM, recorder):
            remaining = target - driver.step_count
            if remaining > 0:
                device, commit = provenance.device_name(), recorder.git_commit
                segments.record_start(run_dir, driver.step_count, device, commit)
                logger.info(
                    "%s: %s steps %d..%d of %d, M=%d, %d parameters, device %s, commit %s",
                    config.run_id, "resuming" if driver.step_count else "starting",
                    driver.step_count, config.n_steps - 1, config.n_steps, config.n_samples,
                    vstate.n_parameters, device, commit,
                )
                driver.run(remaining, out=None, show_progress=False, callback=recorder.callback())
            if target < config.n_steps and driver.step_count >= target:
                if remaining > 0:
                    recorder.checkpoint(driver, driver.step_count)
                logger.info("%s: stopped at step %d of %d as asked (until_step); checkpoint "
                            "written", config.run_id, driver.step_count, config.n_steps)
                return None
            if driver.step_count != config.n_steps:
                raise RuntimeError(f"run stopped at step {driver.step_count} of {config.n_steps}")
            recorder.finish(driver)
            final = final_energy(config, hamiltonian, vstate, recorder)
    except NonFiniteError as error:  # checkpoint untouched; the good steps kept for diagnosis,
        recorder.write_history()     # and the run's own log says why it stopped
        logger.error("%s stopped: %s", config.run_id, error)
        raise
    summary = recorder.summary(vstate, final)
    io.write_json(summary_path, summary)
    recorder.forget_final_energy()
    logger.info(
        "%s done: E = %.8f +- %.1e per site, V-score %.2e, %.3f s/step",
        config.run_id, summary["energy_per_site"], summary["energy_error"], summary["v_score"],
        summary["seconds_per_step"],
    )
    return summary


def final_energy(config: RunConfig, hamiltonian, vstate,
                 recorder: RunRecorder | None = None) -> dict[str, float]:
    """Energy per site from n_samples_final fresh samples, drawn M at a time, with the
    state's chunk size. With a recorder, each batch is recorded as it is drawn and an
    interrupted estimate continues from its record (the same numbers as without the stop)."""
    n_batches = max(1, math.ceil(config.n_samples_final / config.n_samples))
    batches = recorder.restore_final_energy(vstate, n_batches) if recorder else []
    while len(batches) < n_batches:
        vstate.reset()
        e_loc = np.asarray(vstate.local_estimators(hamiltonian).data)
        if not np.all(np.isfinite(e_loc)):
            raise NonFiniteError(f"non-finite local energies in batch {len(batches) + 1} of "
                                 f"{n_batches} of the final energy estimate")
        batches.append(e_loc)
        if recorder:
            recorder.final_energy_batch_done(vstate, batches, n_batches)
    return energy_statistics(np.concatenate(batches, axis=-1), config.n_sites)


def energy_statistics(e_loc_CxT: np.ndarray, n: int) -> dict[str, float]:
    """Energy per site, its error, variance, V-score, R-hat and autocorrelation time of local
    energies (NetKet's Heisenberg, Pauli matrices) of C chains x T samples on n sites."""
    stats = nk.stats.statistics(e_loc_CxT)
    mean = float(np.real(stats.mean))
    return {
        "energy_per_site": float(energy_per_site(mean, n)),
        "energy_error": float(energy_per_site(float(stats.error_of_mean), n)),
        "variance": float(variance_spin_half(np.real(stats.variance))),
        "v_score": float(n * np.real(stats.variance) / mean**2),
        "r_hat": float(stats.R_hat),
        "tau_corr": float(stats.tau_corr),
        "n_samples_final": int(e_loc_CxT.size),
    }


# --- helpers ------------------------------------------------------------------------------------
@contextmanager
def _stop_when_safe_on(signum: signal.Signals, recorder: RunRecorder):
    """While training and drawing the final energy, signum asks the run to stop once the step
    (or batch) under way is done and recorded (a step takes seconds; SLURM waits 30 s by
    default before its SIGKILL); a second signum ends the process at once. Outside the main
    thread, Python cannot handle signals: nothing changes there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask_to_stop(received, frame):
        if recorder.stop_requested:  # asked twice: the default action, now
            signal.signal(received, signal.SIG_DFL)
            os.kill(os.getpid(), received)
        recorder.stop_requested = signal.Signals(received).name

    previous = signal.signal(signum, ask_to_stop)
    try:
        yield
    finally:
        signal.signal(signum, signal.SIG_DFL if previous is None else previous)


def _claim_run_directory(config: RunConfig, run_dir: Path) -> None:
    """Write config.yaml, or check that the one there describes the same run."""
    path = run_dir / "config.yaml"
    if path.exists():
        try:
            existing = RunConfig.from_dict(io.read_yaml(path))
        except (ConfigError, io.CorruptFileError) as error:
            raise RunDirectoryError(
                f"{run_dir} holds a config.yaml that is not a valid run config (written by another "
                f"version of vitnqs?): {error}; nothing was changed"
            ) from None
        changed = list(existing.science_changes(config))
        if changed:
            raise RunDirectoryError(
                f"{run_dir} holds a run with a different config (keys {changed} differ); "
                "use another directory or remove it"
            )
        return
    io.write_yaml(path, config.to_dict())


def _logger(run_dir: Path, quiet: bool) -> logging.Logger:
    logger = logging.getLogger(f"vitnqs.train.{run_dir.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
    file_handler = logging.FileHandler(run_dir / "train.log")
    file_handler.setFormatter(formatter)
    logger.addHandler(file_handler)
    if not quiet:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        logger.addHandler(stream)
    return logger


# the exceptions `run` raises, beside it
__all__ = [
    "ConfigError", "NonFiniteError", "RunDirectoryError", "TrainingStopped", "final_energy", "run",
]
