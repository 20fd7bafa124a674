"""Malformed run configs and workflow configs: each stops before any training, with a message
naming the key, and leaves results/ as it was. And a run without a reference energy."""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import pytest
from train_helpers import (
    TINY_RUN,
    copy_tree,
    planned_jobs,
    snakemake,
    tree_state,
    write_config,
    write_yaml,
)

import vitnqs.train
from vitnqs import cli, io
from vitnqs.config import RunConfig
from vitnqs.plotting import fig_learning_curves, fig_scaling, select_timings
from vitnqs.tables import display_energies, summary_frame, table_energies
from vitnqs.recorder import HISTORY_COLUMNS, RunRecorder

SHIFT_SCHEDULE_PAIR = "diag_shift_initial and diag_shift_initial_steps come together"

RUN_CONFIGS = [  # (change to TINY_RUN, what the message must say)
    ({"L": 5}, "L=5 is not divisible by patch_size=2"),
    ({"L": 3, "patch_size": 1}, "L=3 gives an odd number of sites"),
    ({"n_heads": 3}, "n_heads=3 does not divide d_model=8"),
    ({"d_model": 0}, "d_model must be a positive integer"),
    ({"n_samples": 0}, "n_samples must be positive"),
    ({"n_steps": 0}, "n_steps must be positive"),
    ({"n_steps": -3}, "n_steps must be positive"),
    ({"n_samples_final": -1}, "n_samples_final must be positive"),
    ({"L": "4"}, "L must be an integer"),
    ({"n_layers": 1.5}, "n_layers must be an integer"),
    ({"J2": "half"}, "J2 must be a finite number"),
    ({"J2": float("nan")}, "J2 must be a finite number"),
    ({"learning_rate": True}, "learning_rate must be a finite number"),
    ({"attention": "T5"}, "attention='T5' is not one of"),
    ({"n_layer": 1}, "unknown key(s) ['n_layer']"),
    ({"dtype": "float16"}, "dtype must be 'float64' or 'float32'"),
    ({"n_chains": 10}, "n_chains=10 does not divide n_samples=64"),
    ({"chunk_size": 0}, "chunk_size must be a positive integer"),
    ({"chunk_size": "max"}, "chunk_size must be a positive integer, 'auto' or null"),
    ({"local_energy_block": 0}, "local_energy_block must be a positive integer or 'auto'"),
    ({"forward_dtype": "float16"}, "forward_dtype must be 'float64' or 'float32'"),
    ({"dtype": "float32", "forward_dtype": "float64"},
     "forward_dtype='float64' needs dtype='float64'"),
    ({"snapshot_steps": [0, 100]}, "snapshot_steps must hold integers in [0, n_steps=24]"),
    ({"learning_rate_final": 0.5}, "learning_rate_final=0.5 exceeds learning_rate=0.02"),
    ({"sr_on_the_fly": "yes"}, "sr_on_the_fly must be true, false or null"),
    ({"diag_shift": -1e-3}, "diag_shift must be positive"),
    ({"diag_shift_initial": 0.0, "diag_shift_initial_steps": 5},
     "diag_shift_initial must be a positive number or null"),
    ({"diag_shift_initial": 1e-2, "diag_shift_initial_steps": 25},
     "diag_shift_initial_steps must be an integer in [0, n_steps=24]"),
    ({"diag_shift_initial": 1e-2}, SHIFT_SCHEDULE_PAIR),
    ({"diag_shift_initial_steps": 5}, SHIFT_SCHEDULE_PAIR),
    ({"seed": -1}, "seed must be >= 0"),
    ({"seed": 2**31 - 1}, "seed must be < 2**31 - 1"),  # the sampler's seed + 1 would overflow
    ({"snapshot_steps": 5}, "snapshot_steps must be a list of steps or null"),
    ({"protocol": ""}, "protocol must be a name of letters, digits and '-'"),
    ({"protocol": "my/protocol"}, "protocol must be a name of letters, digits and '-'"),
    ({"checkpoint_every": 0}, "checkpoint_every must be positive"),
    ({"positional_init": "zeros"}, "positional_init='zeros' is not one of"),
    ({"query_key": "no"}, "query_key must be true or false"),
    ({"query_key": False, "attention": "factored"},
     "query_key=false applies to attention='t5' only"),
]


