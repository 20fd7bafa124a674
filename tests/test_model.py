"""The ViT wave function: the paper's parameter counts, symmetries, attention weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_sz0_configurations, small_vit

from vitnqs import ViT, count_parameters
from vitnqs.config import ConfigError
from vitnqs.model import extract_patches, relative_position_index

PAPER_PARAMETER_COUNTS = {  # shared/paper.md, "ViT wave function", item 5
    (6, "factored"): 154_980, (6, "t5"): 184_260, (6, "decoupled"): 184_260,
    (8, "factored"): 155_260, (8, "t5"): 184_540, (8, "decoupled"): 184_540,
    (10, "factored"): 155_620, (10, "t5"): 184_900, (10, "decoupled"): 184_900,
}


@pytest.mark.parametrize(("L", "attention"), sorted(PAPER_PARAMETER_COUNTS))
def test_parameter_count_matches_paper(L, attention):
    model = ViT(n_layers=4, d_model=60, n_heads=10, patch_size=2, attention=attention)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.ones((1, L * L)))
    assert count_parameters(shapes) == PAPER_PARAMETER_COUNTS[(L, attention)]


def _translate(spins_BxN, L, shift_row, shift_col):
    grid = spins_BxN.reshape(-1, L, L)
    return np.roll(grid, (shift_row, shift_col), axis=(1, 2)).reshape(-1, L * L)


@pytest.mark.parametrize("use_jit", [False, True])
def test_log_psi_is_invariant_under_patch_translations(mechanism, use_jit):
    L = 6
    model = small_vit(mechanism)
    spins = random_sz0_configurations(L * L, 5, seed=1)
    variables = model.init(jax.random.PRNGKey(3), spins)
    apply = jax.jit(model.apply) if use_jit else model.apply
    log_psi = apply(variables, spins)
    assert log_psi.dtype == jnp.complex128
    assert np.all(np.isfinite(log_psi))
    for shift in [(2, 0), (0, 2), (4, 2)]:
        shifted = apply(variables, _translate(spins, L, *shift))
        np.testing.assert_allclose(shifted, log_psi, rtol=1e-10, atol=1e-10)
    # a translation by one site is not a symmetry of the patch decomposition
    assert not np.allclose(apply(variables, _translate(spins, L, 1, 0)), log_psi)


def _attention_weights(model, variables, spins):
    _, state = model.apply(variables, spins, mutable=["intermediates"])
    return state["intermediates"]


def test_attention_is_recorded_only_on_request(mechanism):
    model = small_vit(mechanism, n_layers=1)
    spins = random_sz0_configurations(16, 3)
    variables = model.init(jax.random.PRNGKey(0), spins)
    assert "intermediates" not in variables
    plain = model.apply(variables, spins)
    recorded, state = model.apply(variables, spins, mutable=["intermediates"])
    np.testing.assert_array_equal(plain, recorded)
    keys = set(state["intermediates"]["block_0"]["attention"])
    expected = {"attention", "softmax", "positional"} if mechanism == "decoupled" else {"attention"}
    assert keys == expected


def test_factored_weights_do_not_depend_on_the_input():
    model = small_vit("factored")
    variables = model.init(jax.random.PRNGKey(0), jnp.ones((1, 16)))
    a = _attention_weights(model, variables, random_sz0_configurations(16, 4, seed=1))
    b = _attention_weights(model, variables, random_sz0_configurations(16, 4, seed=2))
    for layer in ("block_0", "block_1"):
        (alpha_a,), (alpha_b,) = (a[layer]["attention"]["attention"],
                                  b[layer]["attention"]["attention"])
        assert alpha_a.shape == (2, 4, 4)
        np.testing.assert_array_equal(alpha_a, alpha_b)


@pytest.mark.parametrize("attention", ["t5", "decoupled"])
def test_query_key_weights_depend_on_the_input_at_initialization(attention):
    model = small_vit(attention)
    spins = random_sz0_configurations(36, 6, seed=4)
    variables = model.init(jax.random.PRNGKey(1), spins)
    (alpha_BxHxPxP,) = _attention_weights(
        model, variables, spins
    )["block_0"]["attention"]["attention"]
    spread = np.std(np.asarray(alpha_BxHxPxP), axis=0)
    assert spread.mean() > 1e-3


def test_t5_rows_sum_to_one():
    model = small_vit("t5")
    spins = random_sz0_configurations(36, 3)
    variables = model.init(jax.random.PRNGKey(2), spins)
    (alpha,) = _attention_weights(model, variables, spins)["block_1"]["attention"]["attention"]
    np.testing.assert_allclose(np.asarray(alpha).sum(axis=-1), 1.0, rtol=1e-12)


def test_decoupled_without_queries_and_keys_is_factored_shifted_by_one_over_n():
    decoupled, factored = small_vit("decoupled", n_layers=1), small_vit("factored", n_layers=1)
    spins = random_sz0_configurations(36, 3)
    variables = decoupled.init(jax.random.PRNGKey(5), spins)
    params = jax.tree_util.tree_map(lambda x: x, variables["params"])
    for name in ("Q", "K"):
        params["block_0"]["attention"][name] = jax.tree_util.tree_map(
            jnp.zeros_like, params["block_0"]["attention"][name]
        )
    (alpha_dec,) = _attention_weights(
        decoupled, {"params": params}, spins
    )["block_0"]["attention"]["attention"]
    factored_params = jax.tree_util.tree_map(lambda x: x, params)
    for name in ("Q", "K"):
        del factored_params["block_0"]["attention"][name]
    (alpha_fac,) = _attention_weights(
        factored, {"params": factored_params}, spins
    )["block_0"]["attention"]["attention"]
    n_patches = 9
    expected = np.broadcast_to(alpha_fac + 1 / n_patches, alpha_dec.shape)
    np.testing.assert_allclose(alpha_dec, expected, rtol=1e-12, atol=1e-14)


def test_relative_position_index_is_a_torus_displacement():
    index = relative_position_index(3)
    assert index.shape == (9, 9)
    assert np.all(np.diag(index) == 0)
    # a displacement and its opposite on a 3 x 3 torus: (1, 0) <-> (2, 0)
    assert index[3, 0] == 3 and index[0, 3] == 6


def test_patches_are_row_major_blocks():
    spins = np.arange(16.0)[None]
    patches = extract_patches(jnp.asarray(spins), 2)
    np.testing.assert_array_equal(patches[0, 0], [0, 1, 4, 5])
    np.testing.assert_array_equal(patches[0, 1], [2, 3, 6, 7])
    np.testing.assert_array_equal(patches[0, 2], [8, 9, 12, 13])


@pytest.mark.parametrize(
    ("kwargs", "L", "name"),
    [
        ({"patch_size": 4}, 6, "patch_size"),
        ({"n_heads": 7}, 4, "n_heads"),
        ({"attention": "softmax"}, 4, "attention"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, L, name):
    model = ViT(**{"n_layers": 1, "d_model": 8, "n_heads": 2, "patch_size": 2, **kwargs})
    with pytest.raises(ConfigError, match=name):
        model.init(jax.random.PRNGKey(0), jnp.ones((1, L * L)))


def test_odd_number_of_sites_is_refused():
    model = ViT(n_layers=1, d_model=8, n_heads=2, patch_size=1)
    with pytest.raises(ConfigError, match="odd number of sites"):
        model.init(jax.random.PRNGKey(0), jnp.ones((1, 9)))
