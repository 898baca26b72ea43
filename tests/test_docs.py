"""The documentation stays true: every command and flag of the app is documented under docs/, every
JSON schema the code writes is in docs/json.md, the usage blocks are the commands' own, every
``attncli`` command quoted in the README or docs/ runs with the exit code it documents, every quoted
``$ attncli ...`` output is what the command prints, and the Markdown renders as GitHub renders it.

The commands run in-process (torch is imported once); ``bench`` runs with a short timing budget.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
import typer.main

from attncli.cli import app
from attncli.cli.common import SPEC_FIELDS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
DOC_FILES = (README, ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md")))
LAYER_SOURCES = ("config", "preset")
BLOCK = re.compile(r"(<!-- usage:(?P<cmd>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /usage -->)", re.S)
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.S | re.M)
SHELL_OPERATORS = (">", "|", "&", ";", "<", "2>")
"""A command ends at the first shell operator: what follows is the shell's (a redirection, a pipe)."""
EXIT = re.compile(r"#\s*exit (\d+)")
"""A line that documents a failure says so: ``attncli flops ... --max-flops 60G   # exit 1``."""
BENCH_BUDGET = ("--min-run-time", "0.02")
"""``bench`` runs with this timing budget (a later option wins): the test checks the command, not a speed."""


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# -- what the app has --------------------------------------------------------------------------------

def commands() -> dict[str, Any]:
    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def every_option() -> dict[str, set[str]]:
    """Every spelling of every option (``--dim``, ``-f``, ``--no-bias``) -> where it is taken, read from
    the Typer app itself (the root's own options included), as tests/cli/discovery.py reads them."""
    group = typer.main.get_command(app)
    found: dict[str, set[str]] = {}
    for where, params in [("attncli", group.params), *((f"attncli {n}", c.params) for n, c in commands().items())]:
        for p in params:
            if getattr(p, "param_type_name", "option") != "option":
                continue
            for name in (*p.opts, *p.secondary_opts):
                found.setdefault(name, set()).add(where)
    return found


def docs_text() -> str:
    return "\n".join(f.read_text() for f in sorted(DOCS.glob("*.md")))


def named(flag: str, text: str) -> bool:
    """``flag`` appears as itself, not as part of a longer flag (``--seq`` is not ``--kv-seq``)."""
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def test_every_command_and_flag_is_documented_under_docs() -> None:
    text = docs_text()
    missing = [f"attncli {n}" for n in commands() if f"attncli {n}" not in text]
    missing += [f"{flag} ({', '.join(sorted(where))})" for flag, where in every_option().items()
                if not named(flag, text)]
    assert not missing, f"not named anywhere under docs/: {missing}"


def test_the_flag_check_sees_a_missing_flag() -> None:
    assert named("--seq", "attncli flops --seq 8") and named("-v", "`--verbose`/`-v`")
    assert not named("--seq", "attncli flops --kv-seq 8") and not named("--no-bias", "--no-bias-kv")
    assert "--dim" in every_option() and "--version" in every_option() and "-f" in every_option()


def schemas_in_code() -> set[str]:
    pattern = re.compile(r"attncli\.[a-z_]*/[0-9]+")
    return {s for f in (ROOT / "attncli").rglob("*") if f.suffix in (".py", ".json", ".md")
            for s in pattern.findall(f.read_text(encoding="utf-8"))}


def test_every_json_schema_is_documented() -> None:
    found = schemas_in_code()
    assert {"attncli.flops/2", "attncli.model/1", "attncli.bench/2"} <= found  # the search itself works
    text = (DOCS / "json.md").read_text()
    assert not [s for s in sorted(found) if f"`{s}`" not in text], "schemas missing from docs/json.md"


# -- usage blocks and the layer-flag table -------------------------------------------------------

