"""The code inputs of the table and figure rules: the adapter and every vitnqs module it runs."""

from pathlib import Path

from vitnqs.code_inputs import code_files

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "vitnqs"


def test_a_rule_depends_on_the_modules_behind_its_numbers():
    """mechanism_agreement's script imports vitnqs.agreement only; the reference energies, the
    paper's values and the number formats it shows come through agreement's own imports."""
    files = code_files(REPO / "workflow/scripts/mechanism_agreement.py", PACKAGE)
    names = {Path(f).name for f in files}
    assert files[0].endswith("workflow/scripts/mechanism_agreement.py")
    assert {"agreement.py", "paper.py", "tables.py", "reference.py"} <= names


def test_names_exported_lazily_by_the_package_lead_to_their_module(tmp_path):
    """`from vitnqs import load_run` runs vitnqs/trained.py (vitnqs/__init__.py's lazy export),
    an import inside a function counts too, and other packages' imports are not followed."""
    script = tmp_path / "script.py"
    script.write_text("import numpy\nfrom vitnqs import load_run\n\n"
                      "def later():\n    from vitnqs.starts import FAST_START_STEPS\n")
    names = {Path(f).name for f in code_files(script, PACKAGE)}
    assert {"__init__.py", "trained.py", "starts.py"} <= names
    assert not any("numpy" in name for name in names)
