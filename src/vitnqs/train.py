"""One optimization run: build, optimize with VMC_SR, checkpoint, resume, summarize.

Run directory layout (all writes atomic; see ``vitnqs.io``):
    config.yaml                 the validated run config
    history.csv                 one row per step (written at each checkpoint and at the end)
    snapshots/step_XXXXXX.msgpack  parameters at the start of the step (final one in float64)
    summary.json                final energy, timings, provenance; written last
    train.log                   progress lines
    checkpoint/state.msgpack    full state every k steps (the previous one kept as state.prev.msgpack)

``run(config, run_dir)`` called again on the same directory continues from the last checkpoint;
on the CPU the finished outputs are bit-for-bit those of an uninterrupted run (the timing
columns aside). A non-finite energy or parameter stops the run with ``NonFiniteError`` naming the
step; the last good checkpoint is kept and nothing non-finite is written. A SIGTERM during the
steps (SLURM's time limit, ``timeout``, a cancelled job) ends the step under way, writes its
checkpoint and raises ``TrainingStopped``: no completed step is lost.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jax
import netket as nk
import numpy as np
import optax
import pandas as pd
from flax import serialization
from netket.callbacks import AbstractCallback
from netket.utils import struct

from vitnqs import io, provenance, segments
from vitnqs.config import ConfigError, RunConfig
from vitnqs.memory import plan_chunks
from vitnqs.sharding import check_chains_split
from vitnqs.sr import SymmetricKernelVMC_SR
from vitnqs.system import build_system, energy_per_site, reference_energy

HISTORY_COLUMNS = (
    "step", "energy", "energy_error", "variance", "r_hat", "tau_corr", "acceptance", "seconds",
)
"""Columns of history.csv. energy and its error are per site (J1, S = 1/2); variance is the
variance of the total local energy in units of J1^2 (S = 1/2); seconds is the step's wall time."""


class NonFiniteError(FloatingPointError):
    """The optimization produced a NaN or Inf; the message names the step."""


class RunDirectoryError(RuntimeError):
    """The run directory holds a different run; nothing was overwritten."""


class TrainingStopped(RuntimeError):
    """A signal stopped the run after a completed step, whose checkpoint was written."""


# --- building blocks ----------------------------------------------------------------------------
def build_model(config: RunConfig):
    import jax.numpy as jnp

    from vitnqs.model import ViT

    return ViT(
        n_layers=config.n_layers, d_model=config.d_model, n_heads=config.n_heads,
        patch_size=config.patch_size, attention=config.attention,
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
        config.learning_rate, config.n_steps, alpha=config.learning_rate_final / config.learning_rate
    )
    return driver_type(
        hamiltonian, optax.sgd(schedule), diag_shift=config.diag_shift,
        variational_state=vstate, use_ntk=True, on_the_fly=sr_on_the_fly,
    )


# --- the run ------------------------------------------------------------------------------------
def run(config: RunConfig | dict, run_dir: Path | str, *, quiet: bool = False) -> dict[str, Any]:
    """Train one run into run_dir (resuming if a checkpoint is there) and return its summary."""
    config = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
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

    remaining = config.n_steps - driver.step_count
    if remaining > 0:
        device, commit = provenance.device_name(), provenance.git_commit()
        segments.record_start(run_dir, driver.step_count, device, commit)
        logger.info(
            "%s: %s steps %d..%d of %d, M=%d, %d parameters, device %s, commit %s",
            config.run_id, "resuming" if driver.step_count else "starting", driver.step_count,
            config.n_steps - 1, config.n_steps, config.n_samples, vstate.n_parameters,
            device, commit,
        )
        try:
            with _stop_after_step_on(signal.SIGTERM, recorder):
                driver.run(remaining, out=None, show_progress=False, callback=recorder.callback())
        except NonFiniteError:
            recorder.write_history()  # the good steps, for diagnosis; the checkpoint is untouched
            raise
    if driver.step_count != config.n_steps:
        raise RuntimeError(f"run stopped at step {driver.step_count} of {config.n_steps}")
    recorder.finish(driver)

    final = final_energy(config, hamiltonian, vstate)
    summary = recorder.summary(vstate, final)
    io.write_json(summary_path, summary)
    logger.info(
        "%s done: E = %.8f +- %.1e per site, V-score %.2e, %.3f s/step",
        config.run_id, summary["energy_per_site"], summary["energy_error"], summary["v_score"],
        summary["seconds_per_step"],
    )
    return summary


