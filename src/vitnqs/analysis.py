"""Attention maps and how much they depend on the input (paper Fig. 4 and Sec. 4).

The paper claims that the query-key attention weights alpha_ij become input independent during
the optimization, but compares maps only by eye. This module puts a number on it.

Tensor names carry their shapes; the letters are those of ``vitnqs.model`` plus
    S  samples drawn from a state              I  fixed inputs (``fixed_inputs``)
    G  heads followed by their average (H + 1) Y  layers (encoder blocks n_l)
    T  snapshots (optimization steps)

Terms: every mechanism records its weights alpha_ij as ``attention``; decoupled also records its
two parts, ``softmax`` (input dependent) and ``positional`` (not).

Input-dependence index, one number per layer and per head (and for the head-averaged map):

    index = mean_ij std_s alpha_ij(s) / mean_ij mean_s |alpha_ij(s)|

over the M samples s drawn from the state (std: population standard deviation). It is the
typical spread of a weight over inputs relative to its typical size; it is exactly 0 when the
weights do not depend on the input (factored attention; t5 or decoupled with Q = K = 0), because
deviations are taken from the first sample (``WeightMoments``), so identical weights give zero
deviations, not rounding noise.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from vitnqs.trained import TrainedState, available_snapshots, load_run

INPUT_SEED = 2405
"""Seed (numpy default_rng) of the fixed inputs of the maps; any fixed value would do."""
N_INPUTS = 3
"""Number of fixed random inputs whose maps are drawn (paper Fig. 4a)."""
TERMS = ("attention", "softmax", "positional")
"""Recorded weight terms, in the order they are reported."""


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How a state is sampled for averages and energies (workflow config key ``analysis``)."""

    n_samples: int = 6000
    """Samples M per average (the paper's M = 6000)."""
    n_chains: int | None = 600
    """Markov chains; None: one chain per sample."""
    n_discard_per_chain: int = 20
    """Sweeps discarded per chain before sampling: fresh chains start from random Sz = 0 states."""
    seed: int = 0
    """Seed of the sampler (chains and proposals)."""
    chunk_size: int = 1000
    """Configurations per forward pass when recording weights."""


