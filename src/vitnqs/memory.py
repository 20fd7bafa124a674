"""Chunk sizes chosen from the device's free memory, so that nobody has to pick them by hand.

Two sizes bound a step's memory:

- ``block_size``: connected configurations per network pass in the local energies
  (``vitnqs.exchange``). Their memory is block_size x (bytes of one forward pass).
- ``chunk_size``: samples per pass of log psi and per block of the Jacobian in the SR step.
  The Jacobian itself (2M x P numbers) is stored whole by VMC_SR; the chunk bounds the
  temporaries of computing it.

The bytes of one forward pass and of one sample's Jacobian row are not guessed: XLA's own
memory analysis of the compiled function at a probe batch gives them (``compiled_bytes``). On
a CPU XLA reports neither free memory nor temporaries; there blocks are ``DEFAULT_BLOCK_SIZE``
and chunks at most ``HOST_CHUNK_SAMPLES``. Sizes are powers of two (blocks) or divisors of M
(chunks), so a change of free memory rarely changes the compiled program.

With samples sharded over D devices (NetKet's mesh), each device holds M / D samples, their
connected configurations and 1/D of the Jacobian, but the whole 2M x 2M kernel; chunks and
blocks are per device, and the free memory is that of one device.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from vitnqs.exchange import DEFAULT_BLOCK_SIZE
from vitnqs.sharding import n_sample_devices

MEMORY_FRACTION = 0.8
"""Share of the free device memory a step may plan to use; the rest is XLA's working room."""

STORED_JACOBIAN_SHARE = 0.4
"""With sr_on_the_fly unset, the Jacobian is stored (faster) when it takes at most this share
of the planned memory; otherwise the SR kernel is built on the fly."""

PROBE_ROWS = 64
"""Batch at which the per-row memory of the forward pass and of the Jacobian is measured."""

MIN_BLOCK_SIZE = 256

HOST_CHUNK_SAMPLES = 256
"""Most samples per chunk where the device reports no memory (CPU). Peak memory of the first two
steps of the paper's 6x6 model (184,260 parameters) on a CPU: unchunked it grows as M^2 (2.7 GB
at M = 600, 10.6 GB at 1800; at 6000 it asked for 98 GB in one allocation), in chunks of at most
256 samples linearly, about 3.7 MB per sample (3.4 and 7.9 GB), at the same speed."""


@dataclasses.dataclass(frozen=True)
class ChunkPlan:
    chunk_size: int | None
    """Samples per pass of log psi and per Jacobian block; None: all at once."""
    block_size: int
    """Connected configurations per network pass in the local energies."""
    sr_on_the_fly: bool | None
    """False: the SR step stores the 2M x P Jacobian; True: it never forms it; None: NetKet's
    default (on the fly), where the device reports no memory."""
    free_bytes: int | None
    """Free device memory when planned; None where the device does not report it (CPU)."""
    forward_bytes_per_config: float | None = None
    jacobian_bytes_per_sample: float | None = None

    def describe(self) -> str:
        free = "not reported" if self.free_bytes is None else f"{self.free_bytes / 2**30:.1f} GiB"
        per = ""
        if self.forward_bytes_per_config is not None:
            per = (f"; measured {self.forward_bytes_per_config / 2**10:.1f} KiB per forward "
                   f"configuration, {self.jacobian_bytes_per_sample / 2**20:.2f} MiB per "
                   "Jacobian row")
        return (f"chunk_size={self.chunk_size}, local-energy block_size={self.block_size}, "
                f"sr_on_the_fly={self.sr_on_the_fly} (free device memory {free}{per})")


def free_device_bytes(device=None) -> int | None:
    """Bytes the device can still allocate, or None if it does not say (CPU)."""
    device = device or jax.devices()[0]
    stats = device.memory_stats() or {}
    if "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))


def compiled_bytes(fn, *args) -> int | None:
    """Temporary plus output bytes XLA plans for fn(*args); None where it reports none."""
    analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
    if analysis is None:
        return None
    total = int(analysis.temp_size_in_bytes) + int(analysis.output_size_in_bytes)
    return total or None


