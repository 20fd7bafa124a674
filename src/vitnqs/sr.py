"""VMC_SR whose kernel-form (minSR) update computes the symmetric M x M kernel once, not twice.

NetKet's ``VMC_SR(use_ntk=True, on_the_fly=False)`` forms the kernel K = O O^T of the centred,
scaled Jacobian O (2M rows in complex mode: real and imaginary parts; P columns) with one
matrix product, which costs 2 (2M)^2 P floating-point operations although K is symmetric. At
the paper's M = 6000 and P = 184,260 that is 53 TFLOP per step, more than everything else in
the step together. ``symmetric_gram`` splits the rows into ``n_blocks`` blocks and multiplies
only the blocks on and below the diagonal, (n + 1) / (2 n) of the work (0.56 for 8 blocks),
then mirrors them. Everything else is NetKet's: the Jacobian (``netket.jax.jacobian``, chunked),
the linear solver of the driver, the optimizer, logging and callbacks.

The update is the same linear algebra as NetKet's ``srt``:
    dtheta = O^T (K + diag_shift I)^{-1} dv,   dv = 2 (E_loc - <E_loc>) / sqrt(M),
with O and dv stacked as [Re; Im] per sample (tests compare the two to round-off).
``SymmetricKernelVMC_SR`` uses it when the Jacobian is stored (``on_the_fly=False``), the
kernel form is on and no momentum or projection regularization is set; otherwise it is
NetKet's VMC_SR unchanged. It does not compute NetKet's optional exponential-moving-average
MCMC diagnostics (logging only).

On several devices (NetKet's mesh axis 'S') the Jacobian arrives split by samples; as in
NetKet's srt it is resharded by parameters (columns padded to a multiple of the devices), so
that every block of the kernel is a local product plus one sum over devices, and the 2M x 2M
kernel and its solve are replicated.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import NamedSharding, PartitionSpec
from netket import stats as nkstats

from vitnqs.sharding import n_sample_devices, sample_mesh

DEFAULT_KERNEL_BLOCKS = 8

KERNEL_SHARE = (DEFAULT_KERNEL_BLOCKS + 1) / (2 * DEFAULT_KERNEL_BLOCKS)
"""The part of the full 2M x 2M product that ``symmetric_gram`` computes (9/16)."""


def symmetric_gram(O: jax.Array, n_blocks: int = DEFAULT_KERNEL_BLOCKS) -> jax.Array:
    """O @ O.T for O of shape (R, P), computing only the blocks on and below the diagonal."""
    rows = O.shape[0]
    edges = np.linspace(0, rows, min(n_blocks, rows) + 1).astype(int)
    blocks = [O[a:b] for a, b in zip(edges[:-1], edges[1:])]
    gram = jnp.zeros((rows, rows), dtype=O.dtype)
    for i, (a_i, b_i) in enumerate(zip(edges[:-1], edges[1:])):
        for j in range(i + 1):
            a_j, b_j = edges[j], edges[j + 1]
            product = blocks[i] @ blocks[j].T
            gram = gram.at[a_i:b_i, a_j:b_j].set(product)
            if i != j:
                gram = gram.at[a_j:b_j, a_i:b_i].set(product.T)
    return gram


def kernel_operands(jacobian, local_energies, mode: str):
    """(O, dv) of the kernel SR update, dtheta = O^T (O O^T + shift)^-1 dv: the centred Jacobian
    and the centred local energies, each over sqrt(M); rows [Re, Im] per sample in complex mode.
    Public for the SR-spectrum probe (vitnqs.sr_spectrum), which eigendecomposes O O^T."""
    n_samples = jacobian.shape[0]
    e_loc = local_energies.reshape(-1)
    dv = 2.0 * (e_loc - jnp.mean(e_loc)) / jnp.sqrt(n_samples)
    # NetKet's own version of this (_prepare_input) is private API, hence these few lines
    O = jacobian / jnp.sqrt(n_samples)  # the Jacobian comes centred from netket.jax.jacobian
    if mode == "complex":
        O = jax.lax.collapse(O, 0, 2)  # (M, 2, P) -> (2M, P)
        dv = jax.lax.collapse(jnp.stack([dv.real, dv.imag], axis=-1), 0, 2)
    else:
        dv = dv.real
    return O, dv


def _sharded_by_parameters(O, dv):
    """O split by columns (padded with zeros to a multiple of the devices) and dv replicated,
    when samples are sharded over several devices; unchanged on one device."""
    mesh = sample_mesh()
    if mesh is None:
        return O, dv
    O = nk.jax.sharding.pad_axis_for_sharding(O, axis=1, padding_value=0.0)
    O = jax.lax.with_sharding_constraint(O, NamedSharding(mesh, PartitionSpec(None, "S")))
    dv = jax.lax.with_sharding_constraint(dv, NamedSharding(mesh, PartitionSpec()))
    return O, dv


def centred_jacobian(log_psi, parameters, model_state, samples, *, mode: str,
                     chunk_size: int | None):
    """NetKet's centred dense Jacobian (2 rows per sample in complex mode); on several devices
    each computes the rows of its own samples."""
    n_devices = n_sample_devices()
    if chunk_size is None and n_devices > 1:
        # chunked, NetKet's Jacobian runs per device (shard_map); unchunked, the partitioner
        # split the network's internals across devices (XLA: 'involuntary rematerialization')
        chunk_size = samples.shape[0] // n_devices
    return nk.jax.jacobian(log_psi, parameters, samples, model_state, mode=mode, dense=True,
                           center=True, chunk_size=chunk_size)


@partial(jax.jit, static_argnames=("log_psi", "solver_fn", "mode", "chunk_size", "n_blocks"))
def symmetric_kernel_update(log_psi, local_energies, parameters, model_state, samples, *,
                            diag_shift, solver_fn, mode: str, chunk_size: int | None,
                            n_blocks: int = DEFAULT_KERNEL_BLOCKS):
    """The minSR update of NetKet's srt, with the kernel from ``symmetric_gram``."""
    flat_parameters, unravel = ravel_pytree(parameters)
    jacobian = centred_jacobian(log_psi, parameters, model_state, samples, mode=mode,
                                chunk_size=chunk_size)
    O, dv = kernel_operands(jacobian, local_energies, mode)
    n_columns = O.shape[1]
    O, dv = _sharded_by_parameters(O, dv)
    kernel = symmetric_gram(O, n_blocks)
    shifted = kernel + diag_shift * jnp.eye(kernel.shape[0], dtype=kernel.dtype)
    solution = solver_fn(shifted, dv)
    info = {}
    if isinstance(solution, tuple):
        solution, info = solution[0], solution[1] or {}
    updates = (O.T @ solution)[:n_columns]  # without the padding columns of the sharding
    if mode == "complex" and jnp.iscomplexobj(flat_parameters):
        half = updates.shape[-1] // 2
        updates = updates[:half] + 1j * updates[half:]
    return unravel(updates), info


class SymmetricKernelVMC_SR(nk.driver.VMC_SR):
    """NetKet's VMC_SR, with the symmetric kernel product in its stored-Jacobian minSR form."""

    def compute_loss_and_update(self):
        if (self.on_the_fly or not self.use_ntk or self.momentum is not None
                or self.proj_reg is not None or not isinstance(self.state, nk.vqs.MCState)):
            return super().compute_loss_and_update()
        local_energies = self.state.local_estimators(self._ham)
        self._loss_stats = nkstats.statistics(local_energies)
        diag_shift = self.diag_shift
        if callable(diag_shift):
            diag_shift = diag_shift(self.step_count)
        samples = jax.lax.collapse(self.state.samples, 0, self.state.samples.ndim - 1)
        self._dp, self.info = symmetric_kernel_update(
            self.state._apply_fun, local_energies.data, self.state.parameters,
            self.state.model_state, samples, diag_shift=diag_shift,
            solver_fn=self._linear_solver, mode=self.mode, chunk_size=self.chunk_size_bwd,
        )
        return self._loss_stats, self._dp
