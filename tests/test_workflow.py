"""The Snakemake workflow: lint, config errors, fresh-clone behaviour, the quick grid end to end.

Every test works on a copy of the repository as a commit would hold it (tracked files and
untracked ones git does not ignore), with all mtimes set equal as after a `git clone`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from train_helpers import copy_tree, planned_jobs, snakemake, tree_state, write_yaml

from vitnqs import io
from vitnqs.workflow_config import build_run_grid

TINY = {
    # config/quick.yaml shrunk further for CI: 4 runs of 4 steps.
    "protocols": {"quick": {"n_steps": 4, "n_samples": 64, "n_chains": 16,
                            "n_samples_final": 128}},
    "groups": {
        "table1": [{"protocol": "quick", "L": 4, "J2": 0.5, "n_layers": 1,
                    "attention": ["t5", "decoupled", "factored"]}],
        "fig2": [{"protocol": "quick", "L": 4, "J2": [0.0, 0.5], "n_layers": 1,
                  "attention": "factored"}],
        "fig3": [{"protocol": "quick", "L": 4, "J2": 0.5, "n_layers": 1,
                  "attention": ["t5", "decoupled", "factored"]}],
        "fig4": [{"protocol": "quick", "L": 4, "J2": 0.5, "n_layers": 1, "attention": "t5"}],
    },
}
RENDERED = ("tables", "figures", "logs")
"""Folders of a results tree that Snakemake renders (git-ignored)."""
FIGURES = ("tables/table1.csv", "tables/table1.md", "tables/table1.tex", "figures/fig2.png",
           "figures/fig2.pdf", "figures/fig3.png", "figures/fig3.pdf")


def set_equal_mtimes(root: Path, when: float = 1.7e9) -> None:
    """Give every file and folder the same mtime, as a fresh `git clone` (nearly) does."""
    for path in [root, *root.rglob("*")]:
        os.utime(path, (when, when))


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh clone: the committed tree, committed results included, all mtimes equal."""
    tree = copy_tree(tmp_path_factory.mktemp("clone"))
    set_equal_mtimes(tree)
    return tree


def test_lint_passes(clone):
    result = snakemake(clone, "--lint")
    assert result.returncode == 0, result.stdout


SAMPLING_RULES = ("train", "attention_maps", "input_dependence", "freeze_ablation",
                  "shastry_sutherland", "benchmark_step")
"""Rules that train or sample (minutes to hours); the rest render tables and figures."""


def test_fresh_clone_plans_no_training_and_no_sampling(clone):
    """The main job on a fresh clone only renders: every committed run and analysis file is
    used as it is (benchmark_step, a GPU job, runs only when asked for by name)."""
    result = snakemake(clone, "--cores", "all", "--dry-run")
    assert result.returncode == 0, result.stdout
    planned = planned_jobs(result.stdout)
    assert planned and not set(planned) & set(SAMPLING_RULES), planned


def test_every_committed_analysis_file_has_its_provenance(clone):
    """Written by the analysis rule, or (files computed before the rules wrote records) by
    results/analysis/reconstruct_provenance.py, which says so in the record."""
    analysis = clone / "results" / "analysis"
    files = [p for p in analysis.glob("*/*") if not p.name.endswith(".provenance.json")]
    files.append(analysis / "shastry_sutherland.json")
    for path in files:
        record = io.read_json(path.with_name(path.stem + ".provenance.json"))
        assert re.fullmatch("[0-9a-f]{40}", record["git_commit"]), path  # a clean commit
        assert record["device"] and record["settings"], path
        assert (record["wall_seconds"]
                or "reconstruct_provenance.py" in record["reconstructed"]), path


