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
    t = plain_table("checks")
    t.add_column("check", no_wrap=True)
    t.add_column("result", no_wrap=True)
    t.add_column("detail")
    for c in checks:
        t.add_row(c.name, "pass" if c.passed else Text("FAIL", style="bold red"), _detail(c))
    return t


def markdown(checks: Sequence[CheckResult]) -> str:
    failed = sum(not c.passed for c in checks)
    return md_document("\n".join([f"**Checks: {'all passed' if not failed else f'{failed} failed'}**", "",
                      md_table(["check", "result", "detail"],
                               [(c.name, "pass" if c.passed else "**FAIL**", _detail(c)) for c in checks])]))


def with_checks(view: Callable[[], RenderableType], checks: Sequence[CheckResult]) -> Callable[[], RenderableType]:
    """``view`` followed by the checks table (when there are checks)."""
    return (lambda: Trimmed(Group(view(), Text(""), table(checks)))) if checks else view


def md_with_checks(view: Callable[[], str], checks: Sequence[CheckResult]) -> Callable[[], str]:
    """The checks first (what CI readers look for), then ``view``."""
    return (lambda: markdown(checks) + "\n\n" + view()) if checks else view
