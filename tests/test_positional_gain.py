"""The gain of the unnormalized positional term p of decoupled and factored attention."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_sz0_configurations
from train_helpers import TINY_RUN, write_config

from vitnqs import io, load_run
from vitnqs.analysis import attention_weights, fixed_inputs
from vitnqs.config import POSITIONAL_INITS, RunConfig
from vitnqs.model import POSITIONAL_INITIALIZERS
from vitnqs.positional_gain import gain_rows, gain_table, positional_gain, scale_sensitivity
from vitnqs.train import build_model, run


def initial_network(attention: str, **changes):
    config = RunConfig.from_dict({**TINY_RUN, "attention": attention, **changes})
    model = build_model(config)
    return config, model, model.init(jax.random.PRNGKey(1), jnp.ones((1, config.n_sites)))


@pytest.mark.parametrize("attention", ["decoupled", "factored"])
def test_gain_is_the_sum_of_every_row_of_the_positional_weights(attention):
    """p depends on i - j on the patch torus: every row holds the same numbers, permuted."""
    config, model, variables = initial_network(attention, L=6, n_layers=2)
    spins = random_sz0_configurations(config.n_sites, 5)
    term = "positional" if attention == "decoupled" else "attention"
    weights_per_layer = attention_weights(model, variables, spins)[term]
    gain = positional_gain(variables["params"])
    assert gain.shape == (2, config.n_heads)
    for layer, positional_HxPxP in enumerate(weights_per_layer):
        row_sums_HxP = np.abs(positional_HxPxP).sum(axis=-1)
        np.testing.assert_allclose(row_sums_HxP, np.broadcast_to(gain[layer][:, None],
                                                                 row_sums_HxP.shape), rtol=1e-12)


def test_decoupled_rows_sum_to_one_plus_the_positional_row():
    """The softmax part of a decoupled row sums to 1; p adds its signed row sum, bounded by the
    gain: alpha is normalized only when p is."""
    config, model, variables = initial_network("decoupled", L=6)
    weights = attention_weights(model, variables, random_sz0_configurations(config.n_sites, 4))
    alpha_BxHxPxP, p_HxPxP = weights["attention"][0], weights["positional"][0]
    np.testing.assert_allclose(alpha_BxHxPxP.sum(axis=-1),
                               np.broadcast_to(1.0 + p_HxPxP.sum(axis=-1), (4, *p_HxPxP.shape[:2])),
                               rtol=1e-12)
    assert np.all(np.abs(p_HxPxP.sum(axis=-1)) <= positional_gain(variables["params"])[0][:, None])


def test_initial_gain_grows_with_the_number_of_patches():
    """Xavier-uniform p of shape (H, P): entries up to sqrt(6 / (H + P)), so a row of P of them
    sums to about P sqrt(6 / (H + P)) / 2 in absolute value, more on a larger lattice (the
    committed 6x6, 8x8, 10x10 runs start at 3.5, 5.2, 6.6 with H = 10)."""
    means = []
    for L in (4, 8, 12):
        config, _, variables = initial_network("factored", L=L, n_heads=4, d_model=16, n_layers=4)
        n_patches = config.n_sites // config.patch_size**2
        expected = n_patches * np.sqrt(6 / (config.n_heads + n_patches)) / 2
        means.append(positional_gain(variables["params"]).mean())
        assert means[-1] == pytest.approx(expected, rel=0.25)
    assert means[0] < means[1] < means[2]


def scaled_p(variables, factor):
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: leaf * factor if path[-1].key == "p" else leaf, variables)


@pytest.mark.parametrize("attention", ["decoupled", "factored"])
def test_the_size_of_a_dominant_p_is_a_flat_direction_of_log_psi(attention):
    """The LayerNorms remove the scale of what dominates the residual stream: at initialization
    scaling p by 1.1 changes log|psi| by a fair part of its spread over configurations; once p
    dominates, by a part that falls as 1/|p| (the failed 10x10 runs sit there)."""
    config, model, variables = initial_network(attention, L=6, n_layers=2)
    spins = fixed_inputs(config.L, 100)
    at_init = scale_sensitivity(model, variables, spins)
    dominant = [scale_sensitivity(model, scaled_p(variables, f), spins) for f in (1e3, 1e4)]
    assert at_init > 0.05
    assert dominant[0] / dominant[1] == pytest.approx(10, rel=0.2)
    assert dominant[1] < 1e-3 * at_init * 2


def test_scale_sensitivity_is_zero_when_the_values_are_zero():
    """With V = 0 attention adds nothing, whatever p is."""
    config, model, variables = initial_network("factored", L=6, n_layers=2)
    no_values = jax.tree_util.tree_map_with_path(
        lambda path, leaf: leaf * 0 if path[-2].key == "V" else leaf, variables)
    assert scale_sensitivity(model, no_values, fixed_inputs(config.L, 50)) == 0.0


def test_softmax_scale_init_starts_every_lattice_at_the_same_gain():
    """p uniform in [-1/P, 1/P]: a row's gain sum_j |p| starts near 1/2, at most 1 (a softmax
    row's), whatever the number of patches P."""
    for L in (4, 8, 12):
        config, _, variables = initial_network("decoupled", L=L, n_heads=4, d_model=16,
                                               n_layers=4, positional_init="softmax-scale")
        n_patches = config.n_sites // config.patch_size**2
        p_values = np.concatenate([np.ravel(block["attention"]["p"])
                                   for name, block in variables["params"].items()
                                   if name.startswith("block_")])
        assert np.abs(p_values).max() <= 1 / n_patches
        gain = positional_gain(variables["params"])
        assert gain.max() <= 1.0 and gain.mean() == pytest.approx(0.5, abs=0.15)


