"""Training runs: convergence against exact diagonalization, resume after SIGKILL, bad input."""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import pandas as pd
import pytest
from train_helpers import (
    REPO,
    TINY_RUN,
    kill_training_when,
    run_outcome,
    train_in_subprocess,
    write_config,
)

from vitnqs import build_system, io, load_run
from vitnqs.config import RunConfig
from vitnqs.recorder import HISTORY_COLUMNS
from vitnqs.sr import SymmetricKernelVMC_SR  # the driver training uses
from vitnqs.train import NonFiniteError, RunDirectoryError, energy_statistics, run

CONVERGENCE_RUN = dict(
    L=4, J2=0.5, n_layers=1, d_model=24, n_heads=4, n_steps=400, n_samples=1024, n_chains=32,
    n_discard_per_chain=2, learning_rate=0.02, learning_rate_final=0.02, diag_shift=1e-3,
    n_samples_final=8192, checkpoint_every=1000, log_every=100, sr_on_the_fly=False,
    protocol="test",
)
CONVERGENCE_SEEDS = (0, 1, 2, 3)
EXACT_4X4 = -0.52862021  # ED ground state per site; the first excited singlet is -0.50869


@pytest.mark.slow
def test_run_reaches_one_percent_of_exact_energy(mechanism, tmp_path):
    """Independent optimizations (seeds) until one reaches 1% of the exact energy, at most four;
    the lowest variational energy is kept, as VMC studies do. At 4x4 and J2 = 0.5 a run can
    settle near the first excited singlet, 3.8% above, with a variance as low as the ground
    state's (about one run in three; which runs do depends on the machine's round-off)."""
    summaries = []
    for seed in CONVERGENCE_SEEDS:
        summary = run({**CONVERGENCE_RUN, "attention": mechanism, "seed": seed},
                      tmp_path / str(seed), quiet=True)
        assert summary["reference_energy"] == EXACT_4X4
        # variational: no state lies below the ground state beyond its error bar
        assert summary["energy_per_site"] > EXACT_4X4 - 5 * summary["energy_error"]
        summaries.append(summary)
        if summary["relative_error"] < 1e-2:
            break
    best = min(summaries, key=lambda summary: summary["energy_per_site"])
    assert best["relative_error"] < 1e-2, [summary["energy_per_site"] for summary in summaries]
    # the estimate carries a sensible error bar and a V-score of a good state
    assert 0 < best["energy_error"] < 2e-3
    assert best["v_score"] < 0.1


UNFRUSTRATED_RUN = dict(
    L=4, J2=0.0, n_layers=1, d_model=16, n_heads=2, n_steps=150, n_samples=512, n_chains=32,
    n_discard_per_chain=2, learning_rate=0.03, learning_rate_final=0.0, diag_shift=1e-3,
    n_samples_final=4096, checkpoint_every=1000, log_every=1000, sr_on_the_fly=False,
    protocol="test", seed=0,
)
EXACT_4X4_J0 = -0.70178020  # ED ground state per site of the 4x4 Heisenberg antiferromagnet


def test_every_mechanism_learns_the_unfrustrated_ground_state(mechanism, tmp_path):
    """The default suite's optimization check (about a minute of one core per mechanism): at
    J2 = 0 on 4x4, 150 SR steps bring each mechanism within 0.5% of the exact energy, never
    below it beyond the error bar, with a small V-score. Measured on this CPU (session 32):
    seed 0 ended at 8.0e-4 (t5), 3.2e-4 (decoupled), 1.5e-3 (factored); t5 seeds 1-3 at
    7.9e-5 to 1.9e-3. The frustrated case, to 1%, is the slow test above."""
    summary = run({**UNFRUSTRATED_RUN, "attention": mechanism}, tmp_path, quiet=True)
    assert summary["reference_energy"] == EXACT_4X4_J0
    assert summary["energy_per_site"] > EXACT_4X4_J0 - 5 * summary["energy_error"]
    assert summary["relative_error"] < 5e-3
    assert summary["v_score"] < 0.05


