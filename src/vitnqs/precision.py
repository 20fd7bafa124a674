"""Float32 network passes for sampling and local energies, float64 for everything else.

A VMC step runs the network three ways: once per Metropolis proposal (sampling), once per
connected configuration (local energies), and through its Jacobian (the SR update). The first
two only need log-amplitude differences of order one, so ``MixedPrecisionMCState`` runs them
with a float32 copy of the network, while the parameters, the Jacobian, the M x M kernel and
its solve stay float64. It uses NetKet's own hooks: an MCState samples through
``_sampler_model``/``_sampler_variables``, and the local-energy kernel of ``BondExchange`` is
chosen by dispatch on the state's type.

Cost of the approximation: log psi in float32 carries a relative error of ~1e-7, so each
amplitude ratio psi(s')/psi(s) is off by ~1e-7 |log psi| and the Metropolis acceptance by as
much; vitnqs.benchmark measures the energy of one state both ways.

Every matrix product of the float32 network runs at 'highest' precision (``float32_model``).
At JAX's default precision a GPU multiplies float32 matrices on tensor cores in TF32 (10-bit
mantissa): measured on an H200 at trained states, the energy of the same samples then moved by
9e-5 (10x10) and 1.8e-4 (6x6) relative to float64, against 6e-8 with full float32 products.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import netket as nk
from flax import serialization
from netket.utils import HashablePartial
from netket.vqs.mc.mc_state.state import deserialize_MCState, serialize_MCState

from vitnqs.exchange import BondExchange, local_energy_kernel


def to_float32(tree):
    """Floating leaves to float32 (complex to complex64); integers untouched."""

    def cast(x):
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.complexfloating):
            return x.astype(jnp.complex64)
        if jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(jnp.float32)
        return x

    return jax.tree_util.tree_map(cast, tree)


_to_float32_jit = jax.jit(to_float32)
"""One dispatch per sampling call instead of one per parameter leaf."""


def _apply_float32(apply32, variables, x):
    """log psi from the float32 network, returned in complex128 like the float64 one."""
    return apply32(to_float32(variables), x).astype(jnp.complex128)


def float32_model(model):
    """A float32 copy of a flax model whose matrix products all run in full float32: the same
    fields and parameter tree, its __call__ traced under ``default_matmul_precision('highest')``."""
    base = type(model)

    class FullFloat32(base):
        def __call__(self, *args, **kwargs):
            with jax.default_matmul_precision("highest"):
                return super().__call__(*args, **kwargs)

    FullFloat32.__name__ = FullFloat32.__qualname__ = f"FullFloat32{base.__name__}"
    fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)
              if f.init and f.name not in ("parent", "name")}
    return FullFloat32(**{**fields, "param_dtype": jnp.float32})


class MixedPrecisionMCState(nk.vqs.MCState):
    """An MCState whose sampling and local energies use ``forward_model`` (float32 copy of the
    model, the same parameter tree); its parameters and gradients stay float64."""

    def __init__(self, *args, forward_model, **kwargs):
        self._forward_model = forward_model
        super().__init__(*args, **kwargs)

    @property
    def _sampler_model(self):
        return self._forward_model

    @property
    def _sampler_variables(self):
        return _to_float32_jit(self.variables)

    @property
    def forward_apply_fun(self):
        return HashablePartial(_apply_float32, self._forward_model.apply)


serialization.register_serialization_state(
    MixedPrecisionMCState, serialize_MCState, deserialize_MCState, override=True
)


def _float32_kernel(forward, logpsi, pars, sigma, op, *, chunk_size=None):
    return local_energy_kernel(forward, pars, sigma, op, chunk_size=chunk_size)


@nk.vqs.get_local_kernel.dispatch
def _mixed_kernel(vstate: MixedPrecisionMCState, op: BondExchange):
    return HashablePartial(_float32_kernel, vstate.forward_apply_fun)


@nk.vqs.get_local_kernel.dispatch
def _mixed_kernel_chunked(vstate: MixedPrecisionMCState, op: BondExchange, chunk_size: int):
    return HashablePartial(_float32_kernel, vstate.forward_apply_fun)
