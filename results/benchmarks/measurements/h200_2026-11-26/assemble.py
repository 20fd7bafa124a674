"""Build results/benchmarks/h200_step_times.csv from this folder's raw GPU tables.

Run from the repository root: python results/benchmarks/measurements/h200_2026-11-26/assemble.py
[OUT.csv] (default: the committed table).
Per (L, mechanism) it takes the call named in CHOSEN (the least disturbed measurement; see
results/benchmarks/notes.md, session 3) and fills the FLOP columns by vitnqs.benchmark's
count_flops on this machine's CPU: on the H200 the cost analysis of jax 0.11.2 returned no
count (the counting code now lowers for the CPU itself). The fraction of peak uses the float64
matrix-multiply rate measured on the same H200 in call 1 (46.8 TFLOP/s, from its
fraction_of_peak column); the per-part times are unchanged.
"""

import functools
import sys
from pathlib import Path

import jax
import pandas as pd

jax.config.update("jax_enable_x64", True)

from vitnqs import io  # noqa: E402
from vitnqs.benchmark import model_flops, step_flops  # noqa: E402
from vitnqs.config import RunConfig  # noqa: E402
from vitnqs.exchange import antiparallel_fraction  # noqa: E402
from vitnqs.sr import KERNEL_SHARE  # noqa: E402
from vitnqs.system import build_system  # noqa: E402
from vitnqs.train import build_variational_state  # noqa: E402

HERE = Path(__file__).parent
CHOSEN = {(6, "t5"): 8, (6, "decoupled"): 8, (6, "factored"): 2,
          (8, "t5"): 7, (8, "decoupled"): 7, (8, "factored"): 7,
          (10, "t5"): 8, (10, "decoupled"): 3, (10, "factored"): 3}
PEAK_FLOPS = 46.8e12  # H200 float64 matmul, measured in call 1
FLOP_COLUMNS = ("flops_sampling", "flops_local_energies", "flops_jacobian", "flops_kernel",
                "flops_solve")


@functools.cache
def base_count(L: int, attention: str, n_layers: int, n_samples: int):
    """(config, model_flops, system, antiparallel fraction of freshly initialized samples)."""
    config = RunConfig.from_dict(dict(L=L, J2=0.5, n_layers=n_layers, attention=attention,
                                      n_samples=n_samples))
    system = build_system(L, 0.5)
    small = build_variational_state(config.replace(n_samples=256, n_chains=64,
                                                   n_discard_per_chain=20), system)
    fraction = antiparallel_fraction(small.samples, system.local_energy_operator())
    full = build_variational_state(config, system)
    return config, model_flops(full), full.n_parameters, system, fraction


def recount(row: pd.Series) -> dict:
    config, model, n_params, system, fraction = base_count(
        int(row.L), row.attention, int(row.n_layers), int(row.n_samples))
    if row.implementation.startswith("vitnqs"):
        networks = 1 + fraction * system.local_energy_operator().n_bonds
    else:
        networks = 1 + system.hamiltonian.max_conn_size
    share = KERNEL_SHARE if "sr_on_the_fly=False" in row.chunks else 1.0
    return step_flops(config, n_params, model, networks, share)


rows = []
for (L, attention), call in CHOSEN.items():
    table = io.read_csv(HERE / f"call{call}_L{L}_J0.5_nl4_{attention}_s0.csv")
    for _, row in table.iterrows():
        counted = recount(row)
        row = row.copy()
        for key, value in counted.items():
            row[key] = value
        row["flops_per_step"] = sum(counted[k] for k in FLOP_COLUMNS)
        row["device_peak_flops"] = PEAK_FLOPS
        row["fraction_of_peak"] = row.flops_per_step / row.seconds_per_step / PEAK_FLOPS
        row["source"] = f"measurements/h200_2026-11-26/call{call}"
        rows.append(row)
io.write_csv(sys.argv[1] if len(sys.argv) > 1 else "results/benchmarks/h200_step_times.csv",
             pd.DataFrame(rows))
print(pd.DataFrame(rows)[["L", "attention", "implementation", "seconds_per_step",
                          "speedup_over_netket", "flops_per_step", "fraction_of_peak"]])