def test_a_committed_sr_spectrum_probe_is_drawn_by_the_main_job(tmp_path):
    """The SR-spectrum figure is part of `all` once a probe's CSV (a GPU job's output) is
    committed under results/probes/sr_spectrum/, and renders from it alone."""
    from vitnqs.sr_spectrum import step_at_shifts

    figure = "results/figures/fig_sr_spectrum.png"
    tree = copy_tree(tmp_path / "tree")
    probes = tree / "results/probes/sr_spectrum"
    shutil.rmtree(probes, ignore_errors=True)  # without a probe `all` leaves the figure out
    set_equal_mtimes(tree)
    result = snakemake(tree, "--cores", "all", "--dry-run")
    assert result.returncode == 0 and "fig_sr_spectrum" not in planned_jobs(result.stdout)
    w, c = np.geomspace(1e-5, 10, 32), np.linspace(-1, 1, 32)
    rows = [{"run_id": "L4_J0.5_nl1_t5_s0_quick", "diag_shift": 1e-3, "step": step,
             "n_samples": 64, "energy": -0.1 * step, **row}
            for step in (0, 5) for row in step_at_shifts(w, c, (1e-3, 1e-2))]
    probes.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(probes / "L4_J0.5_nl1_t5_s0_quick.csv", index=False)
    set_equal_mtimes(tree)
    result = snakemake(tree, "--cores", "all", "--dry-run")
    assert planned_jobs(result.stdout).get("fig_sr_spectrum") == 1, result.stdout
    rendered = snakemake(tree, "--cores", "1", figure)
    assert rendered.returncode == 0, rendered.stdout[-3000:]
    assert (tree / figure).stat().st_size > 0


def test_a_finished_t5_run_without_queries_and_keys_gets_no_query_key_analysis(tmp_path):
    """Input dependence and the freeze ablation measure query-key weights: with its analyses
    removed, the finished t5 `reduced` seed 0 gets both planned again; the finished same seed
    without queries and keys (alpha = softmax_j(p), the same for every input) neither."""
    tree = copy_tree(tmp_path / "tree")
    with_qk, without_qk = "L6_J0.5_nl4_t5_s0_reduced", "L6_J0.5_nl4_t5_s0_reduced-no-qk"
    for run in (with_qk, without_qk):
        assert (tree / "results/runs" / run / "summary.json").exists(), run
    analysis = tree / "results/analysis"
    (analysis / "input_dependence" / f"{with_qk}.csv").unlink(missing_ok=True)
    (analysis / "freeze_ablation" / f"{with_qk}.json").unlink(missing_ok=True)
    set_equal_mtimes(tree)
    result = snakemake(tree, "--cores", "all", "--dry-run")
    assert result.returncode == 0, result.stdout[-3000:]
    planned = planned_jobs(result.stdout)
    assert planned.get("input_dependence") == 1 and planned.get("freeze_ablation") == 1, planned
    assert f"input_dependence/{with_qk}.csv" in result.stdout
    assert f"freeze_ablation/{with_qk}.json" in result.stdout
    assert "reduced-no-qk.csv" not in result.stdout and "reduced-no-qk.json" not in result.stdout


def test_benchmark_target_plans_one_job_per_configuration(clone):
    result = snakemake(clone, "--cores", "all", "--dry-run", "benchmark")
    assert result.returncode == 0, result.stdout
    assert planned_jobs(result.stdout) == {"benchmark_step": 9, "benchmark": 1}


def test_train_all_or_a_run_path_trains_what_is_missing(clone, tmp_path):
    """A run added by one config line is missing, with whatever else has no summary.json yet:
    train_all plans exactly those, and the run's summary path plans that run alone."""
    added = {"groups": {"added": [{"protocol": "short", "L": 4, "J2": 0.5, "n_layers": 1,
                                   "attention": "t5", "seed": 7}]}}
    config = yaml.safe_load((clone / "config/config.yaml").read_text())
    config["groups"].update(added["groups"])
    missing = [r for r in build_run_grid(config).runs
               if not (clone / "results/runs" / r / "summary.json").exists()]
    assert "L4_J0.5_nl1_t5_s7_short" in missing
    configs = [write_yaml(tmp_path / "added.yaml", added)]
    result = snakemake(clone, "--cores", "all", "--dry-run", "train_all", configs=configs)
    assert planned_jobs(result.stdout).get("train", 0) == len(missing), result.stdout
    target = "results/runs/L4_J0.5_nl1_t5_s7_short/summary.json"
    result = snakemake(clone, "--cores", "all", "--dry-run", target, configs=configs)
    assert planned_jobs(result.stdout) == {"train": 1}, result.stdout


