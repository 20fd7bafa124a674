"""Attention analysis: input-dependence index, freeze ablation, Shastry-Sutherland state."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import random_sz0_configurations
from train_helpers import TINY_RUN

from vitnqs import cli, io, load_run
from vitnqs import shastry_sutherland as ss
from vitnqs.analysis import (
    LOG_PROB_GAP,
    Sampling,
    WeightMoments,
    attention_weights,
    draw_samples,
    fixed_inputs,
    input_dependence,
    input_dependence_index,
    run_attention_maps,
    sampled_moments,
    stranded_chains,
)
from vitnqs.analysis_tables import R_HAT_MAX, ablation_table
from vitnqs.config import RunConfig
from vitnqs.fresh_chains import (
    chain_census,
    draw_from_fresh_chains,
    ising_energy_per_site,
    parallel_fraction,
)
from vitnqs.frozen_attention import (
    FrozenAttentionViT,
    freeze_ablation,
    frozen_network,
    sample_average_attention,
)
from vitnqs.system import build_system
from vitnqs.train import build_model, run
from vitnqs.trained import TrainedState

SMALL = Sampling(n_samples=128, n_chains=16, n_discard_per_chain=2, chunk_size=64)
"""Sampling small enough for tests."""


def initial_state(attention: str) -> TrainedState:
    """A TrainedState at random initialization, without training."""
    config = RunConfig.from_dict({**TINY_RUN, "attention": attention})
    model = build_model(config)
    variables = model.init(jax.random.PRNGKey(1), jnp.ones((1, config.n_sites)))
    return TrainedState(model=model, variables=variables, config=config, step=0, summary=None)


@pytest.fixture(scope="module")
def factored_run(tmp_path_factory):
    """A tiny trained factored run with snapshots at steps 0, 2, 4."""
    run_dir = tmp_path_factory.mktemp("analysis") / "factored"
    run({**TINY_RUN, "attention": "factored", "n_steps": 4, "snapshot_steps": [0, 2]}, run_dir,
        quiet=True)
    return run_dir


# --- the index --------------------------------------------------------------------------------
def test_index_is_exactly_zero_for_input_independent_weights():
    alpha_HxPxP = np.random.default_rng(0).normal(size=(2, 9, 9)) * 0.1
    assert np.all(input_dependence_index(alpha_HxPxP) == 0.0)
    repeated = np.broadcast_to(alpha_HxPxP, (7, 2, 9, 9))
    assert np.all(input_dependence_index(repeated) == 0.0)
    varying = repeated + np.random.default_rng(1).normal(size=(7, 2, 9, 9)) * 1e-3
    assert np.all(input_dependence_index(varying) > 0.0)


def test_chunked_moments_match_numpy():
    alpha = np.random.default_rng(2).uniform(size=(50, 3, 4, 4))
    moments = WeightMoments()
    for start in range(0, 50, 16):
        moments.add(alpha[start:start + 16])
    np.testing.assert_allclose(moments.mean, alpha.mean(0), rtol=1e-13)
    np.testing.assert_allclose(moments.std, alpha.std(0), rtol=1e-10)
    expected = alpha.std(0).mean((-2, -1)) / np.abs(alpha).mean(0).mean((-2, -1))
    np.testing.assert_allclose(moments.index, expected, rtol=1e-10)


def test_fixed_inputs_are_reproducible_and_have_zero_magnetization():
    inputs = fixed_inputs(6)
    assert inputs.shape == (3, 36) and np.all(inputs.sum(axis=1) == 0)
    np.testing.assert_array_equal(inputs, fixed_inputs(6))


def test_index_of_random_t5_is_positive():
    moments = sampled_moments(initial_state("t5"), SMALL)
    assert set(moments) == {"attention"}
    assert np.all(moments["attention"][0].index > 0.05)


def test_factored_run_index_is_exactly_zero_at_every_snapshot(factored_run):
    frame = input_dependence(factored_run, SMALL)
    assert sorted(frame["step"].unique()) == [0, 2, 4]
    assert (frame["index"] == 0.0).all()
    maps = run_attention_maps(factored_run, SMALL)
    assert maps["attention_inputs"].shape == (2, 1, 3, 3, 4, 4)  # T, Y, I, G = h + 1, P, P
    np.testing.assert_array_equal(maps["steps"], [0, 4])


def test_index_of_decoupled_without_queries_and_keys_is_exactly_zero():
    """Decoupled with Q = K = 0 (its weights are factored + 1/n: test_model): the recorded
    softmax term the analysis reports is 1/n for every input, and the index of the weights is
    exactly 0, not rounding noise, as the module docstring claims."""
    state = initial_state("decoupled")
    params = jax.tree_util.tree_map(np.asarray, state.variables["params"])
    for name in ("Q", "K"):
        block = params["block_0"]["attention"][name]
        params["block_0"]["attention"][name] = jax.tree_util.tree_map(np.zeros_like, block)
    spins = random_sz0_configurations(16, 5)
    weights = attention_weights(state.model, {"params": params}, spins)
    n_patches = weights["softmax"][0].shape[-1]
    np.testing.assert_allclose(weights["softmax"][0], 1 / n_patches, rtol=1e-15)
    assert np.all(input_dependence_index(weights["attention"][0]) == 0.0)


# --- the freeze ablation ------------------------------------------------------------------------
def test_frozen_network_at_one_input_reproduces_that_input():
    state = initial_state("t5")
    spins = random_sz0_configurations(16, 4)
    alpha = attention_weights(state.model, state.variables, spins)["attention"]
    model, variables = frozen_network(state, np.stack([a[0] for a in alpha]))
    frozen_log_psi = model.apply(variables, spins)
    plain_log_psi = state.model.apply(state.variables, spins)
    assert abs(frozen_log_psi[0] - plain_log_psi[0]) < 1e-12
    assert np.all(np.abs(frozen_log_psi[1:] - plain_log_psi[1:]) > 1e-8)
    # without the frozen collection it is the plain ViT
    plain_fields = {f.name: getattr(state.model, f.name) for f in dataclasses.fields(state.model)
                    if f.init and f.name not in ("parent", "name")}
    np.testing.assert_array_equal(
        FrozenAttentionViT(**plain_fields).apply(state.variables, spins), plain_log_psi
    )


def test_freezing_a_factored_run_leaves_its_energy_identical(factored_run):
    result = freeze_ablation(load_run(factored_run), SMALL, n_samples_energy=256)
    assert result["energy_frozen"] == result["energy"]
    assert result["energy_frozen_error"] == result["energy_error"]
    assert result["energy_change"] == 0.0 and result["energy_change_error"] > 0
    assert result["energy_r_hat"] == result["energy_frozen_r_hat"] > 0.5  # recorded, the same
    assert result["n_chains_stranded"] == result["n_chains_stranded_frozen"] == 0


def test_chains_stranded_far_below_the_typical_probability_are_the_ones_left_out():
    """Two chains sit ~30 below the others in log|psi|^2 (10x10 decoupled's stranded chains):
    only they go; spread within the gap, however wide, leaves every chain in."""
    log_prob_CxT = np.random.default_rng(0).normal(0.0, 3.0, size=(12, 10))
    log_prob_CxT[[3, 7]] -= 30.0
    assert np.flatnonzero(stranded_chains(log_prob_CxT)).tolist() == [3, 7]
    spread = np.linspace(-0.9, 0.9, 12)[:, None] * LOG_PROB_GAP + np.zeros((12, 10))
    assert not stranded_chains(spread).any()


def _ablation(run_id: str, energy: float, r_hat: float | None = None) -> dict:
    record = {"run_id": run_id, "energy": energy, "energy_error": 1e-4}
    return record if r_hat is None else {**record, "energy_r_hat": r_hat,
                                         "energy_frozen_r_hat": 1.0}


def test_fresh_chains_that_miss_the_final_energy_or_do_not_mix_are_flagged():
    """10x10 decoupled's case: fresh chains 0.024 per site above the run's own final energy
    with R-hat 1.4; the unfrozen energy must agree with the final one for the change to count."""
    summaries = {run: {"run_id": run, "energy_per_site": -0.5, "energy_error": 1e-4}
                 for run in ("agrees", "old-file", "apart", "unmixed")}
    table = ablation_table(
        [_ablation("agrees", -0.5002, r_hat=1.01), _ablation("old-file", -0.5001),
         _ablation("apart", -0.476, r_hat=1.01), _ablation("unmixed", -0.5, r_hat=R_HAT_MAX + 0.3)],
        summaries,
    ).set_index("run_id")
    assert table["chains_agree"].to_dict() == {
        "agrees": True, "old-file": True, "apart": False, "unmixed": False}
    z = table.loc["agrees", "fresh_minus_final_sigma"]
    assert z == pytest.approx(-0.0002 / np.hypot(1e-4, 1e-4))
    assert np.isnan(table.loc["old-file", "energy_r_hat"])
    assert table.loc["apart", "energy_final"] == -0.5
    assert ablation_table([], summaries).empty  # a config that selects no ablation run


def test_samples_of_a_stranded_chain_are_left_out_of_every_average(monkeypatch):
    """What the attention averages, the index and the frozen weights see: the draw less the
    samples of the chains stranded_chains names (here chain 3, by fiat), in chain order."""
    state = initial_state("t5")
    full_SxN = draw_samples(state, SMALL)
    assert full_SxN.shape == (SMALL.n_samples, state.config.n_sites)  # none stranded
    monkeypatch.setattr("vitnqs.analysis.stranded_chains",
                        lambda log_prob_CxT: np.arange(len(log_prob_CxT)) == 3)
    per_chain = full_SxN.reshape(SMALL.n_chains, -1, state.config.n_sites)
    kept_SxN = np.delete(per_chain, 3, axis=0).reshape(-1, state.config.n_sites)
    assert len(kept_SxN) == SMALL.n_samples - SMALL.n_samples // SMALL.n_chains
    np.testing.assert_array_equal(draw_samples(state, SMALL), kept_SxN)


def test_chain_census_of_a_run_adds_up_to_its_ablation_energy(factored_run):
    """The same fresh chains, seed and draws: the mean of the per-chain energies is the
    ablation's unfrozen energy; a chain's log_prob is its mean log|psi|^2 less the median
    chain's; a trained 4x4 state strands no chain."""
    census = chain_census(load_run(factored_run), SMALL, n_samples=256)
    assert len(census) == SMALL.n_chains and (census["n_samples"] == 16).all()
    assert not census["stranded"].any()
    ablation = freeze_ablation(load_run(factored_run), SMALL, n_samples_energy=256)
    assert census["energy"].mean() == pytest.approx(ablation["energy"], rel=1e-12)
    assert census["parallel_fraction"].between(0, 1).all()
    # log_prob: each chain's mean 2 Re log psi over its own samples, recomputed with the plain
    # network on the same draw, less the median chain's
    state = load_run(factored_run)
    _, _, spins_CxTxN = draw_from_fresh_chains(state, SMALL, 256)
    log_psi = state.model.apply(state.variables, spins_CxTxN.reshape(-1, spins_CxTxN.shape[-1]))
    chain_mean = 2 * np.real(np.asarray(log_psi)).reshape(spins_CxTxN.shape[:2]).mean(axis=1)
    np.testing.assert_allclose(census["log_prob"], chain_mean - np.median(chain_mean),
                               rtol=1e-10, atol=1e-10)
    # factored attention ignores the input: its frozen copy samples the same, chain by chain
    network = frozen_network(state, sample_average_attention(state, SMALL))
    frozen = chain_census(state, SMALL, 256, *network)
    pd.testing.assert_frame_equal(frozen, census)


def test_fresh_chains_command_writes_the_census_of_finished_runs_only(factored_run, tmp_path,
                                                                      capsys):
    config = tmp_path / "analysis.yaml"
    io.write_yaml(config, {"analysis": {"n_samples": 128, "n_chains": 16,
                                        "n_discard_per_chain": 2, "chunk_size": 64}})
    out = tmp_path / "census.csv"
    args = ["fresh-chains", "--out", str(out), "--config", str(config)]
    assert cli.main([*args, str(tmp_path)]) == 2  # no summary.json: not a finished run
    assert "no summary.json" in capsys.readouterr().err and not out.exists()
    assert cli.main([*args, str(factored_run), "--samples", "0"]) == 2
    assert "--samples must be at least 1" in capsys.readouterr().err and not out.exists()
    assert cli.main([*args, str(factored_run), "--samples", "256", "--frozen"]) == 0
    census = io.read_csv(out)
    assert len(census) == 16 and not census["stranded"].any()
    record = io.read_json(tmp_path / "census.provenance.json")
    assert record["settings"]["frozen"] is True and record["settings"]["sampling"]["n_chains"] == 16


@pytest.mark.parametrize("J2", [0.0, 0.5])
def test_ising_energies_of_neel_stripe_and_ferromagnet(J2):
    """Classical energies per site (S = 1/2): Neel -1/2 + J2/2, stripe -J2/2, ferromagnet
    1/2 + J2/2; at J2 = 1/2 Neel and stripe are degenerate. Parallel neighbours: 0, 1/2, 1."""
    system = build_system(4, J2)
    positions = np.asarray(system.graph.positions)
    x, y = np.rint(positions[:, 0]).astype(int), np.rint(positions[:, 1]).astype(int)
    neel, stripe, ferro = (-1.0) ** (x + y), (-1.0) ** x, np.ones(16)
    energies = ising_energy_per_site(system, np.stack([neel, stripe, ferro]))
    np.testing.assert_allclose(energies, [-0.5 + J2 / 2, -J2 / 2, 0.5 + J2 / 2], atol=1e-12)
    np.testing.assert_allclose(parallel_fraction(system, np.stack([neel, stripe, ferro])),
                               [0.0, 0.5, 1.0])


def test_freezing_t5_changes_the_state_but_runs():
    result = freeze_ablation(initial_state("t5"), SMALL, n_samples_energy=256)
    assert np.isfinite(result["energy_frozen"]) and result["energy_frozen_error"] > 0
    assert result["energy_frozen"] != result["energy"]


# chunk 48 is the point of the test; NetKet's advice to use a power of two is expected
@pytest.mark.filterwarnings("ignore:For performance reasons, we suggest to use a power-of-two")
def test_analysis_samples_a_run_whose_chunk_does_not_divide_its_sample_count():
    """A run trained with chunk_size = 48 (a runtime setting) is analysed with M = 128 samples."""
    state = initial_state("t5")
    state = dataclasses.replace(state, config=state.config.replace(chunk_size=48, n_samples=96))
    moments = sampled_moments(state, SMALL)
    assert all(np.isfinite(m.index).all() and m.count == 128
               for layers in moments.values() for m in layers)
    assert state.variational_state(n_samples=100).chunk_size is None
    assert state.variational_state(n_samples=144).chunk_size == 48


def test_npz_round_trip_and_corruption(tmp_path):
    arrays = {"x": np.arange(6.0).reshape(2, 3), "name": np.array("L6_J0.5_nl1_t5_s0")}
    io.write_npz(tmp_path / "a.npz", arrays)
    back = io.read_npz(tmp_path / "a.npz", required=("x",))
    np.testing.assert_array_equal(back["x"], arrays["x"])
    assert str(back["name"]) == "L6_J0.5_nl1_t5_s0"
    (tmp_path / "b.npz").write_bytes(b"not a zip")
    with pytest.raises(io.CorruptFileError, match="b.npz"):
        io.read_npz(tmp_path / "b.npz")


# --- Shastry-Sutherland (paper Sec. 4.3) ------------------------------------------------------
def test_dimer_network_is_the_dimer_product_with_energy_minus_three_eighths():
    result = ss.check_full_sector(L=4, J=0.5, J_dimer=1.0)
    assert result["covers_every_site_once"] and result["next_nearest_neighbour"]
    assert result["orthogonal_triangles"]
    assert result["proportionality_error"] < 1e-12
    assert abs(result["energy_per_site"] - (-3 / 8)) < 1e-12
    assert abs(result["ground_state_energy_per_site"] - (-3 / 8)) < 1e-10  # dimer phase


def test_dimer_network_on_6x6_samples_is_an_eigenstate():
    result = ss.check_on_samples(L=6, n_samples=50, seed=1)
    assert result["ratio_spread"] < 1e-12
    assert result["energy_max_deviation"] < 1e-12
    assert result["random_broken_max_amplitude"] < 1e-12


def test_crossed_plaquette_dimers_are_not_shastry_sutherland():
    L = 4
    crossed = [(ss.site(L, p, 0), ss.site(L, p, 3)) for p in range(4)]
    crossed += [(ss.site(L, p, 1), ss.site(L, p, 2)) for p in range(4)]
    checks = ss.pattern_checks(L, np.array(crossed))
    assert checks["covers_every_site_once"] and checks["next_nearest_neighbour"]
    assert not checks["orthogonal_triangles"]
