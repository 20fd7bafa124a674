"""Faults: SIGKILL at random moments, non-finite local energies, corrupted state files and cached
results, results of another layout version."""

from __future__ import annotations

import os
import random
import re
import runpy
import shutil
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import netket as nk
import numpy as np
import pandas as pd
import pytest
from flax import serialization
from snakemake.iocontainers import Namedlist
from train_helpers import (
    MOMENTS,
    REPO,
    TINY_RUN,
    WRITES,
    kill_training_at,
    poisoned_local_estimators,
    run_outcome,
    train_in_subprocess,
    train_with_fault,
    tree_state,
    write_config,
    write_yaml,
)

from vitnqs import cli, io, load_run
from vitnqs.config import ConfigError, RunConfig
from vitnqs.sr import SymmetricKernelVMC_SR  # the driver training uses
from vitnqs.tables import summary_frame
from vitnqs.train import NonFiniteError, run

TINY = RunConfig.from_dict(TINY_RUN)
RUN_ID = TINY.run_id
CHECKPOINTS = TINY.n_steps // TINY.checkpoint_every
FINAL_BATCHES = TINY.n_samples_final // TINY.n_samples  # the final energy's batches of M samples
FINAL_RECORD = "checkpoint/final_energy.msgpack"


def _corrupt(path, keep_fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_unreadable_state_file_is_reported_with_its_path(tmp_path, damage):
    path = tmp_path / "state.msgpack"
    io.write_state(path, b"payload" * 1000)
    if damage == "truncate":
        _corrupt(path)
    else:
        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF
        path.write_bytes(bytes(data))
    with pytest.raises(io.CorruptFileError, match=str(path)):
        io.read_state(path)


def test_written_files_get_the_permissions_open_would_give_them(tmp_path):
    """Atomic writes go through a private temporary file (mode 0600); the result must not stay
    private, or collaborators on a shared cluster could not read the run."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    io.write_json(tmp_path / "summary.json", {"energy_per_site": -0.5})
    io.write_state(tmp_path / "state.msgpack", b"payload")
    for name in ("summary.json", "state.msgpack"):
        assert (tmp_path / name).stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_corrupted_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    """Stop a run at step 12 (checkpoints at 8 and 12), damage the newest, resume: same result."""
    reference = run(TINY_RUN, tmp_path / "reference", quiet=True)
    partial = tmp_path / "partial"
    with pytest.raises(RuntimeError):
        _train_until(partial, stop_at=12)
    checkpoint = partial / "checkpoint" / "state.msgpack"
    previous = partial / "checkpoint" / "state.prev.msgpack"
    assert checkpoint.exists() and previous.exists()
    _corrupt(checkpoint)
    with pytest.raises(RuntimeError):  # resumed from step 8, killed after the checkpoint of 12
        _train_until(partial, stop_at=13)
    # the damaged file was replaced, not kept as the previous checkpoint (a kill during the
    # first new write would otherwise have left no readable checkpoint)
    assert io.read_state(checkpoint) and io.read_state(previous)
    resumed = run(TINY_RUN, partial, quiet=True)
    assert "skipping unreadable checkpoint" in (partial / "train.log").read_text()
    assert str(checkpoint) in (partial / "train.log").read_text()
    assert "restored checkpoint" in (partial / "train.log").read_text()
    assert resumed["energy_per_site"] == reference["energy_per_site"]
    assert io.read_state(partial / "snapshots" / "step_000024.msgpack") == io.read_state(
        tmp_path / "reference" / "snapshots" / "step_000024.msgpack")


def test_no_readable_checkpoint_stops_instead_of_restarting_from_step_zero(tmp_path):
    """Both checkpoints damaged: the run refuses to train over its history and snapshots from
    step 0, says so, and leaves the folder as it was."""
    from vitnqs.recorder import RunDirectoryError

    partial = tmp_path / "partial"
    with pytest.raises(RuntimeError):
        _train_until(partial, stop_at=12)
    for name in ("state.msgpack", "state.prev.msgpack"):
        _corrupt(partial / "checkpoint" / name)
    before = tree_state(partial)
    with pytest.raises(RunDirectoryError, match="no checkpoint can be read"):
        run(TINY_RUN, partial, quiet=True)
    after = tree_state(partial)
    after.pop("train.log"), before.pop("train.log")  # the log says what was skipped
    assert after == before


def _train_until(run_dir, stop_at):
    """Run TINY_RUN and raise once `stop_at` steps are checkpointed, as a kill would."""
    original = SymmetricKernelVMC_SR.compute_loss_and_update

    def stop(driver):
        if driver.step_count == stop_at:
            raise RuntimeError("simulated kill")
        return original(driver)

    SymmetricKernelVMC_SR.compute_loss_and_update = stop
    try:
        run(TINY_RUN, run_dir, quiet=True)
    finally:
        SymmetricKernelVMC_SR.compute_loss_and_update = original


# --- SIGKILL at random moments --------------------------------------------------------------------
_RANDOM = random.Random(8)  # issue 8: random moments, the same ones in every test session
KILLS = [
    ("step", _RANDOM.randint(1, TINY.n_steps - 1)),
    ("update", _RANDOM.randint(0, TINY.n_steps - 1)),
    ("checkpoint-half", _RANDOM.randint(1, CHECKPOINTS)),
    ("checkpoint-unrenamed", _RANDOM.randint(1, CHECKPOINTS)),
    ("snapshot-half", _RANDOM.randint(1, len(TINY.snapshots))),
    ("history-unrenamed", _RANDOM.randint(1, CHECKPOINTS + 1)),  # + the write after the last step
    ("summary-half", 1),
    ("final_energy-half", _RANDOM.randint(1, FINAL_BATCHES)),
]
"""(moment, count) of each kill: train_helpers.MOMENTS says where the process stops."""


@pytest.mark.parametrize(("moment", "count"), KILLS, ids=[f"{m}-{c}" for m, c in KILLS])
def test_sigkill_at_a_random_moment_then_rerun_gives_the_uninterrupted_result(
    uninterrupted, tmp_path, moment, count
):
    config = write_config(tmp_path / "run.yaml")
    run_dir = tmp_path / "run"
    assert kill_training_at(config, run_dir, moment, count), f"never came {MOMENTS[moment]}"
    assert not (run_dir / "summary.json").exists()
    temporaries = sorted(run_dir.rglob(f".*{io.TEMPORARY_SUFFIX}"))
    if moment in ("step", "update"):
        assert temporaries == []
    else:  # killed inside write_atomic: its temporary file is left, named after its target
        write = moment.rsplit("-", 1)[0]
        assert [p.name.startswith(f".{WRITES[write]}") for p in temporaries] == [True]
    _assert_every_file_is_whole(run_dir)

    run(TINY_RUN, run_dir, quiet=True)  # the rerun (in this process: compiled once for all)
    assert run_outcome(run_dir) == run_outcome(uninterrupted)
    assert list(run_dir.rglob(f".*{io.TEMPORARY_SUFFIX}")) == []
    if temporaries:
        assert f"removed {temporaries[0]}" in (run_dir / "train.log").read_text()


def _assert_every_file_is_whole(run_dir):
    """Each file of the run reads back as a whole file: the old version or the new one."""
    readers = {".msgpack": io.read_state, ".csv": io.read_csv, ".json": io.read_json,
               ".yaml": io.read_yaml}
    for path in run_dir.rglob("*"):
        if path.suffix in readers and not path.name.startswith("."):
            readers[path.suffix](path)


# --- non-finite local energies --------------------------------------------------------------------
@pytest.mark.parametrize(("call", "value", "message"), [
    (10, np.nan, "at step 9"),
    (1, np.inf, "at step 0"),
    (TINY.n_steps + 2, np.nan, "final energy estimate"),
], ids=["nan-step-9", "inf-step-0", "nan-final-estimate"])
def test_non_finite_local_energy_stops_the_run_and_reaches_no_output(
    uninterrupted, tmp_path, monkeypatch, call, value, message
):
    monkeypatch.setattr(nk.vqs.MCState, "local_estimators",
                        poisoned_local_estimators(nk.vqs.MCState.local_estimators, call, value))
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=message) as stop:
        run(TINY_RUN, run_dir, quiet=True)
    assert f"stopped: {stop.value}" in (run_dir / "train.log").read_text()  # the run's record
    if call <= TINY.n_steps:  # the message says what the same command continues from
        kept = (run_dir / "checkpoint" / "state.msgpack").exists()
        assert ("last good checkpoint" in str(stop.value)) == kept
        assert ("starts again from step 0" in str(stop.value)) == (not kept)
    assert not (run_dir / "summary.json").exists()
    history = io.read_csv(run_dir / "history.csv")
    assert len(history) == min(call - 1, TINY.n_steps)
    assert np.isfinite(history.to_numpy(dtype=float)).all()
    if call > TINY.n_steps:  # the final energy's good batches are recorded, the bad one is not
        record = serialization.msgpack_restore(io.read_state(run_dir / FINAL_RECORD))
        assert record["e_loc"].shape[0] == call - TINY.n_steps - 1
        assert np.isfinite(record["e_loc"]).all()
    states = [io.read_parameters(p) for p in (run_dir / "snapshots").glob("step_*.msgpack")]
    if (run_dir / "checkpoint" / "state.msgpack").exists():
        states.append(serialization.msgpack_restore(
            io.read_state(run_dir / "checkpoint" / "state.msgpack")))
    leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(states)]
    assert all(np.isfinite(leaf).all() for leaf in leaves if leaf.dtype.kind in "fc")

    monkeypatch.undo()  # the fault is gone: the same call resumes (from its checkpoint or, with
    run(TINY_RUN, run_dir, quiet=True)  # none, from step 0, as the message says) and finishes
    assert run_outcome(run_dir) == run_outcome(uninterrupted)


def test_non_finite_local_energy_stops_the_command_line_with_a_message(tmp_path):
    config = write_config(tmp_path / "run.yaml")
    result = train_with_fault(config, tmp_path / "run", "nan-local-energy", 10)
    assert result.returncode == 1
    assert "non-finite energy" in result.stderr and "at step 9" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "summary.json").exists()


# --- SIGTERM: the step under way ends, checkpointed ---------------------------------------------
@pytest.mark.parametrize("step", [9, TINY.n_steps - 1], ids=["step-9", "last-step"])
def test_sigterm_stops_after_the_step_under_way_and_loses_no_step(uninterrupted, tmp_path, step):
    """As at a SLURM time limit or `timeout`: SIGTERM during step 9 (checkpoints every 4 steps)
    lets step 9 finish, checkpoints the 10 completed steps and exits with status 143. During
    the last step, the final energy is left to the rerun."""
    config, run_dir = write_config(tmp_path / "run.yaml"), tmp_path / "run"
    result = train_with_fault(config, run_dir, "sigterm", step)
    done = step + 1
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert f"stopped by SIGTERM after {done} of {TINY.n_steps} steps" in result.stderr
    assert "run the same command to continue" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (run_dir / "summary.json").exists()
    checkpoint = serialization.msgpack_restore(
        io.read_state(run_dir / "checkpoint" / "state.msgpack")
    )
    assert checkpoint["step"] == done
    assert list(io.read_csv(run_dir / "history.csv")["step"]) == list(range(done))

    handler = signal.getsignal(signal.SIGTERM)
    run(TINY_RUN, run_dir, quiet=True)  # the rerun continues from there
    assert signal.getsignal(signal.SIGTERM) is handler  # training gave the handler back
    log = (run_dir / "train.log").read_text()
    assert f"stopped by SIGTERM after step {done}" in log and f"at step {done}" in log
    assert run_outcome(run_dir) == run_outcome(uninterrupted)
    # the summary names both processes' steps (none when only the final energy was left)
    summary = io.read_json(run_dir / "summary.json")
    spans = [(s["first_step"], s["last_step"]) for s in summary["segments"]]
    assert spans == [(0, step)] + ([(done, TINY.n_steps - 1)] if done < TINY.n_steps else [])
    assert {s["source"] for s in summary["segments"]} == {"recorded"}
    assert summary["training_devices"] == summary["device"]


def test_until_step_pauses_at_that_step_and_the_rerun_ends_as_uninterrupted(uninterrupted,
                                                                           tmp_path):
    """`vitnqs train --until-step 10` stops after exactly 10 steps with their checkpoint and
    exit status 0; the same command again does nothing; without it the run continues to the
    uninterrupted run's every bit (the schedule is that of n_steps, not of the pause)."""
    config, run_dir = write_config(tmp_path / "run.yaml"), tmp_path / "run"
    for _ in range(2):
        result = train_in_subprocess(config, run_dir, "--until-step", "10")
        assert result.returncode == 0, result.stderr
        assert "paused: --until-step 10 reached" in result.stderr
        assert list(io.read_csv(run_dir / "history.csv")["step"]) == list(range(10))
        checkpoint = serialization.msgpack_restore(
            io.read_state(run_dir / "checkpoint" / "state.msgpack"))
        assert checkpoint["step"] == 10
        assert not (run_dir / "summary.json").exists()
    run(TINY_RUN, run_dir, quiet=True)
    assert run_outcome(run_dir) == run_outcome(uninterrupted)


@pytest.mark.parametrize("step", [0, TINY.n_steps + 1])
def test_until_step_outside_the_run_is_refused_before_training(tmp_path, step):
    with pytest.raises(ConfigError, match=r"until_step must be in \[1, n_steps=24\]"):
        run(TINY_RUN, tmp_path / "run", quiet=True, until_step=step)
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_a_second_sigterm_ends_the_process_at_once(uninterrupted, tmp_path):
    config, run_dir = write_config(tmp_path / "run.yaml"), tmp_path / "run"
    result = train_with_fault(config, run_dir, "sigterm-twice", 9)
    assert result.returncode == -signal.SIGTERM, result.stderr
    checkpoint = serialization.msgpack_restore(
        io.read_state(run_dir / "checkpoint" / "state.msgpack")
    )
    assert checkpoint["step"] == 8  # the last regular checkpoint, before step 9 could finish
    run(TINY_RUN, run_dir, quiet=True)
    assert run_outcome(run_dir) == run_outcome(uninterrupted)


# --- the final energy: drawn in batches of M samples, each recorded -------------------------------
def _stopped_in_final_batch(tmp_path, batch):
    """A run sent SIGTERM while it draws batch `batch` of its final energy (VMC_SR calls
    local_estimators once a step; the final energy's batches come after the last step)."""
    config, run_dir = write_config(tmp_path / "run.yaml"), tmp_path / "run"
    result = train_with_fault(config, run_dir, "sigterm-local-energy", TINY.n_steps + batch)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    return result, run_dir


@pytest.mark.parametrize("batch", [1, FINAL_BATCHES - 1])
def test_sigterm_in_the_final_energy_keeps_its_batches_and_the_rerun_continues_them(
    uninterrupted, tmp_path, batch
):
    """The batch under way ends and is recorded with the sampler state after it; the rerun
    draws only the batches left, from there: the summary's numbers are the uninterrupted
    run's to the last bit (drawing the first batches again would not give them)."""
    result, run_dir = _stopped_in_final_batch(tmp_path, batch)
    assert (f"stopped by SIGTERM after {batch} of {FINAL_BATCHES} batches of the final energy"
            in result.stderr)
    assert "run the same command to continue" in result.stderr and "Traceback" not in result.stderr
    assert not (run_dir / "summary.json").exists()
    record = serialization.msgpack_restore(io.read_state(run_dir / FINAL_RECORD))
    assert record["e_loc"].shape == (batch, TINY.n_chains, TINY.n_samples // TINY.n_chains)

    run(TINY_RUN, run_dir, quiet=True)
    log = (run_dir / "train.log").read_text()
    assert f"final energy: resuming after batch {batch} of {FINAL_BATCHES}" in log
    assert run_outcome(run_dir) == run_outcome(uninterrupted)
    assert not (run_dir / FINAL_RECORD).exists()  # the summary holds it now


@pytest.mark.parametrize("recorded", ["another device", None], ids=["devices", "no-devices"])
def test_a_final_energy_continued_on_another_device_names_both_in_the_summary(
    uninterrupted, tmp_path, recorded
):
    """The record names the device of each batch; a rerun elsewhere adds its own, and the
    summary says which batches ran where (a record written before devices were kept:
    'unrecorded'). Here the first two of four batches are relabelled as drawn elsewhere."""
    _, run_dir = _stopped_in_final_batch(tmp_path, 2)
    path = run_dir / FINAL_RECORD
    record = serialization.msgpack_restore(io.read_state(path))
    here = io.read_json(uninterrupted / "summary.json")["device"]
    assert record["devices"].splitlines() == [here, here]
    if recorded is None:
        del record["devices"]
    else:
        record["devices"] = f"{recorded}\n{recorded}"
    io.write_state(path, serialization.msgpack_serialize(record))

    run(TINY_RUN, run_dir, quiet=True)
    summary = io.read_json(run_dir / "summary.json")
    earlier = recorded or "unrecorded"
    assert summary["final_energy_devices"] == (
        f"{earlier} (batches 1-2); {here} (batches 3-{FINAL_BATCHES})")
    assert io.read_json(uninterrupted / "summary.json")["final_energy_devices"] == here
    assert run_outcome(run_dir) == run_outcome(uninterrupted)  # the numbers do not change


def test_sigterm_between_the_last_step_and_the_final_energy_waits_for_the_first_batch(
    uninterrupted, tmp_path
):
    """SIGTERM while the last step's checkpoint is written (after training, before the final
    energy) is not the default action: the run stops after the first batch, recorded, and the
    rerun ends with the uninterrupted run's numbers."""
    config, run_dir = write_config(tmp_path / "run.yaml"), tmp_path / "run"
    result = train_with_fault(config, run_dir, "sigterm-finish", 0)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert (f"stopped by SIGTERM after 1 of {FINAL_BATCHES} batches of the final energy"
            in result.stderr)
    run(TINY_RUN, run_dir, quiet=True)
    assert run_outcome(run_dir) == run_outcome(uninterrupted)


def test_an_unreadable_final_energy_record_is_reported_and_the_estimate_starts_over(
    uninterrupted, tmp_path
):
    _, run_dir = _stopped_in_final_batch(tmp_path, 2)
    _corrupt(run_dir / FINAL_RECORD)
    run(TINY_RUN, run_dir, quiet=True)
    log = (run_dir / "train.log").read_text()
    assert "starting the final energy over" in log and "resuming after batch" not in log
    # from the step-24 checkpoint's sampler state, as the uninterrupted run drew it
    assert run_outcome(run_dir) == run_outcome(uninterrupted)


def test_a_final_energy_record_of_other_parameters_is_not_resumed(uninterrupted, tmp_path):
    """The record names the parameters its batches were drawn from; batches of other parameters
    (a final checkpoint that fell back and was retrained, on a GPU not bit for bit) are
    dropped and the estimate starts over, never mixing two states."""
    _, run_dir = _stopped_in_final_batch(tmp_path, 2)
    path = run_dir / FINAL_RECORD
    record = serialization.msgpack_restore(io.read_state(path))
    assert len(record["parameters_sha256"]) == 64
    record["parameters_sha256"] = "0" * 64
    io.write_state(path, serialization.msgpack_serialize(record))
    run(TINY_RUN, run_dir, quiet=True)
    log = (run_dir / "train.log").read_text()
    assert "drawn from other parameters" in log and "resuming after batch" not in log
    assert run_outcome(run_dir) == run_outcome(uninterrupted)


# --- corrupted cached results, read by the workflow's scripts -------------------------------------
SAMPLING = {"n_samples": 16, "n_chains": 4, "n_discard_per_chain": 1, "seed": 0, "chunk_size": 16}
RUN = f"runs/{RUN_ID}"
ANALYSIS = "analysis/{}/" + RUN_ID


def _provenance(path: str) -> str:
    return path.removesuffix(".npz") + ".provenance.json"


def _script_io(script: str, results: Path) -> dict:
    """The snakemake object's input, output and params of a script, for the run RUN_ID."""
    summary, history = str(results / RUN / "summary.json"), str(results / RUN / "history.csv")
    maps = ANALYSIS.format("attention_maps") + ".npz"
    table = {
        "table1.py": ({"summaries": [summary]},
                      {f: f"tables/table1.{f}" for f in ("csv", "md", "tex")}, {}),
        "fig2.py": ({"summaries": [summary], "histories": [history]},
                    {f: f"figures/fig2.{f}" for f in ("png", "pdf")}, {}),
        "table_input_dependence.py": (
            {"frames": [str(results / ANALYSIS.format("input_dependence")) + ".csv"]},
            {"csv": "analysis/table_input_dependence.csv"}, {}),
        "table_freeze_ablation.py": (
            {"ablations": [str(results / ANALYSIS.format("freeze_ablation")) + ".json"],
             "summaries": [summary]},
            {"csv": "analysis/table_freeze_ablation.csv"}, {}),
        "fig4.py": ({"t5": str(results / maps)},
                    {f: f"figures/fig4.{f}" for f in ("png", "pdf")}, {}),
        "attention_maps.py": ({"summary": summary},
                              {"npz": maps, "provenance": _provenance(maps)},
                              {"sampling": SAMPLING}),
        "input_dependence.py": ({"summary": summary},
                                {"csv": ANALYSIS.format("input_dependence") + ".csv",
                                 "provenance": _provenance(ANALYSIS.format("input_dependence"))},
                                {"sampling": SAMPLING}),
        "freeze_ablation.py": ({"summary": summary},
                               {"json": ANALYSIS.format("freeze_ablation") + ".json",
                                "provenance": _provenance(ANALYSIS.format("freeze_ablation"))},
                               {"sampling": SAMPLING, "n_samples_energy": 32}),
    }[script]
    inputs, outputs, params = table
    return {"input": inputs, "output": {k: str(results / v) for k, v in outputs.items()},
            "params": params}


def run_script(script: str, results: Path, log: Path) -> None:
    """Run workflow/scripts/{script} in this process as Snakemake would, on the tree `results`."""
    fields = _script_io(script, results)
    snakemake = SimpleNamespace(**{k: Namedlist(fromdict=v) for k, v in fields.items()},
                                log=Namedlist([str(log)]), resources=Namedlist(fromdict={"gpu": 1}))
    stdout, stderr = sys.stdout, sys.stderr
    try:
        runpy.run_path(str(REPO / "workflow" / "scripts" / script),
                       init_globals={"snakemake": snakemake})
    finally:
        if sys.stdout is not stdout:  # the analysis scripts send their output to the log
            sys.stdout.close()
        sys.stdout, sys.stderr = stdout, stderr


@pytest.fixture(scope="module")
def results_tree(uninterrupted, tmp_path_factory) -> Path:
    """A results tree: the finished tiny run, an analysis file of each kind, and the outputs of
    every script (placeholders: a script that fails must leave them as they are)."""
    results = tmp_path_factory.mktemp("results-template") / "results"
    shutil.copytree(uninterrupted, results / RUN, ignore=shutil.ignore_patterns("checkpoint"))
    rows = [{"run_id": RUN_ID, "attention": "t5", "L": 4, "J2": 0.5, "n_layers": 1, "step": step,
             "term": "attention", "layer": 0, "head": head, "index": 0.1 + step / 100}
            for step in (0, TINY.n_steps) for head in ("0", "1", "mean")]
    io.write_csv(results / (ANALYSIS.format("input_dependence") + ".csv"), pd.DataFrame(rows))
    io.write_json(results / (ANALYSIS.format("freeze_ablation") + ".json"),
                  {"run_id": RUN_ID, "energy": -0.5, "energy_error": 1e-3, "energy_frozen": -0.49})
    io.write_npz(results / (ANALYSIS.format("attention_maps") + ".npz"),
                 {"attention_average": np.random.default_rng(0).random((2, 1, 3, 4, 4)),
                  "steps": np.array([0, TINY.n_steps])})
    for script in ("table1.py", "fig2.py", "table_input_dependence.py", "table_freeze_ablation.py",
                   "fig4.py"):
        for output in _script_io(script, results)["output"].values():
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            Path(output).write_text(f"previous output of {script}\n")
    return results


def _truncate(data: bytes) -> bytes:
    cut = len(data) // 2
    return data[: cut - 1] if data[cut - 1:cut] == b"\n" else data[:cut]


def _garble(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + b"\xff\xfe" * 8 + data[middle + 16:]


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


def _nan_energy(data: bytes) -> bytes:
    lines = data.decode().splitlines(keepends=True)
    cells = lines[5].split(",")
    cells[1] = "nan"  # the energy of step 4
    lines[5] = ",".join(cells)
    return "".join(lines).encode()


DAMAGE = {"truncate": _truncate, "garble": _garble, "flip": _flip, "nan-energy": _nan_energy}

CACHED = [  # (the script that reads the file, the file under results/, the damage)
    ("table1.py", f"{RUN}/summary.json", "truncate"),
    ("table1.py", f"{RUN}/summary.json", "garble"),
    ("fig2.py", f"{RUN}/history.csv", "truncate"),
    ("fig2.py", f"{RUN}/history.csv", "nan-energy"),
    ("table_input_dependence.py", ANALYSIS.format("input_dependence") + ".csv", "truncate"),
    ("table_input_dependence.py", ANALYSIS.format("input_dependence") + ".csv", "garble"),
    ("table_freeze_ablation.py", ANALYSIS.format("freeze_ablation") + ".json", "truncate"),
    ("fig4.py", ANALYSIS.format("attention_maps") + ".npz", "flip"),
    ("fig4.py", ANALYSIS.format("attention_maps") + ".npz", "truncate"),
    ("attention_maps.py", f"{RUN}/snapshots/step_000000.msgpack", "truncate"),
    ("input_dependence.py", f"{RUN}/snapshots/step_000000.msgpack", "flip"),
    ("freeze_ablation.py", f"{RUN}/snapshots/step_{TINY.n_steps:06d}.msgpack", "flip"),
    ("freeze_ablation.py", f"{RUN}/config.yaml", "garble"),
]


@pytest.mark.parametrize(("script", "name", "damage"), CACHED,
                         ids=[f"{Path(n).name}-{d}-{s}" for s, n, d in CACHED])
def test_corrupted_cached_result_is_reported_with_its_path_and_nothing_is_written(
    results_tree, tmp_path, script, name, damage
):
    results = tmp_path / "results"
    shutil.copytree(results_tree, results)
    path = results / name
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    before = tree_state(results)
    with pytest.raises((io.CorruptFileError, ConfigError), match=re.escape(str(path))):
        run_script(script, results, tmp_path / "script.log")
    assert tree_state(results) == before


def test_the_cached_results_read_back_undamaged(results_tree):
    """The control of the test above: each file it damages reads back as it was written."""
    readers = {".json": io.read_json, ".npz": io.read_npz, ".msgpack": io.read_state,
               ".yaml": io.read_yaml}
    for name in {name for _, name, _ in CACHED}:
        path = results_tree / name
        if path.suffix == ".csv":
            io.read_csv(path, required=("step",))
        else:
            readers[path.suffix](path)
    assert load_run(results_tree / RUN).step == TINY.n_steps


# --- results of another version of vitnqs ---------------------------------------------------------
def test_summary_of_another_layout_version_gets_a_clear_message():
    old = {"run_id": "L6_J0.5_nl4_t5_s0", "summary_version": 0}
    with pytest.raises(ValueError, match="L6_J0.5_nl4_t5_s0.*summary_version 0.*version 1"):
        summary_frame([old])
    with pytest.raises(ValueError, match="summary_version None"):
        summary_frame([{"run_id": "x"}])


@pytest.mark.parametrize(("change", "message"), [
    ({"energy_per_site": None}, r"lacks the field\(s\) \['energy_per_site'\]"),
    ({"protocol": None, "device": None}, r"lacks the field\(s\) \['protocol', 'device'\]"),
    ({"energy_per_site": float("nan")}, "energy_per_site=nan, not a finite number"),
    ({"energy_error": float("inf")}, "energy_error=inf, not a finite number"),
], ids=["no-energy", "no-protocol-device", "nan-energy", "inf-error"])
def test_summary_with_a_missing_field_or_a_non_finite_energy_gets_a_clear_message(
    results_tree, tmp_path, change, message
):
    """Through table1.py, as `snakemake` runs it: a ValueError naming the run, no table written."""
    results = tmp_path / "results"
    shutil.copytree(results_tree, results)
    summary_path = results / RUN / "summary.json"
    summary = io.read_json(summary_path)
    for key, value in change.items():
        if value is None:
            del summary[key]
        else:
            summary[key] = value
    io.write_json(summary_path, summary)
    before = tree_state(results)
    with pytest.raises(ValueError, match=f"run '{RUN_ID}'.*{message}"):
        run_script("table1.py", results, tmp_path / "table1.log")
    assert tree_state(results) == before


def test_run_directory_of_another_version_gets_a_message_not_a_traceback(
    results_tree, tmp_path, capsys, monkeypatch
):
    """A config.yaml with a key this version does not know: `vitnqs train` and load_run name the
    file and the key, and change nothing."""
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # cli.main appends to it
    run_dir = tmp_path / "run"
    shutil.copytree(results_tree / RUN, run_dir)
    old = {**io.read_yaml(run_dir / "config.yaml"), "n_encoder_blocks": 1}
    io.write_yaml(run_dir / "config.yaml", old)
    before = tree_state(run_dir)
    assert cli.main(["train", write_yaml(tmp_path / "run.yaml", TINY_RUN), str(run_dir),
                     "--quiet"]) == 1
    error = capsys.readouterr().err
    assert str(run_dir) in error and "n_encoder_blocks" in error and "Traceback" not in error
    with pytest.raises(ConfigError, match=re.escape(str(run_dir / "config.yaml"))):
        load_run(run_dir)
    assert tree_state(run_dir) == before
