"""What one run writes while it trains (history, snapshots, checkpoints, progress lines, the
summary), and the layout of a run directory.

Run directory layout (all writes atomic; see ``vitnqs.io``):
    config.yaml                 the validated run config (written by ``vitnqs.train``)
    history.csv                 one row per step (written at each checkpoint and at the end)
    snapshots/step_XXXXXX.msgpack  parameters at the start of the step (final one in float64)
    summary.json                final energy, timings, provenance; written last
    train.log                   progress lines
    checkpoint/state.msgpack    full state every k steps (the previous one kept as
                                state.prev.msgpack)
    checkpoint/final_energy.msgpack  the final energy's local-energy batches so far, the device
                                that drew each and the sampler state after the last of them
                                (removed with the summary)
    segments.csv                where and with which code each stretch of steps ran (written by
                                ``vitnqs.train`` through ``vitnqs.segments``)

A ``RunRecorder`` is hooked into NetKet's driver through ``callback()``: it snapshots parameters
at the configured steps, stops the run with ``NonFiniteError`` at the first non-finite energy or
parameter (nothing non-finite is written), checkpoints every ``checkpoint_every`` steps or
``checkpoint_seconds``, and after a stop request (``stop_requested``, set by a signal handler)
checkpoints the step just done and raises ``TrainingStopped``. The final energy after the
last step is recorded batch by batch (``restore_final_energy``, ``final_energy_batch_done``): a
stopped or killed estimate continues where it was, to the same numbers.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
from flax import serialization
from netket.callbacks import AbstractCallback
from netket.utils import struct

from vitnqs import io, provenance, segments
from vitnqs.config import RunConfig
from vitnqs.reference import reference_energy
from vitnqs.system import energy_per_site, variance_spin_half
from vitnqs.tables import format_duration

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
        self.final_energy_devices: list[str] = []  # the device that drew each final-energy batch
        self._newest_checkpoint_readable = True  # False after restore() skipped a damaged one
        self.git_commit = provenance.git_commit()
        """The code that runs: the tree as this process started (a checkout that moves on during
        training does not change it); the summary and this process's segment name it."""

    # paths
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint" / "state.msgpack"

    @property
    def previous_checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint" / "state.prev.msgpack"

    @property
    def final_energy_path(self) -> Path:
        return self.run_dir / "checkpoint" / "final_energy.msgpack"

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
                f"non-finite energy {complex(energy)} at step {step}; "
                f"{self._what_a_rerun_continues()}"
            )

    def on_step_end(self, step: int, log_data: dict, driver) -> None:
        if not _tree_is_finite(driver.state.parameters):
            raise NonFiniteError(
                f"non-finite parameters after the update of step {step}; "
                f"{self._what_a_rerun_continues()}"
            )
        stats = driver._loss_stats
        seconds = time.perf_counter() - self._step_started
        self.elapsed += seconds
        n = self.config.n_sites
        self.rows.append({
            "step": step,
            "energy": float(energy_per_site(np.real(stats.mean), n)),
            "energy_error": float(energy_per_site(stats.error_of_mean, n)),
            "variance": float(variance_spin_half(np.real(stats.variance))),
            "r_hat": float(stats.R_hat),
            "tau_corr": float(stats.tau_corr),
            "acceptance": float(log_data.get("acceptance", np.nan)),
            "seconds": seconds,
        })
        done = step + 1
        if done % self.config.log_every == 0 or done == self.config.n_steps or step == 0:
            self._log_progress(done)
        due = (time.monotonic() - self._last_checkpoint) >= self.config.checkpoint_seconds
        stop = self.stop_requested  # read once: a signal between two reads would skip the write
        if done % self.config.checkpoint_every == 0 or due or done == self.config.n_steps or stop:
            self.checkpoint(driver, done)
        if stop:  # at the last step too: the final energy waits for the rerun
            self.logger.info("stopped by %s after step %d; checkpoint written", stop, done)
            raise TrainingStopped(
                f"stopped by {stop} after {done} of {self.config.n_steps} steps; "
                f"the checkpoint {self.checkpoint_path} holds them: "
                "run the same command to continue"
            )

    # checkpoints
    def _what_a_rerun_continues(self) -> str:
        """For a stop message: the checkpoint the same command would continue from, if any."""
        if self.checkpoint_path.exists():
            return f"the last good checkpoint ({self.checkpoint_path}) is kept"
        return "no checkpoint was written yet: the same command starts again from step 0"

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
        if self.checkpoint_path.exists() and self._newest_checkpoint_readable:
            self.checkpoint_path.replace(self.previous_checkpoint_path)
        # else the newest file is the damaged one restore() skipped: the previous one, from
        # which this run continued, stays until a readable checkpoint has replaced the damaged
        io.write_state(self.checkpoint_path, payload)
        self._newest_checkpoint_readable = True
        self.write_history()
        self._last_checkpoint = time.monotonic()
        self._checkpointed_step = step

    def restore(self, driver) -> None:
        """Continue from the newest readable checkpoint, if any; report unreadable ones. When
        checkpoints exist and none can be read, stop (RunDirectoryError) instead of training
        from step 0 over the run's history and snapshots."""
        damaged = []
        for path in (self.checkpoint_path, self.previous_checkpoint_path):
            if not path.exists():
                continue
            try:
                state = serialization.msgpack_restore(io.read_state(path))
            except io.CorruptFileError as error:
                self.logger.warning("skipping unreadable checkpoint: %s", error)
                damaged.append(path)
                continue
            self._newest_checkpoint_readable = path == self.checkpoint_path
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
        if damaged:
            raise RunDirectoryError(
                f"{self.run_dir}: no checkpoint can be read ({', '.join(p.name for p in damaged)} "
                "damaged), and training again would start from step 0 over the run's history and "
                "snapshots; nothing was changed. Restore checkpoint/ (e.g. from git or a backup), "
                "or remove it to retrain the run from step 0"
            )

    # the final energy, batch by batch
    def restore_final_energy(self, vstate, n_batches: int) -> list[np.ndarray]:
        """The local-energy batches of an interrupted final estimate, with vstate's sampler put
        back where they left it; none where there is no usable record."""
        path = self.final_energy_path
        if not path.exists():
            return []
        try:
            state = serialization.msgpack_restore(io.read_state(path))
        except io.CorruptFileError as error:
            self.logger.warning("starting the final energy over: %s", error)
            return []
        recorded = state.get("parameters_sha256")  # records before session 32 have none
        if recorded is not None and recorded != _parameters_sha256(vstate.parameters):
            self.logger.warning("starting the final energy over: %s was drawn from other "
                                "parameters (the final checkpoint was retrained)", path)
            return []
        batches = list(np.asarray(state["e_loc"]))
        shape = (vstate.sampler.n_chains, self.config.n_samples // vstate.sampler.n_chains)
        if not 0 < len(batches) <= n_batches or batches[0].shape != shape:
            self.logger.warning("starting the final energy over: %s holds %d batches of %s, "
                                "not 1 to %d of %s", path, len(batches),
                                batches[0].shape if batches else "-", n_batches, shape)
            return []
        vstate.sampler_state = serialization.from_state_dict(vstate.sampler_state,
                                                             state["sampler_state"])
        devices = str(state.get("devices", "")).splitlines()  # a record of 05989ae has none
        self.final_energy_devices = (devices if len(devices) == len(batches)
                                     else ["unrecorded"] * len(batches))
        self.logger.info("final energy: resuming after batch %d of %d", len(batches), n_batches)
        return batches

    def final_energy_batch_done(self, vstate, batches: list[np.ndarray], n_batches: int) -> None:
        """Record the batches so far with the device that drew each (this process drew the
        ones not yet recorded) and the sampler state after the last; then, if a stop was asked
        for, raise TrainingStopped."""
        new = len(batches) - len(self.final_energy_devices)
        self.final_energy_devices += [provenance.device_name()] * new
        state = {"sampler_state": serialization.to_state_dict(vstate.sampler_state),
                 "e_loc": np.stack(batches),
                 "devices": "\n".join(self.final_energy_devices),
                 "parameters_sha256": _parameters_sha256(vstate.parameters)}
        io.write_state(self.final_energy_path, serialization.msgpack_serialize(state))
        if self.stop_requested:
            done = len(batches)
            self.logger.info("stopped by %s after batch %d of %d of the final energy",
                             self.stop_requested, done, n_batches)
            raise TrainingStopped(
                f"stopped by {self.stop_requested} after {done} of {n_batches} batches of the "
                f"final energy; {self.final_energy_path} holds them: "
                "run the same command to continue"
            )

    def forget_final_energy(self) -> None:
        """Once the summary holds the final energy, its batches are no longer needed."""
        self.final_energy_path.unlink(missing_ok=True)

    def write_history(self) -> None:
        io.write_csv(self.run_dir / "history.csv", self.history())

    def history(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(HISTORY_COLUMNS)).astype({"step": int})

    def finish(self, driver) -> None:
        """After the last step: the final parameters (float64) and a final checkpoint."""
        io.write_parameters(self.snapshot_path(self.config.n_steps), driver.state.parameters,
                            "float64")
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
            "git_commit": self.git_commit,
            "training_devices": segments.describe_devices(trained),
            "training_seconds_per_step": segments.step_seconds_by_device(trained, seconds),
            "final_energy_devices": describe_batch_devices(self.final_energy_devices),
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
            per_step, format_duration(eta),
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


@jax.jit
def _all_finite(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    return jax.numpy.all(jax.numpy.stack([jax.numpy.all(jax.numpy.isfinite(x)) for x in leaves]))


def _tree_is_finite(tree) -> bool:
    """One device reduction and one host transfer per step, whatever the number of leaves."""
    return bool(_all_finite(tree))


def describe_batch_devices(devices: list[str]) -> str:
    """Which device drew which batches of the final energy: the one device, or the runs of
    consecutive batches, e.g. 'cpu (x86_64) x1 (batches 1-34); NVIDIA H200 x1 (batches 35-100)'.
    Empty for no batches."""
    if len(set(devices)) == 1:
        return devices[0]
    spans, first = [], 1  # (device, first, last), batches counted from 1
    for device, run in itertools.groupby(devices):
        last = first + len(list(run)) - 1
        spans.append(f"{device} (batch {first})" if first == last
                     else f"{device} (batches {first}-{last})")
        first = last + 1
    return "; ".join(spans)


def _parameters_sha256(parameters) -> str:
    """Fingerprint of a parameter pytree: a final-energy record belongs to these parameters."""
    return hashlib.sha256(
        serialization.msgpack_serialize(serialization.to_state_dict(parameters))).hexdigest()
