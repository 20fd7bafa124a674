"""The freeze ablation: a trained ViT whose attention weights are fixed to their sample average.

If query-key weights no longer depend on the input after the optimization (paper Sec. 4), then
replacing each layer's alpha_ij(x) by its average over samples of the state, one fixed (H, P, P)
matrix per layer, should leave the energy unchanged. The frozen network is the same ViT with the
same parameters; only each attention module's weights are swapped, so Q and K no longer act:

    A_i = W concat_heads( sum_j alpha_bar_ij V x_j ),   alpha_bar = < alpha(x) >_samples.

How, without touching ``vitnqs.model``: ``FrozenAttentionViT`` runs the ViT under a flax method
interceptor. Where an attention module finds a matrix in the ``frozen_attention`` collection (at
its own path, e.g. ``block_0/attention/alpha``), its call becomes ``attend(alpha_bar, x)``, the
module's own value/mixing code (``_AttentionBase.attend``); everything else (embedding, encoder
blocks, output head) is the ViT's own code. Without that collection it is the plain ViT.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import numpy as np
from jax import Array

from vitnqs.analysis import Sampling, sampled_moments, stranded_chains
from vitnqs.fresh_chains import draw_from_fresh_chains
from vitnqs.model import ViT, _AttentionBase
from vitnqs.recorder import NonFiniteError
from vitnqs.train import energy_statistics
from vitnqs.trained import TrainedState

FROZEN = "frozen_attention"
"""Variable collection holding each layer's fixed attention matrix, (H, P, P), named 'alpha'."""


def _attend_frozen(next_fun, args, kwargs, context):
    module = context.module
    if (context.method_name == "__call__" and isinstance(module, _AttentionBase)
            and module.has_variable(FROZEN, "alpha")):
        alpha_HxPxP = module.get_variable(FROZEN, "alpha")
        module.sow("intermediates", "attention", alpha_HxPxP)
        return module.attend(alpha_HxPxP, *args, **kwargs)
    return next_fun(*args, **kwargs)


class FrozenAttentionViT(ViT):
    """The ViT with each attention layer's weights read from the ``frozen_attention`` collection."""

    def __call__(self, spins_BxN: Array) -> Array:
        with nn.intercept_methods(_attend_frozen):
            return super().__call__(spins_BxN)


def frozen_network(state: TrainedState, alpha_YxHxPxP) -> tuple[FrozenAttentionViT, dict]:
    """(model, variables) of the state's ViT with layer l's weights fixed to alpha_YxHxPxP[l]."""
    vit = state.model
    fields = {f.name: getattr(vit, f.name) for f in dataclasses.fields(vit)
              if f.init and f.name not in ("parent", "name")}
    alphas = np.asarray(alpha_YxHxPxP, dtype=np.dtype(state.config.dtype))
    if alphas.shape[0] != vit.n_layers:
        raise ValueError(f"need one matrix per layer ({vit.n_layers}), got {alphas.shape[0]}")
    frozen = {f"block_{layer}": {"attention": {"alpha": alpha}}
              for layer, alpha in enumerate(alphas)}
    return FrozenAttentionViT(**fields), {**state.variables, FROZEN: frozen}


def sample_average_attention(state: TrainedState, sampling: Sampling) -> np.ndarray:
    """(Y, H, P, P): each layer's weights averaged over M samples of the state."""
    moments = sampled_moments(state, sampling)["attention"]
    return np.stack([m.mean[:-1] for m in moments])  # drop the appended head average


def estimate_energy(state: TrainedState, sampling: Sampling, n_samples_energy: int,
                    model=None, variables=None) -> dict[str, float]:
    """Energy per site (J1, S = 1/2) from n_samples_energy fresh samples, with its error, drawn
    M at a time by the same chains; stranded chains (vitnqs.analysis.stranded_chains) left out
    and counted."""
    e_loc_CxT, log_prob_CxT, _ = draw_from_fresh_chains(state, sampling, n_samples_energy,
                                                        model, variables)
    stranded = stranded_chains(log_prob_CxT)
    if not np.all(np.isfinite(e_loc_CxT[~stranded])):
        raise NonFiniteError("non-finite local energies in the freeze ablation's estimate")
    return {**energy_statistics(e_loc_CxT[~stranded], state.config.n_sites),
            "n_chains_stranded": int(stranded.sum())}


def freeze_ablation(state: TrainedState, sampling: Sampling, n_samples_energy: int) -> dict:
    """Energies of the network and of its frozen copy, same sampler seed; change with error.

    The error of the change adds the two errors in quadrature, as for independent estimates; the
    shared sampler seed correlates them, typically positively, and then this overstates it.
    """
    model, variables = frozen_network(state, sample_average_attention(state, sampling))
    plain = estimate_energy(state, sampling, n_samples_energy)
    frozen = estimate_energy(state, sampling, n_samples_energy, model, variables)
    config = state.config
    return {
        "run_id": config.run_id, "attention": config.attention, "L": config.L, "J2": config.J2,
        "n_layers": config.n_layers, "step": state.step,
        "n_samples_average": sampling.n_samples, "n_samples_energy": plain["n_samples_final"],
        "energy": plain["energy_per_site"], "energy_error": plain["energy_error"],
        "energy_frozen": frozen["energy_per_site"], "energy_frozen_error": frozen["energy_error"],
        "energy_change": frozen["energy_per_site"] - plain["energy_per_site"],
        "energy_change_error": float(np.hypot(plain["energy_error"], frozen["energy_error"])),
        "energy_r_hat": plain["r_hat"], "energy_frozen_r_hat": frozen["r_hat"],
        "n_chains": sampling.n_chains, "n_chains_stranded": plain["n_chains_stranded"],
        "n_chains_stranded_frozen": frozen["n_chains_stranded"],
    }
