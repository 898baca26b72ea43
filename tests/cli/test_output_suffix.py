"""``-o FILE`` writes the format its suffix names (``.json``, ``.md``) unless ``--format`` says
otherwise; a ``--format`` that contradicts the suffix exits 2 naming ``--output``, writing nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.parametrize("command", [["shapes"], ["gpus"], ["presets"]])
def test_json_suffix_writes_json(command: list[str], cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    r = cli(*command, "-o", str(target))
    assert r.code == 0, r.err
    doc = json.loads(target.read_text())
    assert doc["schema"].startswith("attncli.")


@pytest.mark.parametrize("name", ["out.md", "OUT.MD", "out.markdown"])
def test_md_suffix_writes_markdown(name: str, cli: Any, tmp_path: Path) -> None:
    target = tmp_path / name
    r = cli("shapes", "-o", str(target))
    assert r.code == 0, r.err
    text = target.read_text()
    assert text.startswith("#") and "| --- |" in text.replace("---:", "---")


@pytest.mark.parametrize("name", ["out.txt", "out", "out.csv"])
def test_other_suffix_writes_the_table(name: str, cli: Any, tmp_path: Path) -> None:
    target = tmp_path / name
    r = cli("shapes", "-o", str(target))
    assert r.code == 0, r.err
    text = target.read_text()
    assert text.startswith("attncli shapes:") and not text.lstrip().startswith("{") and "| --- |" not in text


def test_typed_format_wins_over_an_unknown_suffix(cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    r = cli("shapes", "--format", "json", "-o", str(target))
    assert r.code == 0, r.err
    assert json.loads(target.read_text())["schema"] == "attncli.shapes/1"


def test_typed_format_agreeing_with_the_suffix(cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "out.md"
    r = cli("gpus", "-f", "markdown", "-o", str(target))
    assert r.code == 0, r.err
    assert target.read_text().startswith("####")


@pytest.mark.parametrize(("name", "fmt"), [("x.json", "markdown"), ("x.json", "table"), ("x.md", "json")])
@pytest.mark.parametrize("command", [["flops", "--dim", "64", "--heads", "2"], ["gpus"], ["presets"],
                                     ["model", "--preset", "llama-3.1-8b"]])
def test_contradiction_exits_2_naming_output(name: str, fmt: str, command: list[str], cli: Any,
                                             tmp_path: Path) -> None:
    target = tmp_path / name
    r = cli(*command, "--format", fmt, "-o", str(target))
    assert r.code == 2
    assert r.err.startswith("attncli: error: --output: ") and r.err.count("\n") == 1
    assert fmt in r.err
    assert not target.exists()
    assert r.out == ""
