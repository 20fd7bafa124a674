"""float32 network passes (forward_dtype): close to float64, and a run with them trains,
checkpoints and resumes like any other."""

import numpy as np
from train_helpers import TINY_RUN

from vitnqs import build_system
from vitnqs.config import RunConfig
from vitnqs.precision import MixedPrecisionMCState
from vitnqs.train import build_variational_state, run


def test_float32_local_energies_are_close_to_float64():
    system = build_system(4, 0.5)
    config = RunConfig.from_dict({**TINY_RUN, "n_samples": 128})
    exact = build_variational_state(config, system)
    mixed = build_variational_state(config.replace(forward_dtype="float32"), system)
    assert isinstance(mixed, MixedPrecisionMCState)
    mixed._samples = exact.samples  # the same samples through both networks
    op = system.local_energy_operator()
    e64 = np.asarray(exact.local_estimators(op).data)
    e32 = np.asarray(mixed.local_estimators(op).data)
    # float32 rounding: 1.1e-6 of the largest local energy measured (session 32); TF32 products,
    # what the float32 network must not use, give ~1e-4 (test below, precision.py)
    assert 0 < np.max(np.abs(e32 - e64)) < 1e-5 * np.max(np.abs(e64))


def test_a_float32_run_restores_from_its_checkpoint(tmp_path):
    """The mixed-precision state goes through NetKet's serialization: removing the summary
    and rerunning restores the final checkpoint and gives the same final energy."""
    config = {**TINY_RUN, "forward_dtype": "float32", "n_steps": 8}
    first = run(config, tmp_path, quiet=True)
    assert first["config"]["forward_dtype"] == "float32" and np.isfinite(first["energy_per_site"])
    (tmp_path / "summary.json").unlink()
    again = run(config, tmp_path, quiet=True)
    assert again["energy_per_site"] == first["energy_per_site"]
    assert "restored checkpoint" in (tmp_path / "train.log").read_text()


def test_float32_passes_multiply_in_full_float32():
    """No TF32: every matrix product of the float32 network is lowered at HIGHEST precision
    (on a GPU the default precision multiplies float32 in TF32, 1e-4 relative in energies)."""
    import jax
    import jax.numpy as jnp

    from vitnqs.config import RunConfig
    from vitnqs.precision import float32_model
    from vitnqs.train import build_model

    model = build_model(RunConfig.from_dict(dict(L=4, J2=0.5, n_layers=2, attention="decoupled",
                                                 d_model=8, n_heads=2)))
    forward = float32_model(model)
    x = jnp.ones((3, 16), jnp.float32)
    variables = model.init(jax.random.PRNGKey(0), x)
    assert jax.tree_util.tree_structure(forward.init(jax.random.PRNGKey(0), x)) == \
        jax.tree_util.tree_structure(variables)  # the same parameter tree
    text = jax.jit(forward.apply).lower(variables, x).as_text()
    dots = [line for line in text.splitlines() if "dot_general" in line]
    assert dots and all("precision = [HIGHEST, HIGHEST]" in line for line in dots)
