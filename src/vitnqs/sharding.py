"""The devices NetKet splits the samples over.

NetKet (3.23) sets, when it is imported, a one-axis mesh named 'S' over every visible device
and shards the Markov chains and samples along it: with four visible GPUs a run uses all four.
Training jobs of the workflow see the GPUs they claimed (``vitnqs.gpus.claim_gpus``, the
train rule's ``gpu`` resource, one by default); a run started by hand uses the GPUs visible to it
(CUDA_VISIBLE_DEVICES). NetKet needs the chains to split evenly over the devices and would
otherwise add chains (and samples) silently: ``check_chains_split`` refuses such a run first.
"""

from __future__ import annotations

import jax

from vitnqs.config import ConfigError


def sample_mesh():
    """NetKet's mesh when the samples are split over several devices, else None."""
    mesh = jax.sharding.get_abstract_mesh()
    return mesh if "S" in mesh.axis_names and mesh.shape["S"] > 1 else None


def n_sample_devices() -> int:
    """How many devices the samples are split over (1 without a mesh)."""
    mesh = sample_mesh()
    return 1 if mesh is None else mesh.shape["S"]


def check_chains_split(run_id: str, n_chains: int) -> None:
    """Raise ConfigError unless n_chains splits evenly over the sample devices: NetKet would
    raise the number of chains (and of samples) to the next multiple, so the run trained would
    not be the configured one."""
    devices = n_sample_devices()
    if n_chains % devices:
        raise ConfigError(
            f"{run_id}: n_chains={n_chains} does not split over the {devices} devices the samples "
            f"are sharded over (NetKet would silently use {-(-n_chains // devices) * devices} "
            "chains and change the run's samples); nothing was written. Use a number of GPUs "
            "that divides n_chains (CUDA_VISIBLE_DEVICES, or the train rule's gpu resource)"
        )