def test_a_committed_gpu_run_starts_on_this_cpu_as_its_history_says(tmp_path):
    """The committed results come from this code: the first two steps of a committed run
    (trained on an H100), repeated here from its config.yaml, give its recorded energies and
    acceptances (same seed, same samples: sampling, model, Hamiltonian and the first SR update
    agree across devices; the 8x8 decoupled run agreed to 7e-10 per site over six steps)."""
    committed = REPO / "results" / "runs" / "L6_J0.5_nl1_t5_s0_short"
    config = {**io.read_yaml(committed / "config.yaml"), "n_steps": 2, "n_samples_final": 64}
    run(config, tmp_path / "repeat", quiet=True)
    recorded = io.read_csv(committed / "history.csv").iloc[:2]
    repeated = io.read_csv(tmp_path / "repeat" / "history.csv")
    assert list(repeated["step"]) == [0, 1]
    np.testing.assert_allclose(repeated["energy"], recorded["energy"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(repeated["acceptance"], recorded["acceptance"], rtol=0, atol=1e-9)
    assert recorded["energy"].iloc[1] < recorded["energy"].iloc[0] - 0.02  # the SR step counted


def test_run_writes_its_outputs(uninterrupted):
    summary = json.loads((uninterrupted / "summary.json").read_text())
    for key in ("L", "J2", "attention", "n_layers", "d_model", "n_heads", "patch_size",
                "n_params", "n_steps", "n_samples", "energy_per_site", "energy_error", "v_score",
                "reference_energy", "relative_error", "seconds_per_step", "total_seconds",
                "device", "git_commit", "versions", "config", "protocol"):
        assert key in summary, key
    assert summary["config"] == RunConfig.from_dict(TINY_RUN).to_dict()
    history = pd.read_csv(uninterrupted / "history.csv")
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert list(history["step"]) == list(range(TINY_RUN["n_steps"]))
    assert np.all(np.isfinite(history["energy"]))
    snapshots = sorted(p.name for p in (uninterrupted / "snapshots").iterdir())
    assert snapshots[0] == "step_000000.msgpack" and snapshots[-1] == "step_000024.msgpack"
    assert len(snapshots) >= 8


@pytest.mark.parametrize("kill_after_step", [6, 13])
def test_sigkill_then_rerun_gives_the_uninterrupted_result(
    uninterrupted, tmp_path, kill_after_step
):
    config = write_config(tmp_path / "run.yaml")
    run_dir = tmp_path / "run"

    def ready(path):
        history = path / "history.csv"
        try:
            return len(history.read_text().splitlines()) - 1 >= kill_after_step
        except FileNotFoundError:
            return False

    assert kill_training_when(config, run_dir, ready), "the run finished before it could be killed"
    assert not (run_dir / "summary.json").exists()
    result = train_in_subprocess(config, run_dir)
    assert result.returncode == 0, result.stderr
    assert run_outcome(run_dir) == run_outcome(uninterrupted)


def _exact_energy_per_site(state, system) -> float:
    """<psi|H|psi> / <psi|psi> per site, summed over every Sz = 0 state (12870 at 4x4)."""
    configurations = system.hilbert.all_states()
    log_psi = np.asarray(state.log_psi(configurations))
    psi = np.exp(log_psi - log_psi.real.max())
    energy = np.vdot(psi, system.hamiltonian.to_sparse() @ psi).real / np.vdot(psi, psi).real
    return float(system.energy_per_site(energy))


def test_load_run_gives_back_the_trained_state(uninterrupted):
    """The parameters read back are those the run's final energy was sampled from: the exact
    energy of the loaded state (a full sum, no sampling) lies within 4 error bars of the
    summary's estimate, and far below the exact energy of the step-0 snapshot."""
    state = load_run(uninterrupted)
    assert state.step == TINY_RUN["n_steps"]
    system = build_system(TINY_RUN["L"], TINY_RUN["J2"])
    final = _exact_energy_per_site(state, system)
    summary = state.summary
    assert abs(final - summary["energy_per_site"]) < 4 * summary["energy_error"]
    initial = _exact_energy_per_site(load_run(uninterrupted, step=0), system)
    assert final < initial - 10 * summary["energy_error"]
    with pytest.raises(FileNotFoundError, match="no snapshot at step 5"):
        load_run(uninterrupted, step=5)


def test_a_finished_run_is_not_trained_again(uninterrupted):
    before = (uninterrupted / "summary.json").read_bytes()
    summary = run(TINY_RUN, uninterrupted, quiet=True)
    assert (uninterrupted / "summary.json").read_bytes() == before
    assert summary["energy_per_site"] == json.loads(before)["energy_per_site"]


def test_a_finished_run_whose_summary_was_removed_is_not_retrained_from_scratch(
    uninterrupted, tmp_path
):
    """As after `snakemake --forceall`, which deletes summary.json and history.csv before the
    job: with no checkpoint to finish from, training would restart at step 0 over the final
    snapshot. It is refused, naming the way back, and nothing in the folder changes."""
    copy = tmp_path / "run"
    shutil.copytree(uninterrupted, copy, ignore=shutil.ignore_patterns("checkpoint"))
    (copy / "summary.json").unlink()
    (copy / "history.csv").unlink()
    before = {p.name: p.read_bytes() for p in (copy / "snapshots").iterdir()}
    with pytest.raises(RunDirectoryError, match="no checkpoint to finish from.*git checkout"):
        run(TINY_RUN, copy, quiet=True)
    assert {p.name: p.read_bytes() for p in (copy / "snapshots").iterdir()} == before
    assert not (copy / "history.csv").exists() and not (copy / "summary.json").exists()


def test_a_directory_of_another_run_is_refused(uninterrupted):
    with pytest.raises(RunDirectoryError, match="seed"):
        run({**TINY_RUN, "seed": 4}, uninterrupted, quiet=True)


def test_nan_energy_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = SymmetricKernelVMC_SR.compute_loss_and_update

    def poisoned(driver):
        stats, update = original(driver)
        if driver.step_count == 9:
            stats = stats.replace(mean=jax.numpy.asarray(np.nan + 0j))
        return stats, update

    monkeypatch.setattr(SymmetricKernelVMC_SR, "compute_loss_and_update", poisoned)
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteError, match="step 9"):
        run(TINY_RUN, run_dir, quiet=True)
    assert not (run_dir / "summary.json").exists()
    history = pd.read_csv(run_dir / "history.csv")
    assert len(history) == 9 and np.all(np.isfinite(history.to_numpy()))
    from flax import serialization

    state = serialization.msgpack_restore(io.read_state(run_dir / "checkpoint" / "state.msgpack"))
    assert int(state["step"]) == 8

    monkeypatch.setattr(SymmetricKernelVMC_SR, "compute_loss_and_update", original)
    summary = run(TINY_RUN, run_dir, quiet=True)
    assert np.isfinite(summary["energy_per_site"])


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"attention": "softmax"}, "attention"),
        ({"n_samples": -5}, "n_samples"),
        ({"n_steps": "many"}, "n_steps"),
        ({"learning_rat": 0.1}, "learning_rat"),
        ({"L": 6, "patch_size": 4}, "patch_size"),
    ],
)
def test_malformed_config_fails_before_training_naming_the_key(tmp_path, change, key):
    config = write_config(tmp_path / "bad.yaml", **change)
    result = train_in_subprocess(config, tmp_path / "run")
    assert result.returncode == 2
    assert key in result.stderr
    assert not (tmp_path / "run").exists()