def usage(name: str) -> str:
    """A command's own options (the layer flags are in docs/layer-flags.md), from the real command."""
    cmd = commands()[name]
    layer = " [LAYER FLAGS]" if any(p.name in SPEC_FIELDS for p in cmd.params) else ""
    rows = []
    for p in cmd.params:
        if p.name in SPEC_FIELDS or p.name in ("format", "output", "help"):
            continue
        if layer and p.name in LAYER_SOURCES:  # --config/--preset are layer flags (their own table)
            continue
        flags = "/".join(p.opts + p.secondary_opts)
        rows.append(f"  {flags:<22} {' '.join((p.help or '').split())}")
    return "\n".join([f"```text\nattncli {name}{layer} [OPTIONS]", *rows, "```"]) + "\n"


def test_usage_blocks_match_the_commands(update_golden: bool) -> None:
    found: dict[str, list[str]] = {}
    for f in DOC_FILES:
        text = f.read_text()
        if update_golden:
            text = BLOCK.sub(lambda m: m.group(1) + usage(m.group("cmd")) + m.group(4), text)
            f.write_text(text)
        for m in BLOCK.finditer(text):
            found.setdefault(m.group("cmd"), []).append(m.group("body"))
    assert set(found) == set(commands()), "every command has a usage block under docs/"
    for name, bodies in found.items():
        assert len(bodies) == 1, f"one usage block of {name}"
        assert bodies[0] == usage(name), f"usage of {name} is stale: run with --update-golden"


def test_every_layer_flag_is_in_the_layer_flag_table() -> None:
    text = (DOCS / "layer-flags.md").read_text()
    for p in commands()["shapes"].params:
        if p.name in SPEC_FIELDS or p.name in ("format", "output", *LAYER_SOURCES):
            for flag in p.opts:
                assert f"`{flag}" in text or f"{flag}/" in text or f"/{flag}" in text, flag


# -- the quoted commands and their output --------------------------------------------------------

@dataclass(frozen=True)
class Quoted:
    """One ``attncli`` command quoted in a document, and what the document says it does."""

    where: str
    argv: tuple[str, ...]
    code: int
    stdout: bool = True
    """Whether the quoted output holds stdout (else stderr alone)."""
    output: tuple[str, ...] | None = None
    """The output a ``$ attncli ...`` block shows (``...`` where lines are left out), or None."""

    def __str__(self) -> str:
        return f"{self.where}: attncli {' '.join(self.argv)}"


def parse(line: str) -> tuple[tuple[str, ...], int, bool]:
    """The arguments of one ``attncli ...`` line (up to a shell operator), its documented exit code,
    and whether its stdout is shown (``> /dev/null`` leaves stderr alone)."""
    code = EXIT.search(line)
    words = shlex.split(line, comments=True)
    assert words[0] == "attncli", line
    argv: list[str] = []
    for w in words[1:]:
        if w.startswith(SHELL_OPERATORS):
            break
        argv.append(w)
    shell = " ".join(words[len(argv) + 1:]).replace("> /", ">/")
    return tuple(argv), int(code.group(1)) if code else 0, not shell.startswith(">/dev/null")


def quoted(files: tuple[Path, ...] = DOC_FILES) -> list[Quoted]:
    """Every ``attncli`` line of a ``sh`` block, and every block that opens with ``$ attncli ...``."""
    out = []
    for f in files:
        for m in FENCE.finditer(f.read_text()):
            lines = m.group("body").splitlines()
            if lines and lines[0].startswith("$ attncli "):
                out.append(Quoted(rel(f), *parse(lines[0][2:]), tuple(ln.rstrip() for ln in lines[1:])))
            elif m.group("lang") == "sh":
                out += [Quoted(rel(f), *parse(ln.strip())) for ln in lines if ln.strip().startswith("attncli ")]
    return out


_RUNS: dict[tuple[str, ...], Any] = {}


