"""What a GPU call needs to know about a run, from the workflow config (no JAX, no Snakemake).

    python .device/plan.py config RUN [--config FILE ...]    write RESULTS/runs/RUN/config.yaml
    python .device/plan.py analyses RUN [--config FILE ...]  print the analysis jobs the
                                                             workflow wants of RUN, one a line

The config files merge as Snakemake merges --configfile (default config/config.yaml).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vitnqs import io  # noqa: E402
from vitnqs.config import RunConfig  # noqa: E402
from vitnqs.analysis_jobs import (  # noqa: E402
    analysis_settings, has_query_key_weights, merge_configs, output_path,
)
from vitnqs.workflow_config import build_run_grid  # noqa: E402

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("config", "analyses"))
    parser.add_argument("run")
    parser.add_argument("--config", type=Path, action="append", default=None)
    args = parser.parse_args()
    config: dict = {}
    for path in args.config or [Path("config/config.yaml")]:
        config = merge_configs(config, io.read_yaml(path))
    grid = build_run_grid(config)
    if args.run not in grid.runs:
        sys.exit(f"plan.py: {args.run} is not a run of the workflow config")
    results = Path(config.get("results", "results"))
    run = grid.runs[args.run]
    if args.what == "config":
        path = results / "runs" / args.run / "config.yaml"
        if path.exists():
            if RunConfig.from_dict(io.read_yaml(path)).science_changes(run):
                sys.exit(f"plan.py: {path} differs from the workflow config's {args.run}")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            io.write_yaml(path, run.to_dict())
        print(path)
        return 0
    if not has_query_key_weights(run):
        return 0
    jobs = ["input_dependence"]
    if args.run in grid.selected(analysis_settings(config)["ablation_runs"]):
        jobs.append("freeze_ablation")
    for job in jobs:
        if not output_path(results, job, args.run).exists():
            print(job)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
