"""The table and figure modules read numbers and draw; they must not load NetKet or JAX (seconds
per Snakemake job, and a reader regenerating figures needs neither)."""

import subprocess
import sys

import pytest

JAX_FREE = ("vitnqs.config", "vitnqs.reference", "vitnqs.tables", "vitnqs.records",
            "vitnqs.starts", "vitnqs.trajectories", "vitnqs.probes", "vitnqs.agreement",
            "vitnqs.failed", "vitnqs.analysis_tables", "vitnqs.plotting", "vitnqs.attention_plots",
            "vitnqs.spectrum_plots")


@pytest.mark.parametrize("module", JAX_FREE)
def test_table_and_figure_modules_load_neither_netket_nor_jax(module):
    probe = (f"import sys, {module}; "
             "print(' '.join(m for m in ('netket', 'jax', 'flax') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == [], f"{module} loads {loaded}"


def test_reference_energy_is_the_same_object_through_the_package():
    import vitnqs
    from vitnqs.reference import REFERENCE_ENERGIES, reference_energy

    assert vitnqs.reference_energy is reference_energy
    assert reference_energy(6, 0.5) is REFERENCE_ENERGIES[(6, 0.5)]
    assert reference_energy(6, 0.5).value == -0.50380965
    assert reference_energy(7, 0.5) is None
