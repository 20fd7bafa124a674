"""Build results/benchmarks/h200_step_times.csv from the raw GPU tables in this folder.

Run from the repository root:  python results/benchmarks/measurements/assemble.py [OUT.csv]

Every raw table is one `vitnqs benchmark` process on one H200 (others on the same host ran on
other GPUs, or on the same GPU in session 3 where CHOSEN says so in results/benchmarks/notes.md).
Per (L, mechanism) CHOSEN names the least disturbed process for each implementation:

- "vitnqs step" (float64) and "plain NetKet VMC_SR": from one process, so their ratio is
  measured side by side;
- "vitnqs step, float32 passes": only measured with full float32 matrix products (session 4,
  JAX_DEFAULT_MATMUL_PRECISION=highest, what `forward_dtype: float32` now does). Its speedup is
  against the NetKet row of CHOSEN; `baseline_same_process` says whether that row came from the
  same process. The TF32 float32 rows of sessions 3-4 (default precision, energies off by 1e-4)
  stay in the raw tables only.

FLOP columns are recounted here on the CPU (vitnqs.benchmark.model_flops/step_flops); the
fraction of peak uses each process's own measured float64 matmul rate where it has one, else
the 46.8 TFLOP/s measured on the session-3 H200.
"""

import functools
import sys
from pathlib import Path

import jax
import pandas as pd

jax.config.update("jax_enable_x64", True)

from vitnqs import io  # noqa: E402
from vitnqs.benchmark import LABELS, model_flops, step_flops  # noqa: E402
from vitnqs.config import RunConfig  # noqa: E402
from vitnqs.exchange import antiparallel_fraction  # noqa: E402
from vitnqs.sr import KERNEL_SHARE  # noqa: E402
from vitnqs.system import build_system  # noqa: E402
from vitnqs.train import build_variational_state  # noqa: E402

HERE = Path(__file__).parent
S3, S4 = "h200_2026-11-26", "h200_2026-11-26_session4"
FLOAT64 = (LABELS["vitnqs"], LABELS["netket"])
FLOAT32 = (LABELS["vitnqs-float32"],)
CHOSEN = {
    (6, "t5"): [(f"{S3}/call8_L6_J0.5_nl4_t5_s0.csv", FLOAT64),
                (f"{S4}/call6_L6_J0.5_nl4_t5_s0_paper_highest.csv", FLOAT32)],
    (6, "decoupled"): [(f"{S4}/call4_L6_J0.5_nl4_decoupled_s0_paper.csv", FLOAT64)],
    (6, "factored"): [(f"{S4}/call4_L6_J0.5_nl4_factored_s0_paper.csv", FLOAT64)],
    (8, "t5"): [(f"{S4}/call3_L8_J0.5_nl4_t5_s0_paper.csv", FLOAT64)],
    (8, "decoupled"): [(f"{S4}/call3_L8_J0.5_nl4_decoupled_s0_paper.csv", FLOAT64)],
    (8, "factored"): [(f"{S4}/call3_L8_J0.5_nl4_factored_s0_paper.csv", FLOAT64)],
    (10, "t5"): [(f"{S3}/call8_L10_J0.5_nl4_t5_s0.csv", FLOAT64),
                 (f"{S4}/call6_L10_J0.5_nl4_t5_s0_paper_highest.csv", FLOAT32)],
    (10, "decoupled"): [(f"{S4}/call3_L10_J0.5_nl4_decoupled_s0_paper.csv", FLOAT64)],
    (10, "factored"): [(f"{S4}/call3_L10_J0.5_nl4_factored_s0_paper.csv", FLOAT64),
                       (f"{S4}/call7_L10_J0.5_nl4_factored_s0_paper_highest_vs_netket.csv",
                        FLOAT32)],  # its own NetKet row there: 4.546 s (call 3: 4.549 s)
}
SESSION3_PEAK_FLOPS = 46.8e12
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
for (L, attention), sources in CHOSEN.items():
    chosen = []
    for name, implementations in sources:
        table = io.read_csv(HERE / name)
        for _, row in table[table.implementation.isin(implementations)].iterrows():
            chosen.append((name, row.copy()))
    baseline_source, baseline = next((n, r) for n, r in chosen if r.implementation == LABELS["netket"])
    for name, row in chosen:
        counted = recount(row)
        for key, value in counted.items():
            row[key] = value
        row["flops_per_step"] = sum(counted[k] for k in FLOP_COLUMNS)
        peak = row.get("device_peak_flops")
        row["device_peak_flops"] = peak if pd.notna(peak) else SESSION3_PEAK_FLOPS
        row["fraction_of_peak"] = row.flops_per_step / row.seconds_per_step / row.device_peak_flops
        row["speedup_over_netket"] = baseline.seconds_per_step / row.seconds_per_step
        row["baseline_same_process"] = name == baseline_source
        row["source"] = f"measurements/{name.removesuffix('.csv')}"
        rows.append(row)
table = pd.DataFrame(rows)
io.write_csv(sys.argv[1] if len(sys.argv) > 1 else "results/benchmarks/h200_step_times.csv", table)
print(table[["L", "attention", "implementation", "seconds_per_step", "speedup_over_netket",
             "baseline_same_process", "fraction_of_peak"]].to_string(index=False))