def run(cli: Callable[..., Any], argv: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run a quoted command once per session, in-process, from the repository root."""
    if argv not in _RUNS:
        monkeypatch.chdir(ROOT)
        _RUNS[argv] = cli(*argv, *(BENCH_BUDGET if argv[0] == "bench" else ()))
    return _RUNS[argv]


def shows(expected: tuple[str, ...], printed: str) -> str | None:
    """Why ``printed`` is not what a block quotes, or None. A block without ``...`` is the whole
    output; with it, its lines are printed in this order, others between them left out. Of a
    ``bench`` block only the roofline estimate is compared: the rest is measured here."""
    lines = [ln.rstrip() for ln in printed.splitlines()]
    if "..." not in expected:
        return None if list(expected) == lines else "\n".join(lines)
    at = 0
    for want in (e for e in expected if e != "..."):
        while at < len(lines) and lines[at] != want:
            at += 1
        if at == len(lines):
            return f"not printed (or out of order): {want!r}\n" + "\n".join(lines)
        at += 1
    return None


def comparable(q: Quoted) -> tuple[str, ...]:
    assert q.output is not None
    if q.argv[0] != "bench":
        return q.output
    estimate = [i for i, ln in enumerate(q.output) if ln.startswith("Roofline estimate")]
    return ("...", *q.output[estimate[0]:]) if estimate else ()


@pytest.mark.parametrize("q", quoted(), ids=str)
def test_quoted_commands_run_as_documented(q: Quoted, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    r = run(cli, q.argv, monkeypatch)
    assert "Traceback" not in r.err
    assert r.code == q.code, (str(q), r.err)
    if q.output is not None and comparable(q):
        problem = shows(comparable(q), r.out + r.err if q.stdout else r.err)
        assert problem is None, f"{q}: the output differs:\n{problem}"


def test_the_output_check_sees_a_changed_number() -> None:
    printed = "title\n\nrow  68,719,476,736\nend\n"
    assert shows(("title", "", "row  68,719,476,736", "end"), printed) is None
    assert shows(("...", "row  68,719,476,736"), printed) is None
    assert shows(("title", "", "row  68,719,476,737", "end"), printed) is not None
    assert shows(("...", "row  68,719,476,737"), printed) is not None
    assert shows(("end", "...", "title"), printed) is not None
    assert parse('attncli report -f markdown >> "$GITHUB_STEP_SUMMARY"') == (("report", "-f", "markdown"), 0, True)
    assert parse("attncli flops --max-flops 60G > /dev/null  # exit 1") == (("flops", "--max-flops", "60G"), 1, False)


# -- GitHub-flavoured Markdown ------------------------------------------------------------------------

def table_count(text: str) -> int:
    """Tables in the source: a header row followed by a delimiter row, outside code blocks."""
    prose = FENCE.sub("", text)
    return len(re.findall(r"^\|.*\|\n\|[-:| ]+\|$", prose, re.M))


def ragged_rows(text: str) -> list[str]:
    """Table rows whose cell count differs from their header's (GitHub drops the extra cells)."""
    bad, cells = [], 0
    for line in FENCE.sub("", text).splitlines():
        if not line.startswith("|"):
            cells = 0
            continue
        n = len(re.findall(r"(?<!\\)\|", line))
        cells = cells or n
        if n != cells:
            bad.append(line)
    return bad


@pytest.mark.parametrize("path", DOC_FILES, ids=rel)
def test_markdown_renders_as_github_renders_it(path: Path) -> None:
    text = path.read_text()
    assert text.count("\n```") % 2 == 0 or text.startswith("```"), "an unclosed code fence"
    html = cmarkgfm.github_flavored_markdown_to_html(text)
    assert html.count("<table>") == table_count(text), "a table that does not render as a table"
    assert not ragged_rows(text), "a table row with more or fewer cells than its header"
    assert "```" not in html, "a broken code fence"
    prose = re.sub(r"<(pre|table|code)\b[^>]*>.*?</\1>", "", html, flags=re.S)
    assert "|" not in prose, "a stray pipe outside tables and code"
    for target in re.findall(r'href="([^":#]+)"', html):
        assert (path.parent / target).exists(), f"a link to a missing file: {target}"
