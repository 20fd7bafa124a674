"""The symmetric-kernel SR update is NetKet's minSR update, to round-off."""

import jax
import netket as nk
import numpy as np
import optax
import pytest

from vitnqs import build_system
from vitnqs.config import RunConfig
from vitnqs.sr import SymmetricKernelVMC_SR, symmetric_gram
from vitnqs.train import build_variational_state


@pytest.mark.parametrize("n_blocks", [1, 3, 8])
def test_symmetric_gram_is_the_full_product(n_blocks):
    O = np.random.default_rng(0).normal(size=(50, 17))
    assert np.allclose(symmetric_gram(O, n_blocks), O @ O.T, rtol=0, atol=1e-12)


def _one_step(driver_type, on_the_fly):
    system = build_system(4, 0.5)
    config = RunConfig.from_dict(dict(L=4, J2=0.5, n_layers=1, attention="t5", d_model=8,
                                      n_heads=2, n_samples=64, n_chains=16))
    vstate = build_variational_state(config, system)
    driver = driver_type(system.local_energy_operator(), optax.sgd(0.01), diag_shift=1e-3,
                         variational_state=vstate, use_ntk=True, on_the_fly=on_the_fly)
    driver.run(1, out=None, show_progress=False)
    return jax.flatten_util.ravel_pytree(vstate.parameters)[0]


def test_update_equals_netket_minsr():
    reference = _one_step(nk.driver.VMC_SR, on_the_fly=False)
    symmetric = _one_step(SymmetricKernelVMC_SR, on_the_fly=False)
    on_the_fly = _one_step(SymmetricKernelVMC_SR, on_the_fly=True)  # NetKet's own path
    assert np.max(np.abs(symmetric - reference)) < 1e-10 * np.max(np.abs(reference))
    assert np.max(np.abs(on_the_fly - reference)) < 1e-8 * np.max(np.abs(reference))


def _one_rbm_step(driver_type, param_dtype):
    system = build_system(4, 0.5)
    vstate = nk.vqs.MCState(system.sampler(16), nk.models.RBM(param_dtype=param_dtype),
                            n_samples=64, seed=0, sampler_seed=1)
    driver = driver_type(system.local_energy_operator(), optax.sgd(0.01), diag_shift=1e-3,
                         variational_state=vstate, use_ntk=True, on_the_fly=False)
    driver.run(1, out=None, show_progress=False)
    return jax.flatten_util.ravel_pytree(vstate.parameters)[0], driver.mode


@pytest.mark.parametrize(("param_dtype", "mode"), [(float, "real"), (complex, "complex")])
def test_update_equals_netket_minsr_in_its_other_modes(param_dtype, mode):
    """The branches the ViT (real parameters, complex output) does not take: a real wave function
    (mode 'real': one kernel row per sample) and complex parameters (the update's [Re; Im]
    halves recombined), each one step of an RBM against NetKet's VMC_SR."""
    reference, reference_mode = _one_rbm_step(nk.driver.VMC_SR, param_dtype)
    symmetric, symmetric_mode = _one_rbm_step(SymmetricKernelVMC_SR, param_dtype)
    assert reference_mode == symmetric_mode == mode
    assert np.max(np.abs(symmetric - reference)) < 1e-10 * np.max(np.abs(reference))
