"""Faults: corrupted state files, results of another layout version."""

from __future__ import annotations

import pytest
from train_helpers import TINY_RUN

from vitnqs import io
from vitnqs.tables import summary_frame
from vitnqs.train import run


def _corrupt(path, keep_fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_unreadable_state_file_is_reported_with_its_path(tmp_path, damage):
    path = tmp_path / "state.msgpack"
    io.write_state(path, b"payload" * 1000)
    if damage == "truncate":
        _corrupt(path)
    else:
        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF
        path.write_bytes(bytes(data))
    with pytest.raises(io.CorruptFileError, match=str(path)):
        io.read_state(path)


def test_corrupted_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    """Stop a run at step 12 (checkpoints at 8 and 12), damage the newest, resume: same result."""
    reference = run(TINY_RUN, tmp_path / "reference", quiet=True)
    partial = tmp_path / "partial"
    with pytest.raises(RuntimeError):
        _train_until(partial, stop_at=12)
    checkpoint = partial / "checkpoint" / "state.msgpack"
    previous = partial / "checkpoint" / "state.prev.msgpack"
    assert checkpoint.exists() and previous.exists()
    _corrupt(checkpoint)
    resumed = run(TINY_RUN, partial, quiet=True)
    assert "skipping unreadable checkpoint" in (partial / "train.log").read_text()
    assert str(checkpoint) in (partial / "train.log").read_text()
    assert "restored checkpoint" in (partial / "train.log").read_text()
    assert resumed["energy_per_site"] == reference["energy_per_site"]
    assert io.read_state(partial / "snapshots" / "step_000024.msgpack") == io.read_state(
        tmp_path / "reference" / "snapshots" / "step_000024.msgpack")


def _train_until(run_dir, stop_at):
    """Run TINY_RUN and raise once `stop_at` steps are checkpointed, as a kill would."""
    import netket as nk

    original = nk.driver.VMC_SR.compute_loss_and_update

    def stop(driver):
        if driver.step_count == stop_at:
            raise RuntimeError("simulated kill")
        return original(driver)

    nk.driver.VMC_SR.compute_loss_and_update = stop
    try:
        run(TINY_RUN, run_dir, quiet=True)
    finally:
        nk.driver.VMC_SR.compute_loss_and_update = original


def test_summary_of_another_layout_version_gets_a_clear_message():
    old = {"run_id": "L6_J0.5_nl4_t5_s0", "summary_version": 0}
    with pytest.raises(ValueError, match="L6_J0.5_nl4_t5_s0.*summary_version 0.*version 1"):
        summary_frame([old])
    with pytest.raises(ValueError, match="summary_version None"):
        summary_frame([{"run_id": "x"}])
