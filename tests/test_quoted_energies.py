"""Every energy per site that README.md, results/README.md (the status of the committed results)
or config/config.yaml quotes with its error, as
-0.503275(12), is the rounding of a committed result: a run's summary.json or a row of a committed
analysis or probe CSV (a column ``X`` beside its ``X_error``); quoted with a relative error
(-0.503275(12), 1.06e-3), both are one run's, the relative error the tables print. A number
typed by hand that drifts from the data it reports fails here; the rendered tables
(results/tables, not committed) are not a source, so the data a fresh clone holds is checked.
The same holds for the small differences the READMEs quote with their errors, as 4.00(31)e-4: each
is a committed CSV pair (a freeze cost per site) or two committed runs of one system and depth
apart, relative to the reference energy, their error bars in quadrature (the agreement spreads).
The README's at-a-glance table is checked number by number: what it reports as measured here is
a committed run's relative error or a committed freeze cost, what it reports of the paper is
the relative error of a Table 1 energy against the reference; the status's table of seconds per
step of the 6x6 `paper` runs is the summaries' medians per device."""

from __future__ import annotations

import functools
import itertools
import re

import pandas as pd
import pytest
from train_helpers import REPO

from vitnqs.agreement import table_agreement
from vitnqs.io import read_json
from vitnqs.paper import PAPER_TABLE1
from vitnqs.reference import reference_energy
from vitnqs.tables import relative_error, summary_frame

RESULTS = REPO / "results"
QUOTED_ENERGY = re.compile(r"-0\.\d{4,6}\(\d+\)")
# an energy followed by its relative error against the reference: "-0.503275(12), 1.06e-3"
QUOTED_ENERGY_AND_ACCURACY = re.compile(r"(-0\.\d{4,6}\(\d+\)), (\d\.\d+e-\d+)")
STATUS = "results/README.md"  # the status of the committed results, beside them
READMES = ["README.md", STATUS]
DOCUMENTS = [*READMES, "config/config.yaml"]
# the documents that report results: each quotes energies with their errors and relative errors
REPORTING_DOCUMENTS = [STATUS, "config/config.yaml"]
# a number in scientific notation without an error, as 1.06e-3 (not the "e-4" of "4.00(31)e-4")
QUOTED_SCIENTIFIC = re.compile(r"(?<![\d.(])\d\.\d+e-\d+")
# a difference in scientific notation with its error in the mantissa's last digits: "4.00(31)e-4"
QUOTED_DIFFERENCE = re.compile(r"(?<![\d.])\d\.\d+\(\d+\)e-\d+")

# Quoted as history, from data no longer committed: each with where it is told.
HISTORICAL = {
    # README, freeze ablation: session 28's fresh chains of 10x10 decoupled before stranded
    # chains were left out; the code was changed and every ablation recomputed in session 29
    # (results/benchmarks/notes.md, sessions 28-29).
    "-0.4682(62)",
}


@functools.cache
def committed_runs() -> pd.DataFrame:
    """The runs' summaries as the tables read them (``summary_frame``: the relative error against
    today's reference, as every table prints it)."""
    return summary_frame([read_json(path) for path in sorted(RESULTS.glob("runs/*/summary.json"))])


@functools.cache
def document(name: str) -> str:
    """The text of one of DOCUMENTS, read once."""
    return (REPO / name).read_text()


@functools.cache
def committed_tables() -> dict[str, pd.DataFrame]:
    """The committed analysis and probe CSVs by path under results/, numbers as numbers (text
    cells as NaN), read once."""
    paths = sorted([*RESULTS.glob("analysis/**/*.csv"), *RESULTS.glob("probes/**/*.csv")])
    return {path.relative_to(RESULTS).as_posix():
            pd.read_csv(path).apply(pd.to_numeric, errors="coerce") for path in paths}


@functools.cache
def committed_csv_pairs() -> list[tuple[float, float]]:
    """(value, error) of each pair of columns ``X`` and ``X_error`` of the committed analysis and
    probe CSVs."""
    values = []
    for table in committed_tables().values():
        for column in [c for c in table.columns if f"{c}_error" in table.columns]:
            pairs = table[[column, f"{column}_error"]].dropna()
            values.extend(zip(pairs[column], pairs[f"{column}_error"]))
    return values


@functools.cache
def committed_energies() -> list[tuple[float, float]]:
    """(value, error) of every committed energy: the runs' summaries and the CSV pairs."""
    runs = committed_runs()
    return list(zip(runs.energy_per_site, runs.energy_error)) + committed_csv_pairs()


