"""Command line: ``vitnqs train RUN_CONFIG RUN_DIR``. Parses arguments only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vitnqs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train one run (resumes from its checkpoint)")
    train.add_argument("run_config", type=Path, help="YAML or JSON file with the run config")
    train.add_argument("run_dir", type=Path, help="output directory of the run")
    train.add_argument("--quiet", action="store_true", help="log to RUN_DIR/train.log only")
    args = parser.parse_args(argv)

    from vitnqs import io
    from vitnqs.config import ConfigError, RunConfig

    try:
        config = RunConfig.from_dict(io.read_yaml(args.run_config))
    except (ConfigError, io.CorruptFileError, FileNotFoundError) as error:
        print(f"vitnqs: invalid run config {args.run_config}: {error}", file=sys.stderr)
        return 2

    from vitnqs.train import run

    run(config, args.run_dir, quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
