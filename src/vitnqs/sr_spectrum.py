"""The SR kernel of a state, and the step it gives at several diagonal shifts.

Stochastic reconfiguration in its kernel (minSR) form steps by
    dtheta(lambda) = O^T (K + lambda I)^{-1} dv,   K = O O^T,
with O the centred Jacobian over sqrt(M) and dv = 2 (E_loc - <E_loc>) / sqrt(M), both stacked
[Re; Im] per sample in complex mode (vitnqs.sr). With K = U diag(w) U^T and c = U^T dv, one
eigendecomposition gives the step at every shift:
    |dtheta(lambda)|^2 = sum_k w_k c_k^2 / (w_k + lambda)^2
    g . dtheta(lambda) = sum_k w_k c_k^2 / (w_k + lambda),     g = O^T dv = grad <H>,
the second being the first-order decrease of the energy per unit learning rate. Directions with
w_k << lambda are damped away; those with w_k >> lambda step by c_k / sqrt(w_k) whatever lambda.

``sr_spectrum`` measures this at each saved snapshot of a run from fresh samples of its state:
how many kernel eigenvalues lie below each shift, how long the step is, how much of it comes
from those small eigenvalues, and the first-order energy decrease it buys. Energies per site are
in units of J1 with S = 1/2 operators (the Hamiltonian's units / 4N).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vitnqs.analysis import Sampling, build_sampling_state
from vitnqs.trained import available_snapshots, load_run, read_run_config

DEFAULT_SHIFTS = (1e-3, 1e-2)
"""The diagonal shifts of the `reduced` and `reduced-damped` protocols."""


def kernel_eigensystem(vstate, hamiltonian) -> tuple[np.ndarray, np.ndarray, float]:
    """(w, c, energy): the eigenvalues of K (ascending, clipped at 0), the components of dv in
    its eigenbasis, and the mean local energy (Hamiltonian units), all from vstate's samples."""
    import jax
    import jax.numpy as jnp
    import netket as nk

    from vitnqs.sr import centred_jacobian, kernel_operands, symmetric_gram

    samples = jax.lax.collapse(vstate.samples, 0, vstate.samples.ndim - 1)
    local_energies = vstate.local_estimators(hamiltonian)
    mode = nk.jax.jacobian_default_mode(vstate._apply_fun, vstate.parameters,
                                        vstate.model_state, samples, warn=False)
    jacobian = centred_jacobian(vstate._apply_fun, vstate.parameters, vstate.model_state,
                                samples, mode=mode, chunk_size=vstate.chunk_size)
    O, dv = kernel_operands(jacobian, local_energies.data, mode)
    w, U = jnp.linalg.eigh(symmetric_gram(O))
    c = U.T @ dv
    energy = float(np.real(np.mean(np.asarray(local_energies.data))))
    return np.clip(np.asarray(w), 0.0, None), np.asarray(c), energy


def step_at_shifts(w: np.ndarray, c: np.ndarray, shifts) -> list[dict]:
    """Per shift: the fraction of eigenvalues below it, |dtheta|, the share of |dtheta|^2 from
    eigenvalues below it, and g . dtheta (first-order energy decrease per unit learning rate)."""
    w, c2 = np.asarray(w, dtype=float), np.asarray(c, dtype=float) ** 2
    rows = []
    for shift in shifts:
        norm2_k = w * c2 / (w + shift) ** 2
        small = w < shift
        rows.append({
            "shift": float(shift),
            "eigen_below_shift": float(np.mean(small)),
            "step_norm": float(np.sqrt(norm2_k.sum())),
            "small_share": float(norm2_k[small].sum() / norm2_k.sum()),
            "descent": float(np.sum(w * c2 / (w + shift))),
        })
    return rows


def sr_spectrum(run_dir: Path | str, sampling: Sampling, shifts=DEFAULT_SHIFTS,
                steps=None) -> pd.DataFrame:
    """One row per snapshot and shift: the step the SR update would take from fresh samples of
    that snapshot's state (M = sampling.n_samples), and the kernel's scale."""
    from vitnqs.system import build_system, energy_per_site

    steps = available_snapshots(run_dir) if steps is None else steps
    config = read_run_config(run_dir)
    hamiltonian = build_system(config.L, config.J2).hamiltonian
    rows = []
    for step in steps:
        vstate = build_sampling_state(load_run(run_dir, step=step), sampling)
        w, c, energy = kernel_eigensystem(vstate, hamiltonian)
        common = {
            "run_id": config.run_id, "attention": config.attention, "L": config.L,
            "protocol": config.protocol, "diag_shift": config.diag_shift_at(step), "step": step,
            "n_samples": sampling.n_samples,
            "energy": float(energy_per_site(energy, config.n_sites)),
            "kernel_rows": len(w), "eigen_max": float(w[-1]), "eigen_median": float(np.median(w)),
        }
        for row in step_at_shifts(w, c, shifts):
            rows.append({**common, **row,
                         "descent_per_site": float(energy_per_site(row["descent"],
                                                                   config.n_sites))})
    return pd.DataFrame(rows)


def probe_sampling(config) -> Sampling:
    """Fresh samples as the run drew them in training: its M and chains, 20 discarded sweeps."""
    return Sampling(n_samples=config.n_samples, n_chains=config.chains, n_discard_per_chain=20,
                    seed=0, chunk_size=config.n_samples)


def write_sr_spectrum(run_dir: Path | str, out: Path | str, shifts=DEFAULT_SHIFTS,
                      steps=None) -> None:
    """sr_spectrum of a run with probe_sampling -> CSV `out`, its provenance record beside it.
    A missing run folder or snapshot raises FileNotFoundError before any sampling."""
    import dataclasses

    from vitnqs import io, provenance
    from vitnqs.analysis_jobs import provenance_path

    config = read_run_config(run_dir)
    available = available_snapshots(run_dir)
    missing = sorted(set(steps or []) - set(available))
    if missing:
        raise FileNotFoundError(f"{run_dir} has no snapshots at steps {missing}; available: "
                                f"{available}")
    sampling = probe_sampling(config)
    with provenance.recorded(provenance_path(out), run=str(run_dir), shifts=list(shifts),
                             sampling=dataclasses.asdict(sampling)):
        io.write_csv(out, sr_spectrum(run_dir, sampling, shifts, steps))