def final_energy(config: RunConfig, hamiltonian, vstate) -> dict[str, float]:
    """Energy per site from n_samples_final fresh samples, drawn M at a time, with the
    state's chunk size."""
    n_batches = max(1, math.ceil(config.n_samples_final / config.n_samples))
    chunks = []
    for _ in range(n_batches):
        vstate.reset()
        e_loc = vstate.local_estimators(hamiltonian)
        chunks.append(np.asarray(e_loc.data))
    e_loc_CxT = np.concatenate(chunks, axis=-1)
    if not np.all(np.isfinite(e_loc_CxT)):
        raise NonFiniteError("non-finite local energies in the final energy estimate")
    stats = nk.stats.statistics(e_loc_CxT)
    n = config.n_sites
    mean = float(np.real(stats.mean))
    return {
        "energy_per_site": float(energy_per_site(mean, n)),
        "energy_error": float(energy_per_site(float(stats.error_of_mean), n)),
        "variance": float(np.real(stats.variance)) / 16.0,
        "v_score": float(n * np.real(stats.variance) / mean**2),
        "r_hat": float(stats.R_hat),
        "tau_corr": float(stats.tau_corr),
        "n_samples_final": int(e_loc_CxT.size),
    }


# --- recording, checkpoints, snapshots -----------------------------------------------------------
class RunRecorder:
    """Owns everything a run writes: history, snapshots, checkpoints, progress, the summary."""

    def __init__(self, config: RunConfig, run_dir: Path, logger: logging.Logger):
        self.config = config
        self.run_dir = run_dir
        self.logger = logger
        self.rows: list[dict[str, float]] = []
        self.elapsed = 0.0  # training wall seconds over all sessions
        self._step_started = 0.0
        self._last_checkpoint = time.monotonic()
        self._snapshots = set(config.snapshots)
        self._checkpointed_step = -1
        self.stop_requested: str | None = None  # the name of a signal that asked the run to stop

    # paths
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint" / "state.msgpack"

    @property
    def previous_checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint" / "state.prev.msgpack"

    def snapshot_path(self, step: int) -> Path:
        return self.run_dir / "snapshots" / f"step_{step:06d}.msgpack"

    def callback(self):
        return _RecorderCallback(self)

    def refuse_to_restart_a_finished_run(self) -> None:
        """A final snapshot without summary.json and without a checkpoint to finish from: the
        run ended once and its summary was removed (`snakemake --forceall` deletes a job's
        outputs first). Training again would start from step 0 over its history and snapshots."""
        final = self.snapshot_path(self.config.n_steps)
        checkpoints = (self.checkpoint_path, self.previous_checkpoint_path)
        if final.exists() and not any(path.exists() for path in checkpoints):
            raise RunDirectoryError(
                f"{self.run_dir} finished once (it holds {final.name}) but has no summary.json "
                "and no checkpoint to finish from: retraining would start again from step 0 and "
                f"overwrite it. Restore its files (e.g. `git checkout -- {self.run_dir}`), or "
                "remove the folder to retrain it from scratch"
            )

    # hooks, called by _RecorderCallback
    def on_step_start(self, step: int, driver) -> None:
        if step in self._snapshots:
            dtype = "float64" if step == self.config.n_steps else self.config.snapshot_dtype
            io.write_parameters(self.snapshot_path(step), driver.state.parameters, dtype)
        self._step_started = time.perf_counter()

    def on_compute_update_end(self, step: int, driver) -> None:
        energy = driver._loss_stats.mean
        if not np.isfinite(complex(energy)):
            raise NonFiniteError(
                f"non-finite energy {complex(energy)} at step {step}; the last good checkpoint "
                f"({self.checkpoint_path}) is kept"
            )

    def on_step_end(self, step: int, log_data: dict, driver) -> None:
        if not _tree_is_finite(driver.state.parameters):
            raise NonFiniteError(
                f"non-finite parameters after the update of step {step}; the last good "
                f"checkpoint ({self.checkpoint_path}) is kept"
            )
        stats = driver._loss_stats
        seconds = time.perf_counter() - self._step_started
        self.elapsed += seconds
        n = self.config.n_sites
        self.rows.append({
            "step": step,
            "energy": float(energy_per_site(np.real(stats.mean), n)),
            "energy_error": float(energy_per_site(stats.error_of_mean, n)),
            "variance": float(np.real(stats.variance)) / 16.0,
            "r_hat": float(stats.R_hat),
            "tau_corr": float(stats.tau_corr),
            "acceptance": float(log_data.get("acceptance", np.nan)),
            "seconds": seconds,
        })
        done = step + 1
        if done % self.config.log_every == 0 or done == self.config.n_steps or step == 0:
            self._log_progress(done)
        due = (time.monotonic() - self._last_checkpoint) >= self.config.checkpoint_seconds
        if (done % self.config.checkpoint_every == 0 or due or done == self.config.n_steps
                or self.stop_requested):
            self.checkpoint(driver, done)
        if self.stop_requested:  # at the last step too: the final energy waits for the rerun
            self.logger.info("stopped by %s after step %d; checkpoint written",
                             self.stop_requested, done)
            raise TrainingStopped(
                f"stopped by {self.stop_requested} after {done} of {self.config.n_steps} steps; "
                f"the checkpoint {self.checkpoint_path} holds them: run the same command to continue"
            )

    # checkpoints
    def checkpoint(self, driver, step: int) -> None:
        """Save the whole state after `step` completed steps; keep the previous one."""
        state = {
            "step": step,
            "elapsed": self.elapsed,
            "config": self.config.to_dict(),
            "vstate": serialization.to_state_dict(driver.state),
            "optimizer_state": serialization.to_state_dict(driver._optimizer_state),
            "history": {c: np.asarray([r[c] for r in self.rows]) for c in HISTORY_COLUMNS},
        }
        payload = serialization.msgpack_serialize(state)
        if self.checkpoint_path.exists():
            self.checkpoint_path.replace(self.previous_checkpoint_path)
        io.write_state(self.checkpoint_path, payload)
        self.write_history()
        self._last_checkpoint = time.monotonic()
        self._checkpointed_step = step

    def restore(self, driver) -> None:
        """Continue from the newest readable checkpoint, if any; report unreadable ones."""
        for path in (self.checkpoint_path, self.previous_checkpoint_path):
            if not path.exists():
                continue
            try:
                state = serialization.msgpack_restore(io.read_state(path))
            except io.CorruptFileError as error:
                self.logger.warning("skipping unreadable checkpoint: %s", error)
                continue
            restored = serialization.from_state_dict(driver.state, state["vstate"])
            driver.state.variables = restored.variables
            driver.state.sampler_state = restored.sampler_state
            driver._optimizer_state = serialization.from_state_dict(
                driver._optimizer_state, state["optimizer_state"]
            )
            driver._step_count = int(state["step"])
            self._checkpointed_step = driver.step_count
            self.elapsed = float(state["elapsed"])
            history = state["history"]
            self.rows = [
                {c: history[c][i].item() for c in HISTORY_COLUMNS}
                for i in range(len(history["step"]))
            ]
            self.logger.info("restored checkpoint %s at step %d", path, driver.step_count)
            return

    def write_history(self) -> None:
        io.write_csv(self.run_dir / "history.csv", self.history())

    def history(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(HISTORY_COLUMNS)).astype({"step": int})

    def finish(self, driver) -> None:
        """After the last step: the final parameters (float64) and a final checkpoint."""
        io.write_parameters(self.snapshot_path(self.config.n_steps), driver.state.parameters, "float64")
        if self._checkpointed_step != self.config.n_steps:
            self.checkpoint(driver, self.config.n_steps)
        self.write_history()

    def summary(self, vstate, final: dict[str, float]) -> dict[str, Any]:
        config = self.config
        history = self.history()
        timed = history["seconds"].iloc[1:] if len(history) > 1 else history["seconds"]
        seconds = history.set_index("step")["seconds"]
        trained = segments.summarize(segments.read(self.run_dir), seconds, config.n_steps)
        reference = reference_energy(config.L, config.J2)
        relative_error = (
            abs((final["energy_per_site"] - reference.value) / reference.value)
            if reference is not None else None
        )
        return {
            "summary_version": io.SUMMARY_VERSION,
            "run_id": config.run_id,
            "protocol": config.protocol,
            "L": config.L,
            "J2": config.J2,
            "attention": config.attention,
            "n_layers": config.n_layers,
            "d_model": config.d_model,
            "n_heads": config.n_heads,
            "patch_size": config.patch_size,
            "n_params": int(vstate.n_parameters),
            "n_steps": config.n_steps,
            "n_samples": config.n_samples,
            **final,
            "reference_energy": None if reference is None else reference.value,
            "reference_error": None if reference is None else reference.error,
            "reference_source": None if reference is None else reference.source,
            "relative_error": relative_error,
            "seconds_per_step": float(np.median(timed)),
            "total_seconds": self.elapsed,
            **provenance.record(),
            "training_devices": segments.describe_devices(trained),
            "training_seconds_per_step": segments.step_seconds_by_device(trained, seconds),
            "segments": trained,
            "config": config.to_dict(),
        }

    def _log_progress(self, done: int) -> None:
        row = self.rows[-1]
        recent = [r["seconds"] for r in self.rows[-self.config.log_every:]]
        per_step = float(np.median(recent))
        eta = per_step * (self.config.n_steps - done)
        self.logger.info(
            "step %d/%d  E = %.6f +- %.1e  acc %.2f  %.3f s/step  ETA %s",
            done, self.config.n_steps, row["energy"], row["energy_error"], row["acceptance"],
            per_step, _format_seconds(eta),
        )


