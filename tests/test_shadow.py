"""Along one vitnqs trajectory, NetKet's VMC_SR on the same state and samples gives the same
energy and the same update at every compared step (vitnqs.shadow)."""

import numpy as np

from vitnqs.benchmark import compare_trajectories
from vitnqs.config import RunConfig
from vitnqs.shadow import shadow_trajectory


def test_vitnqs_step_is_netkets_step_along_a_trajectory():
    config = RunConfig.from_dict(dict(
        L=4, J2=0.5, n_layers=1, attention="t5", d_model=8, n_heads=2, n_samples=256,
        n_chains=16, n_discard_per_chain=2, n_steps=100, sr_on_the_fly=False))
    rows = shadow_trajectory(config, n_steps=40, every=10)

    assert [row["step"] for row in rows] == [0, 10, 20, 30]
    for row in rows:
        assert row["energy_relative_difference"] < 1e-12
        assert row["update_relative_difference"] < 1e-10
        assert row["update_norm"] > 0
    # the states compared are the ones a run visits: the energy has come down a long way
    first, last = rows[0], rows[-1]
    assert last["energy_vitnqs"] < first["energy_vitnqs"] - 10 * first["error_vitnqs"]
    assert np.isclose(first["energy_vitnqs"], first["energy_netket"], rtol=1e-12)
    # the baseline only reads the shared state: the trajectory is the one a plain vitnqs run takes
    plain = compare_trajectories(config, 31, every=10, implementations=("vitnqs",))
    assert [row["energy_vitnqs"] for row in plain] == [row["energy_vitnqs"] for row in rows]
