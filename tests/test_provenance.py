"""Provenance records: what every analysis file carries beside it."""

from __future__ import annotations

import subprocess

import pytest
from train_helpers import TINY_RUN

from vitnqs import io, provenance


def test_recorded_writes_commit_device_time_and_settings_after_the_block(tmp_path):
    path = tmp_path / "result.provenance.json"
    with provenance.recorded(path, sampling={"n_samples": 6000}, run="results/runs/X"):
        assert not path.exists()  # written only once the result is
    record = io.read_json(path)
    assert record["settings"] == {"sampling": {"n_samples": 6000}, "run": "results/runs/X"}
    assert record["git_commit"] and " x" in record["device"]
    assert record["wall_seconds"] >= 0 and record["versions"]["netket"]


def test_recorded_names_the_commit_the_block_began_with(tmp_path, monkeypatch):
    """A commit made while an analysis runs does not relabel its result."""
    path = tmp_path / "result.provenance.json"
    monkeypatch.setenv("VITNQS_GIT_COMMIT", "a" * 40)
    with provenance.recorded(path):
        monkeypatch.setenv("VITNQS_GIT_COMMIT", "b" * 40)
    assert io.read_json(path)["git_commit"] == "a" * 40


def test_a_run_names_the_commit_its_process_began_with(tmp_path, monkeypatch):
    """A commit made while a run trains does not relabel it: the summary and the segment name
    the code that ran, the tree as the process started."""
    from vitnqs import segments
    from vitnqs.train import run

    monkeypatch.setenv("VITNQS_GIT_COMMIT", "a" * 40)
    original = provenance.device_name

    def device_then_commit():  # called as training starts: the checkout moves on from here
        monkeypatch.setenv("VITNQS_GIT_COMMIT", "b" * 40)
        return original()

    monkeypatch.setattr(provenance, "device_name", device_then_commit)
    summary = run({**TINY_RUN, "n_steps": 4, "n_samples_final": 64}, tmp_path, quiet=True)
    assert summary["git_commit"] == "a" * 40
    assert set(segments.read(tmp_path)["git_commit"]) == {"a" * 40}


def test_the_commit_is_dirty_for_changed_code_not_for_changed_results(tmp_path, monkeypatch):
    """Results unpacked into the checkout (a GPU call's run folders) are not the code that
    runs; a changed source file, config or workflow file is."""
    monkeypatch.delenv("VITNQS_GIT_COMMIT", raising=False)
    for name in ("src/pkg/code.py", "config/config.yaml", "results/runs/r/train.log"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("0\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    package = tmp_path / "src" / "pkg"
    (tmp_path / "results/runs/r/train.log").write_text("0\n1\n")
    (tmp_path / "results/runs/r2").mkdir()
    (tmp_path / "results/runs/r2/history.csv").write_text("new\n")
    assert provenance.git_commit(package) == head
    for name in ("config/config.yaml", "src/pkg/code.py"):
        (tmp_path / name).write_text("1\n")
        assert provenance.git_commit(package) == head + "+dirty", name
        subprocess.run([*git, "checkout", "-q", "--", name], check=True)
    assert provenance.git_commit(package) == head


def test_recorded_writes_nothing_when_the_block_fails(tmp_path):
    path = tmp_path / "result.provenance.json"
    with pytest.raises(ValueError):
        with provenance.recorded(path):
            raise ValueError("the analysis failed")
    assert not path.exists()


def test_installed_version_is_the_package_metadata_and_matches_the_source():
    """pyproject takes the version from ``vitnqs.__version__``: one place for it."""
    import vitnqs

    assert provenance.package_version("vitnqs") == vitnqs.__version__


def test_a_package_run_from_its_source_tree_records_its_version_not_only_not_installed(monkeypatch):
    """GPU nodes import vitnqs through PYTHONPATH=src, without package metadata."""
    import vitnqs

    def no_metadata(name):
        raise provenance.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(provenance.metadata, "version", no_metadata)
    assert (provenance.package_version("vitnqs")
            == f"{vitnqs.__version__} (source tree, not installed)")
    assert provenance.package_version("no_such_package_here") == "not installed"


def test_a_gpu_shared_by_several_runs_is_named_so_one_run_alone_is_not(monkeypatch):
    monkeypatch.setenv(provenance.RUNS_ON_GPU_VARIABLE, "2")
    shared = provenance.device_name()
    assert shared.endswith(" x1 shared by 2 runs")
    monkeypatch.setenv(provenance.RUNS_ON_GPU_VARIABLE, "1")
    assert provenance.device_name() == shared.removesuffix(" shared by 2 runs")
    monkeypatch.delenv(provenance.RUNS_ON_GPU_VARIABLE)
    assert provenance.device_name() == shared.removesuffix(" shared by 2 runs")


@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5"])
def test_a_malformed_runs_on_gpu_count_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv(provenance.RUNS_ON_GPU_VARIABLE, value)
    with pytest.raises(ValueError, match=provenance.RUNS_ON_GPU_VARIABLE):
        provenance.device_name()