class _RecorderCallback(AbstractCallback, mutable=True):
    """Adapter from NetKet's callback hooks to a RunRecorder."""

    recorder: Any = struct.field(pytree_node=False, serialize=False)

    def __init__(self, recorder: RunRecorder):
        self.recorder = recorder

    def on_step_start(self, step, log_data, driver):
        self.recorder.on_step_start(step, driver)

    def on_compute_update_end(self, step, log_data, driver):
        self.recorder.on_compute_update_end(step, driver)
        return False

    def on_step_end(self, step, log_data, driver):
        self.recorder.on_step_end(step, log_data, driver)


# --- helpers ------------------------------------------------------------------------------------
@contextmanager
def _stop_after_step_on(signum: signal.Signals, recorder: RunRecorder):
    """While training, signum asks the run to stop once the step under way is done and
    checkpointed (a step takes seconds; SLURM waits 30 s by default before its SIGKILL); a
    second signum ends the process at once. Outside the main thread, Python cannot handle
    signals: nothing changes there."""
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
            existing = RunConfig.from_dict(io.read_yaml(path)).science()
        except (ConfigError, io.CorruptFileError) as error:
            raise RunDirectoryError(
                f"{run_dir} holds a config.yaml that is not a valid run config (written by another "
                f"version of vitnqs?): {error}; nothing was changed"
            ) from None
        wanted = config.science()
        changed = sorted(k for k in wanted if existing.get(k) != wanted.get(k))
        if changed:
            raise RunDirectoryError(
                f"{run_dir} holds a run with a different config (keys {changed} differ); "
                "use another directory or remove it"
            )
        return
    io.write_yaml(path, config.to_dict())


@jax.jit
def _all_finite(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    return jax.numpy.all(jax.numpy.stack([jax.numpy.all(jax.numpy.isfinite(x)) for x in leaves]))


def _tree_is_finite(tree) -> bool:
    """One device reduction and one host transfer per step, whatever the number of leaves."""
    return bool(_all_finite(tree))


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


def _format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


__all__ = ["ConfigError", "NonFiniteError", "RunDirectoryError", "run", "final_energy"]