@pytest.mark.parametrize("override, message", [
    ({"groups": {"table1": [{"protocol": "paper", "L": 6, "J2": 0.5, "n_layers": 4,
                             "attention": "softmax"}]}}, "['attention']"),
    ({"groups": {"table1": [{"protocol": "paper", "L": 6, "J2": 0.5, "n_layers": 4,
                             "attention": "t5", "n_heads": 7}]}},
     "groups.table1[0] (protocol 'paper'): n_heads=7 does not divide d_model=60"),
    ({"groups": {"table1": [{"protocol": "fast", "L": 6, "J2": 0.5, "n_layers": 4,
                             "attention": "t5"}]}}, "groups.table1[0].protocol: 'fast'"),
])
def test_bad_config_stops_before_any_job(clone, tmp_path, override, message):
    result = snakemake(clone, "--cores", "all", "--dry-run",
                       configs=[write_yaml(tmp_path / "bad.yaml", override)])
    assert result.returncode != 0 and message in result.stdout
    assert not planned_jobs(result.stdout)


def test_conflicting_groups_are_both_named(clone, tmp_path):
    override = {"groups": {"fig4": [{"protocol": "short", "L": 6, "J2": 0.5, "n_layers": 1,
                                     "attention": "t5", "snapshot_steps": [0, 100]}]}}
    result = snakemake(clone, "--dry-run", configs=[write_yaml(tmp_path / "bad.yaml", override)])
    text = result.stdout
    assert result.returncode != 0 and "keys ['snapshot_steps'] differ" in text
    # the exact index of the fig2 block is test_workflow_config's; here, that both are named
    assert re.search(r"groups\.fig2\[\d+\]", text) and "groups.fig4[0]" in text


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[Path, list[str], subprocess.CompletedProcess, dict]:
    """The quick grid (shrunk to 4 runs of 4 steps) trained from scratch by Snakemake."""
    tree = copy_tree(tmp_path_factory.mktemp("quick"))
    configs = ["config/quick.yaml", write_yaml(tree / "tiny.yaml", TINY)]
    committed = tree_state(tree / "results", skip=RENDERED)
    result = snakemake(tree, "--cores", "2", configs=configs)
    return tree, configs, result, committed


@pytest.mark.timeout(1200)
def test_quick_grid_trains_and_renders_end_to_end(quick):
    tree, configs, result, committed = quick
    assert result.returncode == 0, result.stdout[-3000:]
    assert planned_jobs(result.stdout)["train"] == 4
    assert len(list(tree.glob("results-quick/runs/*/summary.json"))) == 4
    for name in FIGURES:
        assert (tree / "results-quick" / name).stat().st_size > 0, name
    assert "protocol quick (4 steps, M = 64)" in (
        tree / "results-quick/tables/table1.md").read_text()
    # four steps reach no window of the trajectory table: its rows are there, its windows blank
    trajectories = io.read_csv(tree / "results-quick/tables/trajectories.csv")
    assert len(trajectories) == 4 and trajectories["error_90_99"].isna().all()
    agreement = io.read_csv(tree / "results-quick/tables/mechanism_agreement.csv")
    assert sorted(agreement["attention"]) == ["decoupled", "factored", "factored", "t5"]
    # the freeze ablation of each query-key run, through its rule into its table
    ablation = io.read_csv(tree / "results-quick/analysis/table_freeze_ablation.csv")
    assert sorted(ablation["attention"]) == ["decoupled", "t5"]
    # the quick grid never touches results/
    assert tree_state(tree / "results", skip=RENDERED) == committed
    again = snakemake(tree, "--cores", "2", "--dry-run", configs=configs)
    assert "train" not in planned_jobs(again.stdout)
    # A run added to the config is listed as not started before any file of it exists.
    added = dict(TINY["groups"]["table1"][0], attention="t5", seed=1)
    more = write_yaml(tree / "added.yaml",
                      {"require_all_runs": False,
                       "groups": {"table1": [*TINY["groups"]["table1"], added]}})
    status = snakemake(tree, "--cores", "2", configs=[*configs, more])
    assert status.returncode == 0 and "train" not in planned_jobs(status.stdout), status.stdout
    assert "5 in all, 4 finished, 0 training, 1 not started" in (
        tree / "results-quick/tables/run_status.md").read_text()
    # The analysis rules see runs only once they are on disk: report on this file's targets.
    report = snakemake(tree, "--report", "report.html", "table1", "fig2", "fig3", configs=configs)
    assert report.returncode == 0 and (tree / "report.html").stat().st_size > 0, report.stdout


