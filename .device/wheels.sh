#!/usr/bin/env bash
# Here: fetch into .whl/ (git-ignored, carried) the wheels the GPU machine lacks: NetKet and the
# dependencies of it that its image does not hold (device README, Notes). Python 3.12, x86-64.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    netket==3.23.0 igraph==1.0.0 texttable==1.7.2 plum-dispatch==2.10.1 beartype==0.23.1 \
    sparse==0.19.3 orjson==3.13.0
ls .whl
