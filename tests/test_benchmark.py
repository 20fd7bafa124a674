"""The step benchmark and the physics check of the fast step, on a tiny system on the CPU."""

import pytest

from vitnqs import benchmark
from vitnqs.config import RunConfig

TINY = dict(L=4, J2=0.5, n_layers=1, attention="t5", d_model=8, n_heads=2, n_samples=64,
            n_chains=16, n_discard_per_chain=1, n_steps=20, diag_shift=1e-3, learning_rate=0.02,
            sr_on_the_fly=False)


@pytest.fixture(scope="module")
def rows():
    return benchmark.benchmark(RunConfig.from_dict(TINY), n_timed=1, baseline_chunk=32,
                               peak_flops=1e9)


def test_every_implementation_is_timed_and_compared_with_netket(rows):
    assert [r["implementation"] for r in rows] == [benchmark.LABELS[i]
                                                   for i in benchmark.IMPLEMENTATIONS]
    for row in rows:
        assert row["seconds_per_step"] > 0 and row["seconds_sampling"] > 0
        assert row["speedup_over_netket"] == pytest.approx(
            rows[-1]["seconds_per_step"] / row["seconds_per_step"])
    assert rows[-1]["speedup_over_netket"] == 1.0


def test_flops_are_counted_from_the_model(rows):
    fast, netket = rows[0], rows[-1]
    M, P = TINY["n_samples"], fast["n_params"]
    # the vitnqs step stores the Jacobian and computes (8 + 1) / 16 of the 2M x 2M kernel
    assert fast["flops_kernel"] == pytest.approx(9 / 16 * 2 * (2 * M) ** 2 * P)
    assert netket["flops_kernel"] == pytest.approx(2 * (2 * M) ** 2 * P)
    # NetKet evaluates 1 + 64 bonds + 1 per sample; vitnqs 1 + the antiparallel bonds (< 64)
    ratio = fast["flops_local_energies"] / netket["flops_local_energies"]
    assert 0.2 < ratio < (1 + 64) / (1 + 65)
    assert fast["flops_forward_per_config"] > 0
    assert fast["fraction_of_peak"] == pytest.approx(
        fast["flops_per_step"] / fast["seconds_per_step"] / 1e9)


def test_same_state_same_samples_same_energy():
    energies = benchmark.same_state_energies(RunConfig.from_dict(TINY))
    assert energies["same_samples_relative_difference_vitnqs"] < 1e-12
    assert energies["same_samples_relative_difference_vitnqs-float32"] < 1e-6  # 5.8e-8 measured


def test_trajectories_from_one_state_coincide():
    """Same initial state and sampler seed, same SR form: the vitnqs step and NetKet's follow
    the same trajectory (differences are round-off)."""
    rows = benchmark.compare_trajectories(RunConfig.from_dict(TINY), n_steps=20, every=5,
                                          implementations=("vitnqs", "netket"))
    assert [r["step"] for r in rows] == [0, 5, 10, 15]
    for row in rows:
        assert abs(row["energy_vitnqs"] - row["energy_netket"]) < 1e-8
        assert row["difference_vitnqs_over_combined_error"] < 1e-4
    assert rows[-1]["energy_vitnqs"] < rows[0]["energy_vitnqs"]  # it optimizes


def test_unknown_implementation_is_refused():
    with pytest.raises(ValueError, match="unknown implementation"):
        benchmark.benchmark(RunConfig.from_dict(TINY), implementations=("fast",))