@pytest.mark.timeout(1200)
def test_committed_runs_render_without_training_on_a_fresh_clone(quick, tmp_path):
    tree, configs, result, _ = quick
    assert result.returncode == 0, result.stdout[-3000:]
    clone = copy_tree(tmp_path)
    shutil.rmtree(clone / "results/runs", ignore_errors=True)
    shutil.copytree(tree / "results-quick/runs", clone / "results/runs",
                    ignore=shutil.ignore_patterns("checkpoint"))  # as git holds them
    committed = write_yaml(clone / "committed.yaml",
                             {"results": "results", "require_all_runs": False})
    configs = ["config/quick.yaml", str(tree / configs[1]), committed]
    set_equal_mtimes(clone)

    # Snakemake's default "code" trigger would retrain: outputs are not newer than the script.
    naive = snakemake(clone, "--cores", "2", "--dry-run", "--rerun-triggers", "mtime", "code",
                      configs=configs)
    assert planned_jobs(naive.stdout)["train"] == 4
    planned = snakemake(clone, "--cores", "2", "--dry-run", configs=configs)
    assert "train" not in planned_jobs(planned.stdout)
    assert {"table1", "fig2", "fig3"} <= set(planned_jobs(planned.stdout))

    summaries = {p: p.stat().st_mtime for p in clone.glob("results/runs/*/summary.json")}
    rendered = snakemake(clone, "--cores", "2", "table1", "fig2", "fig3", configs=configs)
    assert rendered.returncode == 0, rendered.stdout[-3000:]
    assert "train" not in planned_jobs(rendered.stdout)
    assert {p: p.stat().st_mtime for p in summaries} == summaries
    for name in FIGURES:
        assert (clone / "results" / name).exists(), name


@pytest.mark.timeout(600)
def test_analyse_command_writes_what_the_analysis_rule_wrote(quick, tmp_path):
    """`vitnqs analyse` (for a GPU machine without Snakemake) given the workflow's config files:
    the same index and the same settings in its provenance record as the rule's file."""
    tree, configs, result, _ = quick
    assert result.returncode == 0, result.stdout[-3000:]
    rule_file = sorted(tree.glob("results-quick/analysis/input_dependence/*.csv"))[0]
    run_dir = tree / "results-quick/runs" / rule_file.stem
    elsewhere = write_yaml(tmp_path / "elsewhere.yaml", {"results": str(tmp_path / "out")})
    files = ["config/config.yaml", *configs, elsewhere]
    command = [sys.executable, "-m", "vitnqs.cli", "analyse", "input_dependence", str(run_dir),
               *(arg for path in files for arg in ("--config", path))]
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    ours = tmp_path / "out/analysis/input_dependence" / rule_file.name
    assert done.stdout.strip() == str(ours)
    pd.testing.assert_frame_equal(io.read_csv(ours), io.read_csv(rule_file))

    def settings(path):
        return io.read_json(path.with_name(path.stem + ".provenance.json"))["settings"]

    assert settings(ours)["sampling"] == settings(rule_file)["sampling"]
    unfinished = subprocess.run([*command[:5], str(tmp_path)], cwd=tree, capture_output=True,
                                text=True, timeout=600)
    assert unfinished.returncode == 2 and "no summary.json" in unfinished.stderr
    factored = tmp_path / "factored"  # a finished run whose weights ignore the input
    factored.mkdir()
    write_yaml(factored / "config.yaml",
               {**io.read_yaml(run_dir / "config.yaml"), "attention": "factored"})
    shutil.copy2(run_dir / "summary.json", factored / "summary.json")
    refused = subprocess.run([*command[:5], str(factored)], cwd=tree, capture_output=True,
                             text=True, timeout=600)
    assert refused.returncode == 2 and "no query-key weights" in refused.stderr, refused.stderr
