"""The devices NetKet splits the samples over.

NetKet (3.23) sets, when it is imported, a one-axis mesh named 'S' over every visible device
and shards the Markov chains and samples along it: with four visible GPUs a run uses all four.
Training jobs of the workflow see one GPU each (``vitnqs.gpus.claim_gpu``); a run that should
use several is started with those GPUs visible (CUDA_VISIBLE_DEVICES).
"""

from __future__ import annotations

import jax


def sample_mesh():
    """NetKet's mesh when the samples are split over several devices, else None."""
    mesh = jax.sharding.get_abstract_mesh()
    return mesh if "S" in mesh.axis_names and mesh.shape["S"] > 1 else None


def n_sample_devices() -> int:
    """How many devices the samples are split over (1 without a mesh)."""
    mesh = sample_mesh()
    return 1 if mesh is None else mesh.shape["S"]
