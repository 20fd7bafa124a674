"""One-off (session 7, 2026-11-26): provenance records for the analysis files computed before the
analysis rules wrote them (commit 21e92b6), where recomputing on this 2-core CPU would take hours
(input dependence of the n_l = 4 runs at L = 6, 8, 10: ~10-60 min each).

Each record names the commit that first added the file (the code that computed it, under the
run's name before the run ids gained their protocol suffix in 5ac694b, which changed no value),
the date of that commit, and the sampling settings of ANALYSIS_DEFAULTS at that commit (the same
as now). Device: the CPU of the development machine (2 cores), as the issue notes of those
sessions say; host, package versions and wall time were not recorded. The n_l = 1 files, SS check
and maps were recomputed in session 7 with the recording rules instead: the input-dependence
CSV came out bit-identical, the freeze-ablation energies equal to 1e-15.

Run from the repository root: python results/analysis/reconstruct_provenance.py
"""

import subprocess
from pathlib import Path

from vitnqs import io

SAMPLING = {"n_samples": 6000, "n_chains": 600, "n_discard_per_chain": 20, "seed": 0,
            "chunk_size": 1000}
FILES = [  # run id, the commit that added its input-dependence CSV
    ("L6_J0.5_nl4_decoupled_s0_short", "15fb5e4"),
    ("L6_J0.5_nl4_t5_s0_short", "15fb5e4"),
    ("L6_J0_nl4_decoupled_s0_short", "15fb5e4"),
    ("L6_J0_nl4_t5_s0_short", "15fb5e4"),
    ("L8_J0.5_nl4_decoupled_s0_short", "15fb5e4"),
    ("L8_J0.5_nl4_t5_s0_short", "15fb5e4"),
    ("L10_J0.5_nl4_decoupled_s0_short", "4ba13f8"),
    ("L10_J0.5_nl4_t5_s0_short", "4ba13f8"),
]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()


for run_id, commit in FILES:
    path = Path("results/analysis/input_dependence") / f"{run_id}.provenance.json"
    io.write_json(path, {
        "reconstructed": "written after the fact by results/analysis/reconstruct_provenance.py "
                         "from the git history and the issue notes; see its docstring",
        "device": "cpu (x86_64) x1",
        "git_commit": git("rev-parse", commit),
        "host": None,
        "finished_at": git("show", "-s", "--format=%cI", commit),
        "versions": None,
        "wall_seconds": None,
        "settings": {"run": f"results/runs/{run_id}/summary.json", "sampling": SAMPLING},
    })
    print(path)
