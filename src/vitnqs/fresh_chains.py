"""Fresh sampling chains of a trained state, chain by chain: which are stranded, and on what.

The analyses sample a trained state from fresh chains and leave out the stranded ones
(vitnqs.analysis.stranded_chains says what they are and how they were found).
`draw_from_fresh_chains` draws local energies, log|psi|^2 and configurations chain by chain;
`chain_census` describes every chain so that the choice can be checked: its mean local energy,
log|psi|^2, the Ising (diagonal) part of its local energy and the fraction of parallel nearest
neighbours.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from vitnqs.analysis import Sampling, build_sampling_state, log_probabilities, stranded_chains
from vitnqs.system import J1J2System, build_system, energy_per_site
from vitnqs.train import plan_step
from vitnqs.trained import TrainedState


def draw_from_fresh_chains(state: TrainedState, sampling: Sampling, n_samples: int,
                           model=None, variables=None):
    """Local energies, log|psi|^2 and configurations of n_samples (rounded up to whole batches of
    M = sampling.n_samples) drawn by the same fresh chains, batch after batch: arrays (C, T),
    (C, T) and (C, T, N), local energies as NetKet's Heisenberg gives them (Pauli matrices).
    Optionally of another network on the state's sampler (vitnqs.analysis.build_sampling_state).
    """
    config = state.config.replace(n_samples=sampling.n_samples, n_chains=sampling.n_chains,
                                  chunk_size=sampling.chunk_size)
    vstate = build_sampling_state(state, sampling, model, variables)
    hamiltonian, _ = plan_step(config, build_system(config.L, config.J2), vstate)
    e_loc, log_prob, spins = [], [], []
    for _ in range(max(1, math.ceil(n_samples / sampling.n_samples))):
        vstate.reset()
        e_loc.append(np.asarray(vstate.local_estimators(hamiltonian).data))
        samples_CxTxN = np.asarray(vstate.samples)
        log_prob.append(log_probabilities(vstate, samples_CxTxN))
        spins.append(samples_CxTxN)
    return (np.concatenate(e_loc, axis=1), np.concatenate(log_prob, axis=1),
            np.concatenate(spins, axis=1))


def _bond_ends(system: J1J2System, color: int) -> tuple[np.ndarray, np.ndarray]:
    """Site indices (i, j) of the J1 (color 0) or J2 (color 1) bonds."""
    return tuple(np.asarray(system.graph.edges(filter_color=color)).T)


def ising_energy_per_site(system: J1J2System, spins_xN: np.ndarray) -> np.ndarray:
    """The diagonal part of the J1-J2 energy per site (J1, S = 1/2) of +-1 configurations:
    (sum over J1 bonds of s_i s_j + J2 sum over J2 bonds) / 4N; Neel and stripe states give
    -1/2 + J2/2 and -J2/2, the ferromagnet 1/2 + J2/2."""
    spins_xN = np.asarray(spins_xN, dtype=float)
    total = 0.0
    for color, coupling in ((0, 1.0), (1, system.J2)):
        i, j = _bond_ends(system, color)
        total = total + coupling * (spins_xN[..., i] * spins_xN[..., j]).sum(axis=-1)
    return total / (4 * system.n_sites)


def parallel_fraction(system: J1J2System, spins_xN: np.ndarray) -> np.ndarray:
    """Fraction of nearest-neighbour pairs with parallel spins (1/2 for random configurations,
    0 for the Neel state)."""
    i, j = _bond_ends(system, 0)
    return (np.asarray(spins_xN)[..., i] == np.asarray(spins_xN)[..., j]).mean(axis=-1)


def chain_census(state: TrainedState, sampling: Sampling, n_samples: int,
                 model=None, variables=None) -> pd.DataFrame:
    """One row per fresh chain after drawing n_samples: means over its samples of the local
    energy per site, of log|psi|^2 minus the median chain's, of the Ising part of the local
    energy, of the parallel nearest-neighbour fraction; and whether it is stranded. Optionally of
    another network on the state's sampler (the freeze ablation's frozen copy)."""
    config = state.config
    system = build_system(config.L, config.J2)
    e_loc_CxT, log_prob_CxT, spins_CxTxN = draw_from_fresh_chains(state, sampling, n_samples,
                                                                    model, variables)
    chain_log_prob = log_prob_CxT.mean(axis=1)
    return pd.DataFrame({
        "run_id": config.run_id, "step": state.step, "chain": np.arange(len(e_loc_CxT)),
        "n_samples": e_loc_CxT.shape[1],
        "energy": energy_per_site(np.real(e_loc_CxT).mean(axis=1), config.n_sites),
        "log_prob": chain_log_prob - np.median(chain_log_prob),
        "ising_energy": ising_energy_per_site(system, spins_CxTxN).mean(axis=1),
        "parallel_fraction": parallel_fraction(system, spins_CxTxN).mean(axis=1),
        "stranded": stranded_chains(log_prob_CxT),
    })


def write_chain_census(run_dir: Path | str, out: Path | str, sampling: dict,
                       n_samples: int, frozen: bool = False) -> None:
    """chain_census of a finished run's final state -> CSV `out`, provenance record beside it;
    with `frozen`, of its copy with attention frozen to the sample mean (frozen_attention)."""
    from vitnqs import io, provenance
    from vitnqs.analysis_jobs import provenance_path
    from vitnqs.frozen_attention import frozen_network, sample_average_attention
    from vitnqs.trained import load_run

    with provenance.recorded(provenance_path(out), run=str(run_dir), sampling=sampling,
                             n_samples=n_samples, frozen=frozen):
        state, settings = load_run(run_dir), Sampling(**sampling)
        network = (frozen_network(state, sample_average_attention(state, settings)) if frozen
                   else (None, None))
        io.write_csv(out, chain_census(state, settings, n_samples, *network))
