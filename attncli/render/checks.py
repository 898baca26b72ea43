"""Budget and baseline results, as a table or Markdown, appended to a flops or report view."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from attncli.checks import CheckResult
from attncli.render.common import md_table


def table(checks: Sequence[CheckResult]) -> Table:
    t = Table(title="checks", title_justify="left")
    t.add_column("check")
    t.add_column("result")
    t.add_column("detail")
    for c in checks:
        t.add_row(c.name, "pass" if c.passed else Text("FAIL", style="bold red"), c.message)
    return t


def markdown(checks: Sequence[CheckResult]) -> str:
    failed = sum(not c.passed for c in checks)
    return "\n".join([f"**Checks: {'all passed' if not failed else f'{failed} failed'}**", "",
                      md_table(["check", "result", "detail"],
                               [(c.name, "pass" if c.passed else "**FAIL**", c.message) for c in checks])])


def with_checks(view: Callable[[], RenderableType], checks: Sequence[CheckResult]) -> Callable[[], RenderableType]:
    """``view`` followed by the checks table (when there are checks)."""
    return (lambda: Group(view(), table(checks))) if checks else view


def md_with_checks(view: Callable[[], str], checks: Sequence[CheckResult]) -> Callable[[], str]:
    """The checks first (what CI readers look for), then ``view``."""
    return (lambda: markdown(checks) + "\n\n" + view()) if checks else view
