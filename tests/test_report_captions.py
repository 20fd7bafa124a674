"""The captions of `snakemake --report` (workflow/report/*.rst) are reStructuredText: a stray
|x| is a substitution reference, and `--report` prints an error for it into its log while the
caption shows the raw markup. Every caption parses without a warning or an error."""

from __future__ import annotations

import io

import pytest
from docutils.core import publish_doctree
from docutils.utils import Reporter
from train_helpers import REPO

CAPTIONS = sorted((REPO / "workflow" / "report").glob("*.rst"))


def parse_errors(text: str) -> list[str]:
    """The lines of docutils' report on ``text`` at level WARNING and above (the transforms, such
    as substitution, report there and not in the document tree)."""
    report = io.StringIO()
    publish_doctree(text, settings_overrides={"report_level": Reporter.WARNING_LEVEL,
                                              "halt_level": Reporter.SEVERE_LEVEL + 1,
                                              "warning_stream": report})
    return [line for line in report.getvalue().splitlines()
            if any(f"({level}/" in line for level in ("WARNING", "ERROR", "SEVERE"))]


def test_a_stray_substitution_reference_is_an_error():
    assert parse_errors("the least energy, -3/2 (1 + |J2|)")
    assert not parse_errors("the least energy, -3/2 (1 + ``|J2|``)")
    assert parse_errors("an inline literal ``left open")  # a WARNING


@pytest.mark.parametrize("caption", CAPTIONS, ids=[path.name for path in CAPTIONS])
def test_every_report_caption_is_clean_restructuredtext(caption):
    assert parse_errors(caption.read_text()) == []
