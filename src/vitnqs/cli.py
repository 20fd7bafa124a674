"""Command line: ``vitnqs train RUN_CONFIG RUN_DIR``, ``vitnqs analyse JOB RUN_DIR``,
``vitnqs sr-spectrum RUN_DIR``, ``vitnqs fresh-chains RUN_DIR``, and the step benchmarks.
Parses arguments only."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from vitnqs.analysis_jobs import OUTPUTS
from vitnqs.gpus import set_xla_flags

DEFAULT_CONFIG = Path("config/config.yaml")
"""The workflow config whose analysis settings `analyse` and `fresh-chains` use by default."""


def main(argv: list[str] | None = None) -> int:
    set_xla_flags()
    parser = argparse.ArgumentParser(prog="vitnqs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train one run (resumes from its checkpoint)")
    train.add_argument("run_config", type=Path, help="YAML or JSON file with the run config")
    train.add_argument("run_dir", type=Path, help="output directory of the run")
    train.add_argument("--quiet", action="store_true", help="log to RUN_DIR/train.log only")
    train.add_argument("--until-step", type=int, default=None, metavar="STEP",
                       help="train up to this step, checkpoint it and stop (exit 0); without "
                            "it the same command continues to n_steps")
    bench = commands.add_parser(
        "benchmark", help="time the vitnqs step and a plain-NetKet step of a run config")
    bench.add_argument("run_config", type=Path, help="YAML or JSON file with the run config")
    bench.add_argument("--out", type=Path, required=True, help="CSV file to write the rows to")
    bench.add_argument("--steps", type=int, default=3, help="timed steps after warm-up")
    bench.add_argument("--baseline-chunk", type=int, default=2000,
                       help="chunk size of the plain-NetKet step (default 2000)")
    bench.add_argument("--implementations", nargs="+", default=None,
                       help="which steps to time (default: vitnqs vitnqs-float32 netket)")
    compare = commands.add_parser(
        "compare", help="energies of the vitnqs and plain-NetKet steps from one initial state")
    compare.add_argument("run_config", type=Path, help="YAML or JSON file with the run config")
    compare.add_argument("--out", type=Path, required=True, help="CSV file of the comparison")
    compare.add_argument("--steps", type=int, default=200, help="optimization steps of each")
    compare.add_argument("--implementations", nargs="+", default=None,
                         help="steps to compare, NetKet's last (default: vitnqs netket)")
    compare.add_argument("--state", type=Path, default=None, metavar="RUN_DIR",
                         help="evaluate the same-state energies at this run's final parameters "
                              "(RUN_CONFIG should be its config.yaml); --steps 0 does only that")
    compare.add_argument("--shadow", action="store_true",
                         help="one vitnqs trajectory; at every 20th step NetKet's VMC_SR computes "
                              "its energy and update from the same state and samples "
                              "(vitnqs.shadow)")
    analyse = commands.add_parser(
        "analyse", help="an analysis job of the workflow on one finished run, without Snakemake: "
                        "the file and provenance record its rule writes, with the same settings")
    analyse.add_argument("job", choices=sorted(OUTPUTS), help="the analysis rule to run")
    analyse.add_argument("run_dir", type=Path, help="a finished run's folder (with summary.json)")
    analyse.add_argument("--config", type=Path, action="append", default=None,
                         help="workflow config file, repeatable, merged in order as Snakemake "
                              "merges --configfile (default config/config.yaml)")
    spectrum = commands.add_parser(
        "sr-spectrum", help="at each snapshot of a run, the SR kernel's eigenvalues and the "
                            "step they give at several diagonal shifts (vitnqs.sr_spectrum)")
    spectrum.add_argument("run_dir", type=Path, help="a run's folder (its snapshots are read)")
    spectrum.add_argument("--out", type=Path, required=True, help="CSV file of the rows")
    spectrum.add_argument("--shifts", type=float, nargs="+", default=None,
                          help="diagonal shifts (default: 1e-3 1e-2)")
    spectrum.add_argument("--steps", type=int, nargs="+", default=None,
                          help="snapshot steps (default: every saved one)")
    chains = commands.add_parser(
        "fresh-chains", help="chain by chain, what the analysis' fresh chains sample of a finished "
                             "run's state, and which are stranded (vitnqs.fresh_chains)")
    chains.add_argument("run_dir", type=Path, help="a finished run's folder (with summary.json)")
    chains.add_argument("--out", type=Path, required=True, help="CSV file of the rows")
    chains.add_argument("--samples", type=int, default=18000,
                        help="samples drawn by the chains in all (default 18000: 30 per chain)")
    chains.add_argument("--frozen", action="store_true",
                        help="the chains of the freeze ablation's frozen copy of the network")
    chains.add_argument("--config", type=Path, action="append", default=None,
                        help="workflow config file(s) whose analysis sampling is used (default "
                             "config/config.yaml)")
    args = parser.parse_args(argv)
    if args.command == "fresh-chains":
        return _fresh_chains(args.run_dir, args.out, args.samples, args.frozen,
                             args.config or [DEFAULT_CONFIG])
    if args.command == "analyse":
        return _analyse(args.job, args.run_dir, args.config or [DEFAULT_CONFIG])
    if args.command == "sr-spectrum":
        return _sr_spectrum(args.run_dir, args.out, args.shifts, args.steps)

    from vitnqs import io
    from vitnqs.config import ConfigError, RunConfig

    try:
        config = RunConfig.from_dict(io.read_yaml(args.run_config))
    except (ConfigError, io.CorruptFileError, FileNotFoundError) as error:
        print(f"vitnqs: invalid run config {args.run_config}: {error}", file=sys.stderr)
        return 2

    if args.command in ("benchmark", "compare"):
        from functools import partial

        from vitnqs import benchmark

        save = partial(benchmark.write_table, args.out)
        if args.command == "benchmark":
            rows = benchmark.benchmark(
                config, n_timed=args.steps, baseline_chunk=args.baseline_chunk,
                peak_flops=benchmark.measure_peak_flops(),
                implementations=tuple(args.implementations or benchmark.IMPLEMENTATIONS),
                on_row=save,
            )
        elif args.shadow:
            from vitnqs.shadow import shadow_trajectory

            rows = shadow_trajectory(config, args.steps)
        else:
            implementations = tuple(args.implementations or ("vitnqs", "netket"))
            rows = [{"step": None}]
            if args.steps > 0:
                rows = benchmark.compare_trajectories(config, args.steps,
                                                      implementations=implementations)
            if args.state is None:
                rows[0].update(benchmark.same_state_energies(config))
            else:
                from vitnqs.trained import load_run

                trained = load_run(args.state)
                rows[0].update(benchmark.same_state_energies(config, trained.variables,
                                                             n_burn_in=20),
                               state=str(args.state), state_step=trained.step)
        print(save(rows).to_string(index=False))
        return 0

    from vitnqs.train import NonFiniteError, RunDirectoryError, TrainingStopped, run

    try:
        summary = run(config, args.run_dir, quiet=args.quiet, until_step=args.until_step)
    except ConfigError as error:  # a config these devices cannot train as configured
        print(f"vitnqs: cannot train {args.run_config}: {error}", file=sys.stderr)
        return 2
    except (NonFiniteError, RunDirectoryError, io.CorruptFileError) as error:
        print(f"vitnqs: training stopped: {error}", file=sys.stderr)
        return 1
    except TrainingStopped as stop:
        print(f"vitnqs: training {stop}", file=sys.stderr)
        return 128 + signal.SIGTERM  # as a shell reports a process ended by SIGTERM
    if summary is None:
        print(f"vitnqs: training paused: --until-step {args.until_step} reached; run without "
              "it to continue", file=sys.stderr)
    return 0


def _workflow_config(config_files: list[Path]) -> dict:
    """The workflow config files merged in order, as Snakemake merges --configfile."""
    from vitnqs import analysis_jobs, io

    config: dict = {}
    for path in config_files:
        config = analysis_jobs.merge_configs(config, io.read_yaml(path))
    return config


def _unfinished(run_dir: Path) -> bool:
    """True, with the reason on stderr, for a run folder without summary.json."""
    if (run_dir / "summary.json").exists():
        return False
    print(f"vitnqs: {run_dir} has no summary.json: only finished runs are analysed",
          file=sys.stderr)
    return True


def _analyse(job: str, run_dir: Path, config_files: list[Path]) -> int:
    """Run one analysis job as its rule does; print the file written."""
    from vitnqs import analysis_jobs
    from vitnqs.trained import read_run_config

    if _unfinished(run_dir):
        return 2
    run = read_run_config(run_dir)
    if not analysis_jobs.has_query_key_weights(run):
        print(f"vitnqs: {run_dir} has no query-key weights ({run.attention}, query_key "
              f"{run.query_key}): its attention is the same for every input, so the workflow "
              f"runs no {job} for it", file=sys.stderr)
        return 2
    summary = run_dir / "summary.json"
    config = _workflow_config(config_files)
    settings = analysis_jobs.analysis_settings(config)
    sampling = analysis_jobs.sampling_settings(settings)
    out = analysis_jobs.output_path(config.get("results", "results"), job, run_dir.name)
    if job == "input_dependence":
        analysis_jobs.write_input_dependence(summary, out, sampling)
    else:
        analysis_jobs.write_freeze_ablation(summary, out, sampling, settings["n_samples_energy"])
    print(out)
    return 0


def _fresh_chains(run_dir: Path, out: Path, n_samples: int, frozen: bool,
                  config_files: list[Path]) -> int:
    """vitnqs.fresh_chains.chain_census of a finished run with the analysis sampling -> CSV."""
    from vitnqs import analysis_jobs
    from vitnqs.fresh_chains import write_chain_census

    if n_samples < 1:
        print(f"vitnqs: --samples must be at least 1, got {n_samples}", file=sys.stderr)
        return 2
    if _unfinished(run_dir):
        return 2
    settings = analysis_jobs.analysis_settings(_workflow_config(config_files))
    write_chain_census(run_dir, out, analysis_jobs.sampling_settings(settings), n_samples, frozen)
    print(out)
    return 0


def _sr_spectrum(run_dir: Path, out: Path, shifts: list[float] | None,
                 steps: list[int] | None) -> int:
    """vitnqs.sr_spectrum of a run -> CSV with its provenance record; print the file."""
    from vitnqs.config import ConfigError
    from vitnqs.sr_spectrum import DEFAULT_SHIFTS, write_sr_spectrum

    try:
        write_sr_spectrum(run_dir, out, tuple(shifts or DEFAULT_SHIFTS), steps)
    except (FileNotFoundError, ConfigError) as error:
        print(f"vitnqs: cannot read {run_dir}: {error}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
