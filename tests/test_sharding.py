"""A run split over several devices (NetKet's sharding) is the same run: four CPU devices here
stand in for four GPUs (NETKET_EXPERIMENTAL_SHARDING_CPU=4 in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from train_helpers import kill_training_at, train_in_subprocess, write_config

from vitnqs import io

FOUR_DEVICES = {"NETKET_EXPERIMENTAL_SHARDING_CPU": "4"}

SAME_STATE_CHECK = """
import jax, numpy as np
from vitnqs import build_system
from vitnqs.config import RunConfig
from vitnqs.train import build_variational_state
assert jax.device_count() == 4
system = build_system(4, 0.5)
config = RunConfig.from_dict(dict(L=4, J2=0.5, n_layers=1, attention="t5", d_model=8, n_heads=2,
                                  n_samples=64, n_chains=16, seed=3))
vstate = build_variational_state(config, system)
assert len(vstate.samples.sharding.device_set) == 4
ours = vstate.local_estimators(system.local_energy_operator(block_size=64)).data
netket = vstate.local_estimators(system.hamiltonian).data
print(np.max(np.abs(np.asarray(ours) - np.asarray(netket))))
"""


@pytest.fixture
def four_devices(monkeypatch):
    for key, value in FOUR_DEVICES.items():
        monkeypatch.setenv(key, value)


def _energies(run_dir):
    return io.read_csv(run_dir / "history.csv", required=("energy",))["energy"].to_numpy()


def test_sharded_local_energies_are_netkets(four_devices):
    """Each device packs its own samples' antiparallel bonds: still NetKet's local energies."""
    result = subprocess.run([sys.executable, "-c", SAME_STATE_CHECK], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.split()[-1]) < 1e-12


def test_run_on_four_devices_is_the_single_device_run(uninterrupted, tmp_path, four_devices):
    """Same samples (NetKet draws the chains independently of the device count), same updates:
    the optimization and the final energy agree to round-off."""
    run_dir = tmp_path / "run"
    result = train_in_subprocess(write_config(tmp_path / "run.yaml"), run_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    sharded, single = (io.read_json(run_dir / "summary.json"),
                       io.read_json(uninterrupted / "summary.json"))
    assert sharded["device"].endswith("x4") and single["device"].endswith("x1")
    assert np.allclose(_energies(run_dir), _energies(uninterrupted), rtol=1e-8, atol=0)
    assert sharded["energy_per_site"] == pytest.approx(single["energy_per_site"], rel=1e-8)


def test_checkpoint_resumes_on_another_number_of_devices(uninterrupted, tmp_path, monkeypatch):
    """Killed on one device at step 10, continued on four: the run ends where it would have."""
    config, run_dir = write_config(tmp_path / "run.yaml"), tmp_path / "run"
    assert kill_training_at(config, run_dir, "step", 11)
    for key, value in FOUR_DEVICES.items():
        monkeypatch.setenv(key, value)
    result = train_in_subprocess(config, run_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.allclose(_energies(run_dir), _energies(uninterrupted), rtol=1e-8, atol=0)
    assert io.read_json(run_dir / "summary.json")["energy_per_site"] == pytest.approx(
        io.read_json(uninterrupted / "summary.json")["energy_per_site"], rel=1e-8)


def test_chains_that_do_not_split_over_the_devices_are_refused_before_any_write(tmp_path,
                                                                               monkeypatch):
    """16 chains over three devices: NetKet would silently train 18 chains and 72 samples per
    step, another run than the configured one. Training stops first, naming the numbers."""
    monkeypatch.setenv("NETKET_EXPERIMENTAL_SHARDING_CPU", "3")
    run_dir = tmp_path / "run"
    result = train_in_subprocess(write_config(tmp_path / "run.yaml"), run_dir)
    assert result.returncode == 2
    assert "n_chains=16 does not split over the 3 devices" in result.stderr
    assert "18 chains" in result.stderr and not run_dir.exists()
