"""GPUs per training job: visible GPUs and file-lock claims, without any GPU."""

from __future__ import annotations

import os
import threading

import pytest

from vitnqs.gpus import LOCK_DIR_VARIABLE, claim_gpus, visible_gpus


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(LOCK_DIR_VARIABLE, str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("value, expected", [("0,1", ["0", "1"]), ("", []), ("-1", []),
                                             ("GPU-ab12", ["GPU-ab12"])])
def test_visible_gpus_follows_cuda_visible_devices(monkeypatch, value, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert visible_gpus() == expected


def test_concurrent_jobs_claim_different_gpus(monkeypatch, lock_dir):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    with claim_gpus() as first:
        assert first == "3" and os.environ["CUDA_VISIBLE_DEVICES"] == "3"
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # the environment a second job sees
        with claim_gpus() as second:
            assert second == "5" and os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    with claim_gpus() as again:
        assert again == "3"  # released when the first job ended


def test_a_single_gpu_or_none_is_used_without_locks(monkeypatch, lock_dir):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # e.g. a SLURM job with one card
    with claim_gpus() as gpu:
        assert gpu == "0"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with claim_gpus() as gpu:
        assert gpu is None
    assert not list(lock_dir.iterdir())


def test_a_job_can_claim_several_gpus_and_never_holds_half_of_them(monkeypatch, lock_dir):
    """Two-GPU jobs on a four-GPU machine: two run at once on disjoint pairs; a third waits
    (holding no card meanwhile) until a pair is free."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    with claim_gpus(2) as first:
        assert first == "0,1" and os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
        with claim_gpus(2) as second:
            assert second == "2,3"
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
            claimed, done = [], threading.Event()

            def third_job():
                with claim_gpus(2, poll_seconds=0.01) as gpus:
                    claimed.append(gpus)
                done.set()

            waiting = threading.Thread(target=third_job)
            waiting.start()
            assert not done.wait(0.3) and not claimed  # every pair is taken
        # the second job ended: the third takes its pair
        assert done.wait(5) and claimed == ["2,3"]
        waiting.join()


def test_a_job_that_sees_fewer_gpus_than_it_asks_for_stops(monkeypatch, lock_dir):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(RuntimeError, match="asks for 2 GPUs but sees 1"):
        with claim_gpus(2):
            pass
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # a SLURM job given its two cards
    with claim_gpus(2) as gpus:
        assert gpus == "4,6"
    assert not list(lock_dir.iterdir())
    with pytest.raises(ValueError, match="positive number of GPUs"):
        with claim_gpus(0):
            pass
