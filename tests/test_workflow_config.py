"""The run grid of config/config.yaml, built without Snakemake."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vitnqs.analysis_jobs import has_query_key_weights
from vitnqs.config import MECHANISMS, ConfigError
from vitnqs.workflow_config import build_run_grid, runs_unlike_their_folders

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "config.yaml"
QUICK = CONFIG.with_name("quick.yaml")


@pytest.fixture
def config():
    return yaml.safe_load(CONFIG.read_text())


def test_runs_shared_by_groups_collapse_to_one_run_id(config):
    grid = build_run_grid(config)
    # fig2 leaves out t5 at J2 = 0, n_l = 1 under `short` (it diverged; config/config.yaml says
    # why) and has that panel (a) under `reduced` for all three mechanisms, and panel (d) under
    # `short`, `reduced` and `paper`, the paper's protocol with two seeds (three for t5); table1
    # and fig3 have their sizes under `reduced` too (L = 6, 10 and L = 6, 8, 10) and under
    # `reduced-damped` (L = 10 and L = 8, 10); table1 has 6x6 under `paper-damped-start` too
    # (seed 0 of each mechanism, seed 1 of t5 and decoupled)
    assert [len(grid.groups[g]) for g in ("table1", "fig2", "fig3", "fig4")] == [26, 24, 22, 3]
    # 6x6 at J2 = 0.5 and n_l = 4 or 1 is in several groups; positional_probe adds 1 run of its
    # own, query_key_probe 4; sr_probe's 3 runs are fig3's too
    assert len(grid.runs) == 45 + 1 + 4
    assert set(grid.groups["sr_probe"]) <= set(grid.groups["fig3"])
    shared = grid.runs["L6_J0.5_nl4_t5_s0_short"]
    assert all("L6_J0.5_nl4_t5_s0_short" in grid.groups[g] for g in ("table1", "fig2", "fig3"))
    assert (shared.d_model, shared.n_heads, shared.patch_size) == (60, 10, 2)
    assert shared.protocol == "short" and shared.n_steps == 300 and shared.n_samples == 1024


def configured_twin(config, probe, protocol):
    """The run the workflow config builds for the probe's start (system, mechanism, seed) under
    another protocol."""
    block = {"protocol": protocol, "L": probe.L, "J2": probe.J2, "n_layers": probe.n_layers,
             "attention": probe.attention, "seed": probe.seed}
    grid = build_run_grid({**config, "groups": {"g": [block]}})
    return grid.runs[probe.replace(protocol=protocol).run_id]


def test_the_positional_probe_differs_from_short_only_in_the_init_of_p(config):
    grid = build_run_grid(config)
    for run_id in grid.groups["positional_probe"]:
        probe = grid.runs[run_id]
        twin = probe.replace(protocol="short", positional_init="xavier")
        assert probe.protocol == "short-smallp" and probe.positional_init == "softmax-scale"
        assert twin.science() == configured_twin(config, probe, "short").science()


def test_the_sr_probe_differs_from_reduced_only_in_the_diagonal_shift(config):
    grid = build_run_grid(config)
    assert len(grid.groups["sr_probe"]) == 3
    for run_id in grid.groups["sr_probe"]:
        probe = grid.runs[run_id]
        assert probe.protocol == "reduced-damped" and probe.diag_shift == 1e-2
        twin = configured_twin(config, probe, "reduced")
        assert twin.diag_shift == 1e-3
        assert probe.replace(protocol="reduced", diag_shift=1e-3).science() == twin.science()


def test_the_query_key_probe_is_t5_without_its_query_key_term(config):
    """Each probe is a configured t5 run (reduced, or the paper's with a damped start) but Q, K."""
    grid = build_run_grid(config)
    probes = [grid.runs[run_id] for run_id in grid.groups["query_key_probe"]]
    # reduced seed 1 diverged (results/failed/)
    assert [(probe.protocol, probe.seed) for probe in probes] == [
        ("reduced-no-qk", 0), ("reduced-no-qk", 2), ("paper-damped-start-no-qk", 0),
        ("paper-damped-start-no-qk", 1)]
    for probe in probes:
        assert probe.attention == "t5" and not probe.query_key
        protocol = probe.protocol.removesuffix("-no-qk")
        twin = configured_twin(config, probe, protocol)
        assert twin.query_key
        assert probe.replace(protocol=protocol, query_key=True).science() == twin.science()
        assert not has_query_key_weights(probe) and has_query_key_weights(twin)


def test_paper_protocol_is_the_papers(config):
    config["groups"] = {"table1": [{"protocol": "paper", "L": 10, "J2": 0.5, "n_layers": 4,
                                    "attention": "factored"}]}
    (run,) = build_run_grid(config).runs.values()
    assert (run.n_steps, run.n_samples, run.learning_rate, run.learning_rate_final,
            run.diag_shift, run.n_samples_final, run.chains) == (5000, 6000, 0.03, 0.0, 1e-3,
                                                                  600_000, 400)
    assert run.protocol == "paper" and run.run_id == "L10_J0.5_nl4_factored_s0_paper"


def test_runs_where_filters_on_run_config_fields(config):
    grid = build_run_grid(config)
    assert grid.where(L=6, n_layers=1, J2=0.5) == [
        "L6_J0.5_nl1_t5_s0_short", "L6_J0.5_nl1_decoupled_s0_short",
        "L6_J0.5_nl1_factored_s0_short"]
    # 7 short (two seeds at 10x10), 2 paper, 3 reduced (seed 1 at 6x6: seed 0 diverged; none at
    # 10x10: both seeds diverged), 2 reduced-damped (8x8 seed 0, 10x10 seed 1 again: sr_probe),
    # 1 paper-damped-start
    assert len(grid.where(attention="factored")) == 15
    assert grid.where(L=10, attention="factored") == [
        "L10_J0.5_nl4_factored_s1_short", "L10_J0.5_nl4_factored_s2_short",
        "L10_J0.5_nl4_factored_s1_reduced-damped"]
    assert grid.where(protocol="paper", seed=1) == [
        "L6_J0.5_nl4_t5_s1_paper", "L6_J0.5_nl4_decoupled_s1_paper",
        "L6_J0.5_nl4_factored_s1_paper"]
    with pytest.raises(ConfigError, match="unknown RunConfig field"):
        grid.where(n_l=1)


def test_a_list_of_filters_selects_the_union_in_grid_order(config):
    grid = build_run_grid(config)
    one_layer = {"L": 6, "J2": 0.5, "n_layers": 1}
    four_layers_short = {"L": 6, "J2": 0.5, "n_layers": 4, "protocol": "short"}
    assert grid.selected(one_layer) == grid.where(**one_layer)
    union = grid.selected([four_layers_short, one_layer, one_layer])
    assert sorted(union) == sorted(set(grid.where(**one_layer))
                                   | set(grid.where(**four_layers_short)))
    assert len(union) == 6 and union == [run for run in grid.runs if run in union]
    assert not any(run.endswith("_paper") for run in union)
    with pytest.raises(ConfigError, match="unknown RunConfig field"):
        grid.selected([one_layer, {"layers": 4}])


def test_adding_a_run_is_one_line(config):
    before = build_run_grid(config).runs
    config["groups"]["fig3"].append(yaml.safe_load(
        "{protocol: reduced, L: 8, J2: 0.5, n_layers: 4, attention: t5, seed: 1}"))
    after = build_run_grid(config).runs
    assert set(after) - set(before) == {"L8_J0.5_nl4_t5_s1_reduced"}


def test_groups_giving_one_run_two_configs_are_both_named(config):
    """fig4's runs are Fig. 2c's (the same 6x6 n_l = 1 runs): a fig4 block that changes their
    snapshots is refused, naming the fig2 block it contradicts and its own."""
    (shared,) = [i for i, block in enumerate(config["groups"]["fig2"])
                 if (block["protocol"], block["J2"], block["n_layers"]) == ("short", 0.5, 1)]
    config["groups"]["fig4"][0]["snapshot_steps"] = [0, 100]
    with pytest.raises(ConfigError, match=rf"groups\.fig2\[{shared}\] and groups\.fig4\[0\]"
                                          r".*snapshot_steps"):
        build_run_grid(config)


def test_a_run_id_reads_back_as_the_fields_it_names():
    """The analysis files carry only run ids; the figures read protocol and seed back from them."""
    from vitnqs.config import RunConfig, parse_run_id

    for fields in ({"L": 6, "J2": 0.5, "n_layers": 4, "attention": "t5", "seed": 1,
                    "protocol": "paper"},
                   {"L": 4, "J2": -0.25, "n_layers": 1, "attention": "factored", "seed": 12,
                    "protocol": "re-duced"}):
        run_id = RunConfig.from_dict({**fields, "d_model": 8, "n_heads": 2}).run_id
        assert parse_run_id(run_id) == fields
    with pytest.raises(ConfigError, match="not a run id"):
        parse_run_id("L6_t5_paper")


def test_the_quick_config_merged_over_the_main_one_trains_only_its_4x4_runs(config):
    """Snakemake merges config/quick.yaml into config/config.yaml key by key, so a group added to
    the main config and not redefined (or emptied) in quick.yaml would train its runs on a laptop
    CPU (it once did: the 8x8/10x10 positional probe timed CI out)."""
    from snakemake.utils import update_config

    main_groups = set(config["groups"])
    update_config(config, yaml.safe_load(QUICK.read_text()))
    grid = build_run_grid(config)
    assert grid.runs and {(run.L, run.protocol) for run in grid.runs.values()} == {(4, "quick")}
    assert set(grid.groups) >= main_groups


def test_the_damped_start_protocol_is_paper_with_a_shift_of_1e_2_for_100_steps(config):
    grid = build_run_grid(config)
    damped = grid.where(protocol="paper-damped-start")
    assert damped == [f"L6_J0.5_nl4_{m}_s0_paper-damped-start" for m in MECHANISMS] + [
        "L6_J0.5_nl4_t5_s1_paper-damped-start", "L6_J0.5_nl4_decoupled_s1_paper-damped-start"]
    for run_id in damped:
        run = grid.runs[run_id]
        paper = grid.runs[run_id.replace("paper-damped-start", "paper")]
        assert run.replace(protocol="paper", diag_shift_initial=None,
                           diag_shift_initial_steps=0) == paper
        assert [run.diag_shift_at(step) for step in (0, 99, 100)] == [1e-2, 1e-2, 1e-3]


def test_every_committed_run_folder_holds_the_settings_the_config_gives_it(config):
    """What the main job checks at parse time (runs_unlike_their_folders): each committed run
    was trained with its current settings; an edited science key is named, a runtime key is not."""
    grid = build_run_grid(config)
    assert runs_unlike_their_folders(grid, REPO / "results") == []
    run_id = "L6_J0.5_nl4_t5_s0_paper"
    edited = {**config["protocols"]["paper"], "diag_shift": 1e-2, "chunk_size": 500}
    edited_grid = build_run_grid({**config, "protocols": {**config["protocols"], "paper": edited}})
    lines = runs_unlike_their_folders(edited_grid, REPO / "results")
    assert f"runs/{run_id}/config.yaml: diag_shift=0.001 (the config: 0.01)" in "\n".join(lines)
    assert not any("chunk_size" in line for line in lines)
