"""The SR step read from the kernel's eigensystem (vitnqs.sr_spectrum) is the step training
takes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from train_helpers import TINY_RUN

from vitnqs import cli, io
from vitnqs.analysis import Sampling
from vitnqs.config import RunConfig
from vitnqs.sr import symmetric_kernel_update
from vitnqs.sr_spectrum import kernel_eigensystem, sr_spectrum, step_at_shifts
from vitnqs.system import build_system
from vitnqs.train import build_variational_state
from vitnqs.trained import available_snapshots

SHIFTS = (1e-4, 1e-3, 1e-2, 1e-1)


def _dense_solve(A, b):
    return jnp.linalg.solve(A, b)


@pytest.fixture(scope="module")
def tiny_state():
    config = RunConfig.from_dict({**TINY_RUN, "n_samples": 128, "n_chains": 16})
    system = build_system(config.L, config.J2)
    vstate = build_variational_state(config, system)
    vstate.sample()
    return vstate, system.hamiltonian


def test_the_eigensystem_gives_the_solved_update_and_its_energy_descent(tiny_state):
    """|dtheta| from the eigenvalues equals the norm of the update vitnqs.sr solves for at that
    shift, and g . dtheta equals NetKet's energy gradient (same samples) dotted into it."""
    vstate, hamiltonian = tiny_state
    w, c, _ = kernel_eigensystem(vstate, hamiltonian)
    rows = step_at_shifts(w, c, SHIFTS)
    samples = jax.lax.collapse(vstate.samples, 0, vstate.samples.ndim - 1)
    local_energies = vstate.local_estimators(hamiltonian).data
    _, gradient = vstate.expect_and_grad(hamiltonian)
    gradient = ravel_pytree(gradient)[0]
    for row in rows:
        update, _ = symmetric_kernel_update(
            vstate._apply_fun, local_energies, vstate.parameters, vstate.model_state, samples,
            diag_shift=row["shift"], solver_fn=_dense_solve, mode="complex", chunk_size=None)
        update = ravel_pytree(update)[0]
        np.testing.assert_allclose(row["step_norm"], np.linalg.norm(update), rtol=1e-8)
        np.testing.assert_allclose(row["descent"], float(jnp.real(gradient @ update)), rtol=1e-8)


def test_a_larger_shift_takes_a_shorter_step_with_less_from_small_eigenvalues(tiny_state):
    vstate, hamiltonian = tiny_state
    w, c, _ = kernel_eigensystem(vstate, hamiltonian)
    assert len(w) == 2 * 128  # complex mode: [Re; Im] rows per sample
    rows = step_at_shifts(w, c, SHIFTS)
    norms = [row["step_norm"] for row in rows]
    below = [row["eigen_below_shift"] for row in rows]
    assert np.all(np.diff(norms) < 0) and np.all(np.diff(below) >= 0)
    assert all(0.0 <= row["small_share"] <= 1.0 and row["descent"] > 0 for row in rows)
    # a shift far below every eigenvalue leaves the step that of the unshifted kernel
    positive = w > 1e-8 * w.max()
    plain = np.sqrt(np.sum(c[positive] ** 2 / w[positive]))
    (tiny,) = step_at_shifts(w[positive], c[positive], [1e-12 * w[positive].min()])
    np.testing.assert_allclose(tiny["step_norm"], plain, rtol=1e-6)


def test_sr_spectrum_reads_every_snapshot_of_a_run(uninterrupted):
    sampling = Sampling(n_samples=64, n_chains=16, n_discard_per_chain=5, seed=1, chunk_size=64)
    frame = sr_spectrum(uninterrupted, sampling, shifts=(1e-3, 1e-2))  # steps: every snapshot
    snapshots = available_snapshots(uninterrupted)
    assert snapshots == [0, 1, 2, 3, 4, 6, 8, 12, 17, 24]  # TINY_RUN's snapshot steps and the end
    assert list(frame["step"]) == [step for step in snapshots for _ in (1e-3, 1e-2)]
    assert (frame["kernel_rows"] == 128).all()
    by_step = frame.groupby("step")["energy"].first()
    assert by_step[24] < by_step[0]  # the 24 steps of training lowered the energy
    assert frame["energy"].between(-0.6, 0.3).all()  # per site, J1 units, S = 1/2


def test_the_command_writes_the_rows_and_their_provenance(uninterrupted, tmp_path, capsys):
    out = tmp_path / "spectrum.csv"
    args = ["sr-spectrum", str(uninterrupted), "--out", str(out), "--shifts", "1e-2"]
    assert cli.main([*args, "--steps", "0", "99"]) == 2  # no snapshot at 99: nothing sampled
    assert "no snapshots at steps [99]" in capsys.readouterr().err and not out.exists()
    assert cli.main([*args, "--steps", "0"]) == 0
    frame = io.read_csv(out)
    assert list(frame["step"]) == [0] and list(frame["shift"]) == [1e-2]
    record = io.read_json(tmp_path / "spectrum.provenance.json")
    assert record["settings"]["shifts"] == [1e-2] and record["git_commit"]
