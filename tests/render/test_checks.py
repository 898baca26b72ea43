"""``attncli.render.checks``: a failed check is visible in the table and first in Markdown."""

from __future__ import annotations

from attncli.analyses.checks import budget
from attncli.render.checks import markdown, md_with_checks, table
from attncli.render.common import render_table_text

PASSED = budget("max-params", 1_050_624, 2_000_000, "parameters")
FAILED = budget("max-flops", 68_719_476_736, 60_000_000_000, "MACs")


def test_table_marks_failures() -> None:
    text = render_table_text(table([PASSED, FAILED]), width=200)
    assert "FAIL" in text and "pass" in text and "8,719,476,736" in text


def test_markdown_counts_failures_and_goes_first() -> None:
    assert markdown([PASSED, FAILED]).startswith("**Checks: 1 failed**")
    assert markdown([PASSED]).startswith("**Checks: all passed**")
    assert md_with_checks(lambda: "VIEW", [FAILED])().endswith("VIEW")
    assert md_with_checks(lambda: "VIEW", [])() == "VIEW"
