"""Chunk sizes from free device memory: divisors of M, powers of two, within the budget."""

from vitnqs.exchange import DEFAULT_BLOCK_SIZE
from vitnqs.memory import (
    HOST_CHUNK_SAMPLES, MEMORY_FRACTION, MIN_BLOCK_SIZE, choose_sizes, largest_divisor_at_most,
)


def test_largest_divisor():
    assert largest_divisor_at_most(6000, 2100) == 2000
    assert largest_divisor_at_most(6000, 6000) == 6000
    assert largest_divisor_at_most(1024, 700) == 512
    assert largest_divisor_at_most(97, 50) == 1


def test_a_device_without_memory_figures_gets_chunks_a_host_can_hold():
    """CPU: no free memory reported. Unchunked, M = 6000 asked a CPU for 98 GB; chunks are the
    largest divisor of the device's samples up to HOST_CHUNK_SAMPLES; small M stays whole."""
    cpu = dict(n_bonds=400, n_params=10**5, free_bytes=None, forward_bytes_per_config=None,
               jacobian_bytes_per_sample=None)
    assert choose_sizes(n_samples=6000, **cpu) == (250, DEFAULT_BLOCK_SIZE, None)
    assert choose_sizes(n_samples=12000, n_devices=2, **cpu)[0] == 250  # per device
    assert choose_sizes(n_samples=HOST_CHUNK_SAMPLES, **cpu)[0] is None
    assert choose_sizes(n_samples=97 * 3, **cpu)[0] == 97  # a divisor, however small


def test_plan_fits_the_budget():
    """M = 6000, 10x10 J1-J2 (400 bonds), 184,900 parameters, 70 GiB free (H100 measurements:
    ~540 KiB per forward configuration, ~7.3 MiB per Jacobian row)."""
    M, P, free = 6000, 184_900, 70 * 2**30
    forward, jacobian = 540e3, 7.6e6
    chunk, block, on_the_fly = choose_sizes(
        n_samples=M, n_bonds=400, n_params=P, free_bytes=free,
        forward_bytes_per_config=forward, jacobian_bytes_per_sample=jacobian)
    assert on_the_fly is False  # the 17.8 GB Jacobian is stored
    assert M % chunk == 0 and chunk < M
    assert block & (block - 1) == 0 and block >= MIN_BLOCK_SIZE
    stored = 2 * M * P * 8 + (2 * M) ** 2 * 8
    assert stored + block * forward + chunk * jacobian <= MEMORY_FRACTION * free + 1


def test_a_jacobian_too_large_to_store_is_built_on_the_fly():
    chunk, block, on_the_fly = choose_sizes(
        n_samples=6000, n_bonds=400, n_params=184_900, free_bytes=30 * 2**30,
        forward_bytes_per_config=540e3, jacobian_bytes_per_sample=7.6e6)
    assert on_the_fly is True
    assert choose_sizes(n_samples=6000, n_bonds=400, n_params=184_900, free_bytes=30 * 2**30,
                        forward_bytes_per_config=540e3, jacobian_bytes_per_sample=7.6e6,
                        sr_on_the_fly=False)[2] is False  # a choice in the config is kept


def test_plenty_of_memory_means_no_chunking():
    chunk, block, on_the_fly = choose_sizes(
        n_samples=1024, n_bonds=144, n_params=10**4, free_bytes=2**40,
        forward_bytes_per_config=1e3, jacobian_bytes_per_sample=1e5)
    assert chunk is None and on_the_fly is False
    assert block == 2 ** 18  # the whole batch (147,456 connections) in one


def test_little_memory_gives_the_smallest_sizes():
    chunk, block, on_the_fly = choose_sizes(
        n_samples=6000, n_bonds=400, n_params=184_900, free_bytes=2**30,
        forward_bytes_per_config=3e5, jacobian_bytes_per_sample=6e6)
    assert block == MIN_BLOCK_SIZE and 6000 % chunk == 0 and on_the_fly is True


def test_four_devices_store_a_quarter_of_the_jacobian_each():
    """30 GiB per device: one device must build the kernel on the fly, four share the 17.8 GB
    Jacobian (4.4 GB each) and store it; chunks divide each device's 1500 samples."""
    sizes = dict(n_samples=6000, n_bonds=400, n_params=184_900, free_bytes=30 * 2**30,
                 forward_bytes_per_config=540e3, jacobian_bytes_per_sample=7.6e6)
    assert choose_sizes(**sizes)[2] is True
    chunk, block, on_the_fly = choose_sizes(**sizes, n_devices=4)
    assert on_the_fly is False
    assert chunk is not None and 1500 % chunk == 0 and chunk > 1500 // 4
    assert block & (block - 1) == 0 and MIN_BLOCK_SIZE <= block <= 2 ** 20  # <= 1500 x 400