@functools.cache
def committed_differences() -> list[tuple[float, float]]:
    """(|difference|, error) of every two committed runs of one system and depth (L, J2, n_l) with
    a reference energy, relative to it, the error their final energies' error bars in quadrature
    (what the agreement table's spreads are); and the CSV pairs (the freeze costs per site)."""
    runs = committed_runs().dropna(subset=["reference_energy"])
    differences = [
        (abs(a.energy_per_site - b.energy_per_site) / abs(a.reference_energy),
         (a.energy_error**2 + b.energy_error**2) ** 0.5 / abs(a.reference_energy))
        for a, b in itertools.combinations(runs.itertuples(), 2)
        if (a.L, a.J2, a.n_layers) == (b.L, b.J2, b.n_layers)
    ]
    return differences + committed_csv_pairs()


def is_rounding_of(quoted: str, value: float, error: float) -> bool:
    """Whether ``quoted`` ('-0.49692(7)') is ``value`` and ``error``, each rounded to the
    quoted value's last digit."""
    digits = len(quoted.split("(")[0].split(".")[1])
    return quoted == f"{value:.{digits}f}({round(error * 10**digits)})"


def is_rounding_of_scientific(quoted: str, value: float) -> bool:
    """Whether ``quoted`` ('1.06e-3') is ``value`` rounded to the quoted digits."""
    mantissa, exponent = quoted.split("e")
    decimals = len(mantissa.split(".")[1])
    return f"{value:.{decimals}e}" == f"{mantissa}e{int(exponent):+03d}"


def is_rounding_of_difference(quoted: str, value: float, error: float) -> bool:
    """Whether ``quoted`` ('2.087(15)e-2') is |value| and error, in units of the quoted power of
    ten, each rounded to the mantissa's last digit: the error counts units of that digit."""
    mantissa, exponent = quoted.split("e")
    unit = 10.0 ** int(exponent)
    return is_rounding_of(mantissa, abs(value) / unit, error / unit)


def markdown_table(text: str, first_line: str) -> list[list[str]]:
    """The cells, stripped, of the Markdown table in ``text`` whose first line begins with
    ``first_line``: its header row, then its body rows (the |---| row left out)."""
    start = text.index(first_line)
    lines = text[start:].split("\n\n")[0].splitlines()
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for i, line in enumerate(lines) if i != 1]


def test_rounding_is_checked_to_the_last_quoted_digit():
    value, error = -0.49692466, 7.43e-5  # 6x6 factored, J2 = 0.5, n_l = 1
    assert is_rounding_of("-0.49692(7)", value, error)
    assert is_rounding_of("-0.496925(74)", value, error)
    assert not is_rounding_of("-0.49693(7)", value, error)  # off by one in the last digit
    assert not is_rounding_of("-0.49692(8)", value, error)
    assert is_rounding_of("-0.4969(1)", value, error)
    assert not is_rounding_of("-0.4969(2)", value, error)
    assert is_rounding_of_scientific("1.37e-2", 1.36659e-2)
    assert not is_rounding_of_scientific("1.36e-2", 1.36659e-2)
    assert not is_rounding_of_scientific("1.37e-3", 1.36659e-2)
    cost, error = 2.0873e-2, 1.51e-4  # freezing 10x10 t5's attention, per site
    assert is_rounding_of_difference("2.087(15)e-2", cost, error)
    assert is_rounding_of_difference("2.09(2)e-2", cost, error)
    assert not is_rounding_of_difference("2.09(15)e-2", cost, error)  # an error bar 10x too large
    assert is_rounding_of_difference("0.1(17)e-4", 7.55e-6, 1.69e-4)
    assert not is_rounding_of_difference("0.08(17)e-4", 7.55e-6, 1.69e-4)  # 10x too small


@pytest.mark.parametrize("document_name", DOCUMENTS)
def test_every_quoted_energy_is_a_committed_result(document_name):
    energies = committed_energies()
    assert len(energies) > 50  # the committed runs are there to check against
    quoted = sorted(set(QUOTED_ENERGY.findall(document(document_name))) - HISTORICAL)
    unmatched = [q for q in quoted if not any(is_rounding_of(q, v, e) for v, e in energies)]
    assert unmatched == []


