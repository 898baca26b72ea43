"""Budget and baseline results, as a table or Markdown, appended to a flops or report view."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from attncli.analyses.checks import CheckResult
from attncli.render.common import md_table
from attncli.render.layout import Trimmed, md_document, plain_table


def _detail(c: CheckResult) -> str:
    """The message without the check's own name in front (the row already names it)."""
    prefix = f"{c.name}: "
    return c.message[len(prefix):] if c.message.startswith(prefix) else c.message


def table(checks: Sequence[CheckResult]) -> Table:
    """The checks, failed ones first."""
    failed = sum(not c.passed for c in checks)
    t = plain_table(f"checks: {failed} of {len(checks)} FAILED" if failed else f"checks: all {len(checks)} passed")
    t.add_column("check", no_wrap=True)
    t.add_column("result", no_wrap=True)
    t.add_column("detail")
    for c in sorted(checks, key=lambda c: c.passed):
        t.add_row(c.name, "pass" if c.passed else Text("FAIL", style="bold red"), _detail(c))
    return t


def markdown(checks: Sequence[CheckResult]) -> str:
    failed = sum(not c.passed for c in checks)
    return md_document("\n".join([f"**Checks: {'all passed' if not failed else f'{failed} failed'}**", "",
                      md_table(["check", "result", "detail"],
                               [(c.name, "pass" if c.passed else "**FAIL**", _detail(c))
                                for c in sorted(checks, key=lambda c: c.passed)])]))


def with_checks(view: Callable[[], RenderableType], checks: Sequence[CheckResult]) -> Callable[[], RenderableType]:
    """``view`` followed by the checks table (when there are checks); a failed check comes first,
    above the view, where a CI log's reader sees it before anything else."""
    if not checks:
        return view
    if any(not c.passed for c in checks):
        return lambda: Trimmed(Group(table(checks), Text(""), view()))
    return lambda: Trimmed(Group(view(), Text(""), table(checks)))


def md_with_checks(view: Callable[[], str], checks: Sequence[CheckResult]) -> Callable[[], str]:
    """The checks first (what CI readers look for), then ``view``."""
    return (lambda: markdown(checks) + "\n\n" + view()) if checks else view
