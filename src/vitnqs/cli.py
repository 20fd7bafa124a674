"""Command line: ``vitnqs train RUN_CONFIG RUN_DIR``. Parses arguments only."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


GPU_XLA_FLAGS = "--xla_gpu_enable_triton_gemm=false"
"""XLA's Triton GEMM fusions find no valid config for some float64 dots of the factored
attention's Jacobian on H100 (jax 0.11.2: 'No candidates could be compiled'); cuBLAS does them."""


def main(argv: list[str] | None = None) -> int:
    if "xla_gpu_enable_triton_gemm" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {GPU_XLA_FLAGS}".strip()
    parser = argparse.ArgumentParser(prog="vitnqs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train one run (resumes from its checkpoint)")
    train.add_argument("run_config", type=Path, help="YAML or JSON file with the run config")
    train.add_argument("run_dir", type=Path, help="output directory of the run")
    train.add_argument("--quiet", action="store_true", help="log to RUN_DIR/train.log only")
    bench = commands.add_parser("benchmark", help="time optimization steps of a run config")
    bench.add_argument("run_config", type=Path, help="YAML or JSON file with the run config")
    bench.add_argument("--out", type=Path, required=True, help="CSV file to append a row to")
    bench.add_argument("--steps", type=int, default=5, help="timed steps after warm-up")
    args = parser.parse_args(argv)

    from vitnqs import io
    from vitnqs.config import ConfigError, RunConfig

    try:
        config = RunConfig.from_dict(io.read_yaml(args.run_config))
    except (ConfigError, io.CorruptFileError, FileNotFoundError) as error:
        print(f"vitnqs: invalid run config {args.run_config}: {error}", file=sys.stderr)
        return 2

    if args.command == "benchmark":
        import pandas as pd

        from vitnqs.benchmark import time_step

        row = pd.DataFrame([time_step(config, n_timed=args.steps)])
        print(row.to_string(index=False))
        header = not args.out.exists()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        row.to_csv(args.out, mode="a", header=header, index=False)
        return 0

    from vitnqs.train import NonFiniteError, RunDirectoryError, run

    try:
        run(config, args.run_dir, quiet=args.quiet)
    except (NonFiniteError, RunDirectoryError, io.CorruptFileError) as error:
        print(f"vitnqs: training stopped: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