# --- pure array functions ------------------------------------------------------------------------
def fixed_inputs(L: int, n_inputs: int = N_INPUTS, seed: int = INPUT_SEED) -> np.ndarray:
    """(I, N) random +-1 configurations with total Sz = 0, the same on every machine."""
    rng = np.random.default_rng(seed)
    half = np.repeat([1.0, -1.0], L * L // 2)
    return np.stack([rng.permutation(half) for _ in range(n_inputs)])


def with_head_average(alpha_xHxPxP: np.ndarray) -> np.ndarray:
    """Append the head-averaged map as one more head: (..., H, P, P) -> (..., H + 1, P, P)."""
    average = alpha_xHxPxP.mean(axis=-3, keepdims=True)
    return np.concatenate([alpha_xHxPxP, average], axis=-3)


class WeightMoments:
    """Per-element mean, standard deviation and mean |.| of weights over samples, in chunks.

    Deviations are taken from the first sample seen (the shifted-data algorithm): this is exact
    for weights identical across samples (std exactly 0) and accurate when they barely vary.
    """

    def __init__(self):
        self.count = 0
        self.shift = self.sum = self.sum_sq = self.sum_abs = None

    def add(self, alpha_SxGxPxP: np.ndarray) -> None:
        alpha = np.asarray(alpha_SxGxPxP, dtype=np.float64)
        if self.shift is None:
            self.shift = alpha[0].copy()
            self.sum = np.zeros_like(self.shift)
            self.sum_sq = np.zeros_like(self.shift)
            self.sum_abs = np.zeros_like(self.shift)
        deviation = alpha - self.shift
        self.count += alpha.shape[0]
        self.sum += deviation.sum(axis=0)
        self.sum_sq += (deviation**2).sum(axis=0)
        self.sum_abs += np.abs(alpha).sum(axis=0)

    @property
    def mean(self) -> np.ndarray:
        return self.shift + self.sum / self.count

    @property
    def std(self) -> np.ndarray:
        variance = self.sum_sq / self.count - (self.sum / self.count) ** 2
        return np.sqrt(np.maximum(variance, 0.0))

    @property
    def mean_abs(self) -> np.ndarray:
        return self.sum_abs / self.count

    @property
    def index(self) -> np.ndarray:
        """The input-dependence index of each head, (G,)."""
        return self.std.mean(axis=(-2, -1)) / self.mean_abs.mean(axis=(-2, -1))


def input_dependence_index(alpha_SxHxPxP: np.ndarray) -> np.ndarray:
    """Index per head for weights of S inputs, (H,); (H, P, P) weights (no input axis) give 0."""
    alpha = np.asarray(alpha_SxHxPxP)
    moments = WeightMoments()
    moments.add(alpha[None] if alpha.ndim == 3 else alpha)
    return moments.index


# --- weights of a network -------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _recorder(model):
    def record(variables, spins_BxN):
        return model.apply(variables, spins_BxN, mutable=["intermediates"])[1]

    return jax.jit(record)


def attention_weights(model, variables, spins_BxN) -> dict[str, list[np.ndarray]]:
    """term -> per-layer weights, (B, H, P, P), or (H, P, P) where they ignore the input."""
    sown = _recorder(model)(variables, jnp.asarray(spins_BxN))["intermediates"]
    blocks = sorted((k for k in sown if k.startswith("block_")), key=lambda k: int(k[6:]))
    recorded = sown[blocks[0]]["attention"]
    return {
        term: [np.asarray(sown[block]["attention"][term][0]) for block in blocks]
        for term in TERMS if term in recorded
    }


def _batched(alpha: np.ndarray, batch: int) -> np.ndarray:
    return np.broadcast_to(alpha, (batch, *alpha.shape)) if alpha.ndim == 3 else alpha


def weight_moments(model, variables, spins_SxN: np.ndarray, chunk_size: int = 1000):
    """term -> per-layer WeightMoments (heads and their average) over the given configurations."""
    moments: dict[str, list[WeightMoments]] = {}
    for start in range(0, len(spins_SxN), chunk_size):
        chunk = spins_SxN[start:start + chunk_size]
        for term, layers in attention_weights(model, variables, chunk).items():
            per_layer = moments.setdefault(term, [WeightMoments() for _ in layers])
            for accumulator, alpha in zip(per_layer, layers):
                accumulator.add(with_head_average(_batched(alpha, len(chunk))))
    return moments


# --- sampling a trained state ------------------------------------------------------------------
def build_sampling_state(state: TrainedState, sampling: Sampling, model=None, variables=None):
    """An MCState of the run's sampler and `sampling`; optionally another network on it.

    The sampler seed depends only on `sampling`, so two networks sampled through this function
    see identical random numbers (and identical samples when their |psi| agree).
    """
    if model is not None or variables is not None:
        state = dataclasses.replace(
            state, model=state.model if model is None else model,
            variables=state.variables if variables is None else variables,
        )
    return state.variational_state(
        n_samples=sampling.n_samples, seed=sampling.seed, n_chains=sampling.n_chains,
        n_discard_per_chain=sampling.n_discard_per_chain,
        chunk_size=sampling.chunk_size,  # the run's own chunk need not divide the analysis's M
    )


LOG_PROB_GAP = 20.0
"""A fresh chain whose mean log|psi|^2 lies this far below the median chain's is stranded."""


def stranded_chains(log_prob_CxT: np.ndarray, gap: float = LOG_PROB_GAP) -> np.ndarray:
    """(C,) True for chains whose mean log|psi|^2 is more than `gap` below the median chain's.

    Fresh chains start from random Sz = 0 states. One can settle on a local maximum of |psi|^2
    that the exchange moves cannot leave and that weighs e^-gap or less per configuration against
    the typical ones: its samples are not samples of |psi|^2 (10x10 decoupled `reduced-damped`:
    15 of 600 chains in ferromagnetic domains, ~30 below, local energies near +0.5 per site where
    the rest give -0.4925; vitnqs.fresh_chains, results/benchmarks/notes.md, session 28).
    """
    chain_mean = log_prob_CxT.mean(axis=1)
    return chain_mean < np.median(chain_mean) - gap


def log_probabilities(vstate, samples_CxTxN: np.ndarray) -> np.ndarray:
    """(C, T) log|psi|^2 of the state's network at configurations (C, T, N)."""
    log_psi = vstate.log_value(samples_CxTxN.reshape(-1, samples_CxTxN.shape[-1]))
    return 2 * np.real(np.asarray(log_psi)).reshape(samples_CxTxN.shape[:2])


def draw_samples(state: TrainedState, sampling: Sampling) -> np.ndarray:
    """(S, N) configurations drawn from |psi|^2 of the state: M from fresh chains, less the
    samples of stranded chains (S = M where none is)."""
    vstate = build_sampling_state(state, sampling)
    samples_CxTxN = np.asarray(vstate.samples)
    kept = ~stranded_chains(log_probabilities(vstate, samples_CxTxN))
    return samples_CxTxN[kept].reshape(-1, state.config.n_sites)


def sampled_moments(state: TrainedState, sampling: Sampling):
    """term -> per-layer WeightMoments over M samples of the state."""
    samples_SxN = draw_samples(state, sampling)
    return weight_moments(state.model, state.variables, samples_SxN, sampling.chunk_size)


# --- results of one run --------------------------------------------------------------------------
def snapshot_maps(state: TrainedState, sampling: Sampling) -> dict[str, np.ndarray]:
    """Maps of one snapshot, per recorded term: {term}_inputs (Y, I, G, P, P) on the fixed
    inputs, {term}_average (Y, G, P, P) over M samples, {term}_index (Y, G)."""
    inputs_IxN = fixed_inputs(state.config.L)
    per_input = attention_weights(state.model, state.variables, inputs_IxN)
    moments = sampled_moments(state, sampling)
    maps = {}
    for term in per_input:
        maps[f"{term}_inputs"] = np.stack(
            [with_head_average(_batched(alpha, len(inputs_IxN))) for alpha in per_input[term]]
        )
        maps[f"{term}_average"] = np.stack([m.mean for m in moments[term]])
        maps[f"{term}_index"] = np.stack([m.index for m in moments[term]])
    return maps


def run_attention_maps(run_dir: Path | str, sampling: Sampling) -> dict[str, np.ndarray]:
    """Maps at initialization and after the optimization, stacked on a leading T = 2 axis.

    Keys: steps (T,), inputs (I, N), and for each recorded term {term}_inputs (T, Y, I, G, P, P),
    {term}_average (T, Y, G, P, P), {term}_index (T, Y, G). G = H + 1: the last head is the
    head average. Averages use sampling.n_samples samples of each snapshot's own state.
    """
    final = load_run(run_dir)
    states = [load_run(run_dir, step=0), final]
    per_step = [snapshot_maps(state, sampling) for state in states]
    maps = {key: np.stack([m[key] for m in per_step]) for key in per_step[0]}
    maps["steps"] = np.array([state.step for state in states])
    maps["inputs"] = fixed_inputs(final.config.L)
    maps["run_id"] = np.array(final.config.run_id)
    maps["attention_mechanism"] = np.array(final.config.attention)
    maps["n_samples"] = np.array(sampling.n_samples)
    return maps


def head_labels(n_heads: int) -> list[str]:
    """Names of the G = H + 1 heads in tables: '0', ..., 'H-1', then 'mean' (head-averaged map)."""
    return [str(h) for h in range(n_heads)] + ["mean"]


def index_rows(state: TrainedState, moments) -> list[dict]:
    """Rows (run, step, term, layer, head, index) of one snapshot."""
    config = state.config
    labels = head_labels(config.n_heads)
    return [
        {"run_id": config.run_id, "attention": config.attention, "L": config.L, "J2": config.J2,
         "n_layers": config.n_layers, "step": state.step, "term": term, "layer": layer,
         "head": labels[g], "index": float(index)}
        for term, per_layer in moments.items()
        for layer, accumulator in enumerate(per_layer)
        for g, index in enumerate(accumulator.index)
    ]


def input_dependence(run_dir: Path | str, sampling: Sampling, steps=None) -> pd.DataFrame:
    """The index at every saved snapshot (or at `steps`), M samples of each snapshot's state."""
    steps = available_snapshots(run_dir) if steps is None else steps
    rows = []
    for step in steps:
        state = load_run(run_dir, step=step)
        rows += index_rows(state, sampled_moments(state, sampling))
    return pd.DataFrame(rows)