def test_every_name_a_config_accepts_has_an_initializer():
    assert tuple(POSITIONAL_INITIALIZERS) == POSITIONAL_INITS


def test_runs_written_before_positional_init_existed_are_the_xavier_runs():
    """A config.yaml without the key (every committed run) describes the same run as 'xavier',
    so those runs resume; 'softmax-scale' is another run."""
    old = {key: value for key, value in TINY_RUN.items() if key != "positional_init"}
    assert (RunConfig.from_dict(old).science()
            == RunConfig.from_dict({**old, "positional_init": "xavier"}).science())
    assert (RunConfig.from_dict(old).science()
            != RunConfig.from_dict({**old, "positional_init": "softmax-scale"}).science())


@pytest.fixture(scope="module")
def decoupled_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("gain") / "decoupled"
    run({**TINY_RUN, "attention": "decoupled", "n_steps": 4, "snapshot_steps": [0]}, run_dir,
        quiet=True)
    return run_dir


def test_rows_give_each_layer_the_gain_at_initialization_and_at_the_end(decoupled_run):
    rows = gain_rows(decoupled_run)
    assert [row["layer"] for row in rows] == list(range(TINY_RUN["n_layers"]))
    initial, final = load_run(decoupled_run, step=0), load_run(decoupled_run)
    for row in rows:
        assert (row["step_init"], row["step_end"]) == (0, 4)
        layer = row["layer"]
        assert row["gain_init"] == pytest.approx(
            positional_gain(initial.variables["params"])[layer].max(), rel=1e-6)
        assert row["gain_end"] == pytest.approx(
            positional_gain(final.variables["params"])[layer].max(), rel=1e-12)
        assert row["gain_end"] != pytest.approx(row["gain_init"], rel=1e-9)  # training moved p
        assert row["scale_sensitivity_end"] == pytest.approx(scale_sensitivity(
            final.model, final.variables, fixed_inputs(final.config.L, 200)))
        assert row["relative_error"] == io.read_json(decoupled_run / "summary.json")[
            "relative_error"]
    assert len(gain_table([decoupled_run, decoupled_run])) == 2 * len(rows)


def test_t5_is_refused_because_its_p_is_a_logit(tmp_path):
    write_config(tmp_path / "config.yaml", attention="t5")
    with pytest.raises(ValueError, match="logit"):
        gain_rows(tmp_path)


def test_a_run_without_two_snapshots_is_named(tmp_path):
    write_config(tmp_path / "config.yaml", attention="factored")
    with pytest.raises(FileNotFoundError, match="two parameter snapshots"):
        gain_rows(tmp_path)
