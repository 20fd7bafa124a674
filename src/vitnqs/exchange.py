"""Heisenberg exchange on a list of bonds, with local energies that skip zero matrix elements.

``BondExchange`` is the operator H = sum_b J_b sigma_i . sigma_j (Pauli matrices, no sign
rule): the same matrix as NetKet's ``Heisenberg`` on the same bonds (tested). It is a NetKet
``DiscreteJaxOperator``, so ``get_conn_padded``, ``to_dense`` and every NetKet estimator work
with it unchanged; what it adds is its own local-energy kernel, registered through NetKet's
``get_local_kernel`` dispatch, so ``MCState.local_estimators``, ``expect`` and ``VMC_SR`` use it.

Why a kernel of its own. NetKet's padded kernel evaluates log psi on all 1 + n_bonds connected
configurations of every sample: the diagonal one (sigma itself) and one per bond, although a
bond whose two spins are parallel has a zero off-diagonal element. Here

    E_loc(s) = sum_b J_b s_i s_j  +  sum_{b: s_i != s_j} 2 J_b psi(s with i, j swapped) / psi(s)

the diagonal part costs no network pass, and only antiparallel bonds are evaluated: their
(sample, bond) pairs over the whole batch are packed into one list, and the network runs on it
in blocks of ``block_size`` configurations, as many blocks as needed. About half of the bonds
are antiparallel (0.53 in the freshly initialized 6x6 states of the benchmark), so the network
work is about half of NetKet's, and the memory of one block is fixed by ``block_size``, whatever
the number of samples. On a GPU the scatter-add of the blocks' terms is not bit-reproducible
(as most GPU reductions); on a CPU it is.

On several devices (NetKet's sharding: samples split over the mesh axis 'S') the packing runs
on each device's own samples, inside NetKet's ``sharding_decorator`` (a shard_map), as NetKet's
own packed kernel does: under plain GSPMD the global ``nonzero`` would be replicated on every
device.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
from jax.tree_util import register_pytree_node_class
from netket.jax import HashablePartial
from netket.jax.sharding import sharding_decorator
from netket.operator import DiscreteJaxOperator
from netket.vqs.mc import check_hilbert

from vitnqs.sharding import sample_mesh

DEFAULT_BLOCK_SIZE = 8192
"""Connected configurations per network pass when no block size is chosen (see vitnqs.memory)."""


@register_pytree_node_class
class BondExchange(DiscreteJaxOperator):
    """H = sum_b J_b (sigma^x_i sigma^x_j + sigma^y_i sigma^y_j + sigma^z_i sigma^z_j).

    Args:
        hilbert: a spin-1/2 NetKet Hilbert space (local states +1 and -1).
        bonds: (n_bonds, 2) site pairs.
        couplings: (n_bonds,) J_b; bonds with J_b = 0 are dropped.
        block_size: connected configurations evaluated per network pass by the local kernel.
    """

    def __init__(self, hilbert, bonds, couplings, block_size: int = DEFAULT_BLOCK_SIZE):
        super().__init__(hilbert)
        if sorted(np.asarray(hilbert.local_states).tolist()) != [-1, 1]:
            raise ValueError("BondExchange needs a spin-1/2 Hilbert space with local states -1, +1")
        bonds = np.asarray(bonds, dtype=np.int32).reshape(-1, 2)
        couplings = np.asarray(couplings, dtype=np.float64).reshape(-1)
        if len(bonds) != len(couplings):
            raise ValueError(f"{len(bonds)} bonds but {len(couplings)} couplings")
        keep = couplings != 0
        self._bonds = jnp.asarray(bonds[keep])
        self._couplings = jnp.asarray(couplings[keep])
        self.block_size = int(block_size)
        if self.block_size < 1:
            raise ValueError(f"block_size must be positive, got {block_size}")

    @classmethod
    def from_graph(cls, hilbert, graph, J, block_size: int = DEFAULT_BLOCK_SIZE) -> BondExchange:
        """Bonds of colour c of a NetKet graph get coupling J[c], as in
        ``nk.operator.Heisenberg``."""
        edges = graph.edges(return_color=True)
        bonds = [(i, j) for i, j, _ in edges]
        couplings = [J[color] for _, _, color in edges]
        return cls(hilbert, bonds, couplings, block_size)

    # --- what NetKet needs of a DiscreteJaxOperator ----------------------------------------
    @property
    def n_bonds(self) -> int:
        return int(self._bonds.shape[0])

    @property
    def dtype(self):
        return jnp.float64

    @property
    def is_hermitian(self) -> bool:
        return True

    @property
    def max_conn_size(self) -> int:
        return 1 + self.n_bonds

    @jax.jit
    def get_conn_padded(self, x):
        """The diagonal configuration first, then one per bond; a parallel bond gives x itself
        with a zero element (so every padded configuration stays in the Hilbert space)."""
        antiparallel = _antiparallel(x, self._bonds)
        diagonal = _diagonal(x, self._bonds, self._couplings)
        flipped = jnp.where(antiparallel[..., None], _swap_bonds(x, self._bonds), x[..., None, :])
        xp = jnp.concatenate([x[..., None, :], flipped], axis=-2)
        offdiagonal = jnp.where(antiparallel, 2.0 * self._couplings, 0.0)
        mels = jnp.concatenate([diagonal[..., None], offdiagonal], axis=-1)
        return xp, mels

    def tree_flatten(self):
        return (self._bonds, self._couplings), {"hilbert": self.hilbert, "block": self.block_size}

    @classmethod
    def tree_unflatten(cls, metadata, data):
        op = cls.__new__(cls)
        DiscreteJaxOperator.__init__(op, metadata["hilbert"])
        op._bonds, op._couplings = data
        op.block_size = metadata["block"]
        return op

    def __repr__(self) -> str:
        return f"BondExchange(n_bonds={self.n_bonds}, block_size={self.block_size})"


def _antiparallel(x, bonds):
    return x[..., bonds[:, 0]] != x[..., bonds[:, 1]]


def _diagonal(x, bonds, couplings):
    s = x.astype(couplings.dtype)
    return jnp.sum(couplings * s[..., bonds[:, 0]] * s[..., bonds[:, 1]], axis=-1)


def _swap_bonds(x, bonds):
    """(..., n_bonds, N): x with the two spins of each bond flipped (a swap when antiparallel)."""
    n_sites = x.shape[-1]
    flip = jnp.zeros((bonds.shape[0], n_sites), dtype=bool)
    rows = jnp.arange(bonds.shape[0])
    flip = flip.at[rows, bonds[:, 0]].set(True).at[rows, bonds[:, 1]].set(True)
    return jnp.where(flip, -x[..., None, :], x[..., None, :])


# --- the local-energy kernel -------------------------------------------------------------------
def local_energy_kernel(logpsi, pars, sigma, op: BondExchange, *, chunk_size: int | None = None):
    """E_loc for a batch sigma of shape (n_samples, N), evaluating antiparallel bonds only.

    chunk_size, when given, bounds the samples per pass of log psi(sigma) (as NetKet's does);
    the connected configurations go through in blocks of ``op.block_size``. With samples
    sharded over several devices, each device packs and evaluates its own.
    """
    if sample_mesh() is None:
        return _local_energies_on_device(logpsi, pars, sigma, op, chunk_size=chunk_size)
    per_device = HashablePartial(_local_energies_on_device, logpsi, chunk_size=chunk_size)
    # pars is an argument (not captured) so that shard_map can mark it as varying per device
    return sharding_decorator(
        per_device, sharded_args_tree=(False, True, False), pvary_args_tree=(True, False, False)
    )(pars, sigma, op)


def _local_energies_on_device(logpsi, pars, sigma, op: BondExchange, *, chunk_size: int | None):
    bonds, couplings = op._bonds, op._couplings
    n_samples, n_bonds = sigma.shape[0], bonds.shape[0]
    if chunk_size is None:
        logpsi_sigma = logpsi(pars, sigma)
    else:
        logpsi_sigma = nk.jax.apply_chunked(logpsi, in_axes=(None, 0), chunk_size=chunk_size)(
            pars, sigma
        )
    diagonal = _diagonal(sigma, bonds, couplings)

    block = min(op.block_size, n_samples * n_bonds)
    capacity = math.ceil(n_samples * n_bonds / block) * block
    antiparallel = _antiparallel(sigma, bonds).reshape(-1)
    n_connected = jnp.sum(antiparallel)
    (pairs,) = jnp.nonzero(antiparallel, size=capacity, fill_value=0)

    def evaluate_block(k, total):
        start = k * block
        pair = jax.lax.dynamic_slice(pairs, (start,), (block,))
        valid = start + jnp.arange(block) < n_connected
        sample, bond = pair // n_bonds, pair % n_bonds
        x = sigma[sample]
        rows = jnp.arange(block)
        sign = jnp.where(valid, -1, 1).astype(x.dtype)  # padding slots keep a valid configuration
        x = x.at[rows, bonds[bond, 0]].multiply(sign).at[rows, bonds[bond, 1]].multiply(sign)
        ratio = jnp.exp(logpsi(pars, x) - logpsi_sigma[sample])
        term = jnp.where(valid, 2.0 * couplings[bond] * ratio, 0.0)
        return total.at[sample].add(term)

    n_blocks = (n_connected + block - 1) // block
    # zeros_like keeps the samples' per-device type inside the shard_map (a fresh array would not)
    zero = jnp.zeros_like(logpsi_sigma, dtype=jnp.result_type(logpsi_sigma.dtype, couplings.dtype))
    offdiagonal = jax.lax.fori_loop(0, n_blocks, evaluate_block, zero)
    return diagonal + offdiagonal


@nk.vqs.get_local_kernel_arguments.dispatch
def _exchange_kernel_arguments(vstate: nk.vqs.MCState, op: BondExchange):
    check_hilbert(vstate.hilbert, op.hilbert)
    return vstate.samples, op


@nk.vqs.get_local_kernel.dispatch
def _exchange_kernel(vstate: nk.vqs.MCState, op: BondExchange):
    return local_energy_kernel


@nk.vqs.get_local_kernel.dispatch
def _exchange_kernel_chunked(vstate: nk.vqs.MCState, op: BondExchange, chunk_size: int):
    return local_energy_kernel


def antiparallel_fraction(samples, op: BondExchange) -> float:
    """Fraction of (sample, bond) pairs with a nonzero off-diagonal element."""
    samples = np.asarray(samples)
    flat = samples.reshape(-1, samples.shape[-1])
    return float(np.mean(np.asarray(_antiparallel(jnp.asarray(flat), op._bonds))))
