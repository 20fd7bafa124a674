"""One GPU per training job: visible GPUs and file-lock claims, without any GPU."""

from __future__ import annotations

import os

import pytest

from vitnqs.gpus import LOCK_DIR_VARIABLE, claim_gpu, visible_gpus


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
    with claim_gpu() as first:
        assert first == "3" and os.environ["CUDA_VISIBLE_DEVICES"] == "3"
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # the environment a second job sees
        with claim_gpu() as second:
            assert second == "5" and os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    with claim_gpu() as again:
        assert again == "3"  # released when the first job ended


def test_a_single_gpu_or_none_is_used_without_locks(monkeypatch, lock_dir):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # e.g. a SLURM job with one card
    with claim_gpu() as gpu:
        assert gpu == "0"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with claim_gpu() as gpu:
        assert gpu is None
    assert not list(lock_dir.iterdir())