@pytest.mark.parametrize("document_name", DOCUMENTS)
def test_every_energy_quoted_with_its_accuracy_is_one_run(document_name):
    """'-0.503275(12), 1.06e-3': one run's summary rounds to both, its energy and its relative
    error against today's reference."""
    runs = committed_runs()
    quoted = QUOTED_ENERGY_AND_ACCURACY.findall(document(document_name))
    unmatched = [
        (energy, accuracy) for energy, accuracy in quoted
        if not any(is_rounding_of(energy, run.energy_per_site, run.energy_error)
                   and is_rounding_of_scientific(accuracy, run.relative_error)
                   for run in runs.itertuples())
    ]
    assert unmatched == []


@pytest.mark.parametrize("document_name", REPORTING_DOCUMENTS)
def test_the_reporting_documents_quote_energies_to_check(document_name):
    """The two tests above check something: the status and the config quote energies with their
    errors, and with their relative errors, in the form the patterns read."""
    assert len(set(QUOTED_ENERGY.findall(document(document_name))) - HISTORICAL) > 3
    assert QUOTED_ENERGY_AND_ACCURACY.findall(document(document_name))


def test_every_quoted_difference_is_two_committed_runs_apart_or_a_committed_cost():
    """'4.00(31)e-4 apart': two committed runs of one system and depth, relative to the reference;
    '+2.39(9)e-3 per site': a committed CSV pair (a freeze cost)."""
    differences = committed_differences()
    quoted = sorted({q for name in READMES for q in QUOTED_DIFFERENCE.findall(document(name))})
    assert len(quoted) > 10  # the agreement spreads and the freeze costs are there
    unmatched = [q for q in quoted
                 if not any(is_rounding_of_difference(q, v, e) for v, e in differences)]
    assert unmatched == []


def at_a_glance_columns() -> tuple[str, str]:
    """The text of the README's at-a-glance table's columns 'measured here' and 'the paper'."""
    header, *rows = markdown_table(document("README.md"), "| question | measured here |")
    assert header[1:3] == ["measured here", "the paper"]
    return " ".join(row[1] for row in rows), " ".join(row[2] for row in rows)


def test_the_at_a_glance_table_reports_committed_results_and_the_papers():
    """Each bare number of the 'measured here' column (1.06e-3, +1.35e-2) rounds a committed run's
    relative error or a committed freeze cost per site; each of 'the paper' column a Table 1
    energy's relative error against the reference (or its mechanisms' spread)."""
    measured, paper = at_a_glance_columns()
    freeze = committed_tables()["analysis/table_freeze_ablation.csv"]
    ours = [*committed_runs().relative_error.dropna(), *freeze.energy_change]
    quoted = QUOTED_SCIENTIFIC.findall(measured)
    assert len(quoted) > 15
    assert [q for q in quoted if not any(is_rounding_of_scientific(q, v) for v in ours)] == []

    theirs = [relative_error(row.paper_energy, reference_energy(row.L, row.J2).value)
              for row in PAPER_TABLE1.itertuples()]
    theirs += [*table_agreement(committed_runs()).paper_spread.dropna()]  # as the table prints
    quoted = QUOTED_SCIENTIFIC.findall(paper)
    assert len(quoted) >= 7
    assert [q for q in quoted if not any(is_rounding_of_scientific(q, v) for v in theirs)] == []


STEP_TIME_DEVICES = {
    "one H100": "NVIDIA H100 80GB HBM3 x1", "two H100s": "NVIDIA H100 80GB HBM3 x2",
    "one H200": "NVIDIA H200 x1", "two H200s": "NVIDIA H200 x2",
}
"""The status's step-time columns and the device names the summaries record."""


def test_the_quoted_seconds_per_step_are_the_summaries():
    """The status's seconds per step of the 6x6 `paper` runs, per mechanism and device: the
    summaries' medians (``training_seconds_per_step``) of the seeds that ran there, each rounded
    as quoted, and '-' where no seed ran on that device."""
    header, *rows = markdown_table(document(STATUS), "| seconds per step |")
    header = header[1:]
    assert header == list(STEP_TIME_DEVICES)
    runs = committed_runs()
    paper = runs[(runs.protocol == "paper") & (runs.L == 6) & (runs.J2 == 0.5)
                 & (runs.n_layers == 4)]
    assert sorted(row[0] for row in rows) == sorted(paper.attention.unique())
    for attention, *cells in rows:
        seeds = paper[paper.attention == attention].training_seconds_per_step
        for column, cell in zip(header, cells):
            device = STEP_TIME_DEVICES[column]
            measured = {f"{by_device[device]:.2f}" for by_device in seeds if device in by_device}
            quoted = set() if cell == "-" else set(cell.split(", "))
            assert quoted == measured, (attention, column)