def largest_divisor_at_most(n: int, limit: float) -> int:
    """The largest divisor of n that is <= limit (at least 1)."""
    best = 1
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            for candidate in (d, n // d):
                if best < candidate <= limit:
                    best = candidate
    return best


def choose_sizes(
    *, n_samples: int, n_bonds: int, n_params: int, free_bytes: int | None,
    forward_bytes_per_config: float | None, jacobian_bytes_per_sample: float | None,
    sr_on_the_fly: bool | None = None, n_devices: int = 1,
) -> tuple[int | None, int, bool | None]:
    """(chunk_size, block_size, sr_on_the_fly) for a step of M = n_samples on each of
    n_devices devices (free_bytes: one device's).

    Of MEMORY_FRACTION of the free memory, the 2M x 2M kernel and (if stored) this device's
    share of the 2M x P Jacobian are set aside first; a chunk of Jacobian rows may then take
    half of what is left and a block of connected configurations a quarter.
    """
    local_samples = n_samples // n_devices
    n_connected = local_samples * n_bonds
    if free_bytes is None or forward_bytes_per_config is None or jacobian_bytes_per_sample is None:
        chunk = (None if local_samples <= HOST_CHUNK_SAMPLES
                 else largest_divisor_at_most(local_samples, HOST_CHUNK_SAMPLES))
        return chunk, min(DEFAULT_BLOCK_SIZE, n_connected), sr_on_the_fly
    budget = MEMORY_FRACTION * free_bytes
    jacobian = 2 * n_samples * n_params * 8 / n_devices
    if sr_on_the_fly is None:
        sr_on_the_fly = jacobian > STORED_JACOBIAN_SHARE * budget
    stored = (2 * n_samples) ** 2 * 8 + (0 if sr_on_the_fly else jacobian)
    room = max(budget - stored, 0.1 * budget)
    block_limit = 0.25 * room / forward_bytes_per_config
    block = 2 ** int(math.floor(math.log2(max(block_limit, MIN_BLOCK_SIZE))))
    block = min(block, 2 ** math.ceil(math.log2(n_connected)))
    chunk_limit = 0.5 * room / jacobian_bytes_per_sample
    chunk = (None if chunk_limit >= local_samples
             else largest_divisor_at_most(local_samples, chunk_limit))
    return chunk, block, sr_on_the_fly


def plan_chunks(vstate, n_bonds: int, chunk_size="auto", block_size="auto",
                sr_on_the_fly: bool | None = None) -> ChunkPlan:
    """Sizes for this state's step on its device; 'auto' (and None) values are chosen here."""
    free = free_device_bytes()
    forward = jacobian = None
    if free is not None and ("auto" in (chunk_size, block_size) or sr_on_the_fly is None):
        forward, jacobian = _measure_per_row(vstate)
    chunk, block, on_the_fly = choose_sizes(
        n_samples=vstate.n_samples, n_bonds=n_bonds, n_params=vstate.n_parameters,
        free_bytes=free, forward_bytes_per_config=forward, jacobian_bytes_per_sample=jacobian,
        sr_on_the_fly=sr_on_the_fly, n_devices=n_sample_devices(),
    )
    return ChunkPlan(
        chunk_size=chunk if chunk_size == "auto" else chunk_size,
        block_size=block if block_size == "auto" else int(block_size),
        sr_on_the_fly=on_the_fly,
        free_bytes=free, forward_bytes_per_config=forward, jacobian_bytes_per_sample=jacobian,
    )


def row_probes(vstate, rows: int = PROBE_ROWS) -> dict:
    """name -> (function, arguments) of one step's per-row work at a batch of `rows` zero
    configurations (no sampling): the forward pass and the centred complex-mode Jacobian.
    XLA's analyses of these give the memory (here) and the FLOPs (vitnqs.benchmark) per row."""
    import netket as nk

    probe = jnp.zeros((rows, vstate.hilbert.size), dtype=vstate.sampler.dtype)

    def jacobian(params, samples):
        return nk.jax.jacobian(
            vstate._apply_fun, params, samples, vstate.model_state, mode="complex", dense=True,
            center=True,
        )

    return {
        "forward": (vstate._apply_fun, (vstate.variables, probe)),
        "jacobian": (jacobian, (vstate.parameters, probe)),
    }


def _measure_per_row(vstate) -> tuple[float | None, float | None]:
    sizes = [compiled_bytes(fn, *args) for fn, args in row_probes(vstate).values()]
    if None in sizes:
        return None, None
    forward, backward = sizes
    return forward / PROBE_ROWS, backward / PROBE_ROWS