def test_missing_key_is_named(tmp_path):
    raw = dict(TINY_RUN)
    del raw["n_layers"]
    config = tmp_path / "bad.yaml"
    config.write_text(json.dumps(raw))
    result = train_in_subprocess(config, tmp_path / "run")
    assert result.returncode == 2 and "n_layers" in result.stderr


def test_v_score_vanishes_on_an_eigenstate_and_does_not_depend_on_the_units_of_h():
    """V = N Var(H) / E^2 of the final samples (summary.json, Table 1): every local energy of an
    eigenstate is its eigenvalue, so V = 0; NetKet's Heisenberg in Pauli matrices is 4 times the
    S = 1/2 energies, which the per-site energy divides out and V never sees."""
    n = 16
    eigenstate = energy_statistics(np.full((4, 50), 4 * n * EXACT_4X4), n)
    assert eigenstate["v_score"] == pytest.approx(0, abs=1e-25)  # rounding of the mean alone
    assert eigenstate["variance"] == pytest.approx(0, abs=1e-25)
    assert eigenstate["energy_per_site"] == pytest.approx(EXACT_4X4)
    e_loc = 4 * n * EXACT_4X4 + np.random.default_rng(0).normal(scale=2.0, size=(8, 500))
    noisy = energy_statistics(e_loc, n)
    assert noisy["v_score"] == pytest.approx(n * e_loc.var() / e_loc.mean() ** 2, rel=1e-3)
    # Pauli matrices are twice the S = 1/2 operators on each of a bond's two spins: energies / 4,
    # variances / 4**2 (units of J1^2)
    assert noisy["variance"] == pytest.approx(e_loc.var() / 4**2, rel=1e-3)
    assert energy_statistics(e_loc / 4, n)["v_score"] == pytest.approx(noisy["v_score"])