@pytest.fixture
def results(tmp_path):
    """A results tree holding one finished run."""
    run_dir = tmp_path / "results" / "runs" / RunConfig.from_dict(TINY_RUN).run_id
    run_dir.mkdir(parents=True)
    io.write_yaml(run_dir / "config.yaml", RunConfig.from_dict(TINY_RUN).to_dict())
    io.write_json(run_dir / "summary.json", {"run_id": run_dir.name, "summary_version": 1})
    (run_dir / "history.csv").write_text("step,energy\n0,-0.5\n")
    return tmp_path / "results"


@pytest.mark.parametrize(("change", "message"), RUN_CONFIGS,
                         ids=[",".join(f"{k}={v!r}" for k, v in c.items()) for c, _ in RUN_CONFIGS])
def test_malformed_run_config_stops_before_training_naming_the_key(
    results, tmp_path, monkeypatch, capsys, change, message
):
    def training_started(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(vitnqs.train, "run", training_started)
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # cli.main appends to it
    config = write_config(tmp_path / "bad.yaml", **change)
    before = tree_state(results)
    (existing,) = (results / "runs").iterdir()
    for run_dir in (existing, results / "runs" / "new"):
        assert cli.main(["train", str(config), str(run_dir), "--quiet"]) == 2
        error = capsys.readouterr().err
        assert f"invalid run config {config}" in error and message in error
    assert tree_state(results) == before
    assert not (results / "runs" / "new").exists()


BLOCK = {"protocol": "quick", "L": 4, "J2": 0.5, "n_layers": 1, "attention": "t5"}

WORKFLOW_CONFIGS = [  # config/quick.yaml overridden by this, and what the message must say
    pytest.param({"groups": {"table1": [{**BLOCK, "L": "six"}]}},
                 "On instance['groups']['table1'][0]['L']", id="L-a-string"),
    pytest.param({"resutls": "elsewhere"}, "'resutls' was unexpected", id="unknown-key"),
    pytest.param({"require_all_runs": "yes"}, "On instance['require_all_runs']",
                 id="require_all_runs-a-string"),
    pytest.param({"model": {"n_heads": 0}}, "On instance['model']['n_heads']", id="zero-heads"),
    pytest.param({"model": {"positional_init": "zeros"}},
                 "On instance['model']['positional_init']", id="unknown-positional-init"),
    pytest.param({"model": {"query_key": "no"}}, "On instance['model']['query_key']",
                 id="query_key-a-string"),
    pytest.param({"protocols": {"quick": {"n_samples": 0}}},
                 "On instance['protocols']['quick']['n_samples']", id="zero-samples"),
    pytest.param({"protocols": {"quick": {"n_steps": -5}}},
                 "On instance['protocols']['quick']['n_steps']", id="negative-steps"),
    pytest.param({"groups": {"table1": [{**BLOCK, "seed": -1}]}},
                 "On instance['groups']['table1'][0]['seed']", id="negative-seed"),
    pytest.param({"protocols": {"quick": {"n_step": 10}}},
                 "groups.table1[0] (protocol 'quick'): unknown key(s) ['n_step']",
                 id="unknown-protocol-key"),
    pytest.param({"groups": {"table1": [{**BLOCK, "L": 5}]}},
                 "groups.table1[0] (protocol 'quick'): L=5 is not divisible by patch_size=2",
                 id="L-not-divisible-by-b"),
    pytest.param({"groups": {"table1": [{**BLOCK, "L": 3, "patch_size": 1}]}},
                 "groups.table1[0] (protocol 'quick'): L=3 gives an odd number of sites",
                 id="odd-number-of-sites"),
    pytest.param({"model": {"n_heads": 3}}, "n_heads=3 does not divide d_model=16",
                 id="heads-not-dividing-d"),
    pytest.param({"analysis": {"ablation_runs": {"L": "6"}}},
                 "On instance['analysis']['ablation_runs']['L']", id="analysis-filter-a-string"),
    pytest.param({"analysis": {"ablation_run": {"L": 6}}}, "'ablation_run' was unexpected",
                 id="analysis-unknown-key"),
    pytest.param({"analysis": {"size_runs": {"layers": 4}}},
                 "Invalid workflow config: analysis.size_runs: runs_where: unknown RunConfig "
                 "field(s) ['layers']", id="analysis-filter-unknown-field"),
    pytest.param({"analysis": {"shastry_sutherland": {"n_samples": 0}}},
                 "On instance['analysis']['shastry_sutherland']['n_samples']",
                 id="analysis-zero-samples"),
    pytest.param({"groups": {"fig4": [{**BLOCK, "n_steps": 10}]}},
                 "run L4_J0.5_nl1_t5_s0_quick is defined differently by groups.table1[0] and "
                 "groups.fig4[0] (keys ['n_steps'] differ)", id="run-id-collision"),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return copy_tree(tmp_path_factory.mktemp("tree"))


@pytest.mark.parametrize(("override", "message"), WORKFLOW_CONFIGS)
def test_malformed_workflow_config_stops_snakemake_before_any_job(
    tree, tmp_path, override, message
):
    before = tree_state(tree / "results")
    configs = ["config/quick.yaml", write_yaml(tmp_path / "bad.yaml", override)]
    result = snakemake(tree, "--cores", "1", "--dry-run", configs=configs)
    assert result.returncode != 0 and message in result.stdout, result.stdout[-2000:]
    assert not planned_jobs(result.stdout)
    assert tree_state(tree / "results") == before
    assert not (tree / "results-quick").exists()


def test_a_protocol_changed_under_trained_runs_stops_snakemake(tree, tmp_path):
    """Editing a protocol that committed runs were trained with would relabel them: the main job
    stops before any job and names each run folder and the key, and changes nothing."""
    import yaml

    reduced = yaml.safe_load((tree / "config/config.yaml").read_text())["protocols"]["reduced"]
    override = {"protocols": {"reduced": {**reduced, "n_steps": 1200}}}
    before = tree_state(tree / "results")
    result = snakemake(tree, "--cores", "1", "--dry-run",
                       configs=[write_yaml(tmp_path / "longer.yaml", override)])
    assert result.returncode != 0 and not planned_jobs(result.stdout)
    assert "trained with other settings" in result.stdout, result.stdout[-2000:]
    assert ("results/runs/L6_J0.5_nl4_t5_s0_reduced/config.yaml: n_steps=600 (the config: 1200)"
            in result.stdout)
    assert tree_state(tree / "results") == before


def test_a_run_without_reference_energy_has_relative_error_null(tmp_path):
    """No reference for (L, J2) = (4, 0.3): the run is allowed, its summary says relative_error
    null, Table 1 leaves the cell empty and Figs. 2 and 3 leave the run out of their accuracy
    panels."""
    config = RunConfig.from_dict({**TINY_RUN, "J2": 0.3})
    recorder = RunRecorder(config, tmp_path, logging.getLogger("test"))
    recorder.rows = [{**dict.fromkeys(HISTORY_COLUMNS, 0.1), "step": step, "energy": -0.4}
                     for step in range(3)]
    final = {"energy_per_site": -0.45, "energy_error": 1e-3, "variance": 1.0, "v_score": 0.1,
             "r_hat": 1.0, "tau_corr": 0.5, "n_samples_final": 256}
    summary = recorder.summary(SimpleNamespace(n_parameters=1112), final)
    assert summary["relative_error"] is None and summary["reference_energy"] is None

    runs = summary_frame([summary])
    assert display_energies(table_energies(runs))["rel. error"].tolist() == [""]
    curves = fig_learning_curves({config.run_id: recorder.history()}, runs)
    assert not any(ax.get_lines() for ax in curves.axes)
    scaling = fig_scaling(runs, *select_timings(runs, {}))
    accuracy = scaling.axes[0]
    assert not accuracy.get_lines() and not accuracy.containers
    for figure in (curves, scaling):  # left out, and saying so
        assert "not drawn, no reference energy: 1 run(s) at 4x4, J2 = 0.3" in (
            figure._suptitle.get_text())
