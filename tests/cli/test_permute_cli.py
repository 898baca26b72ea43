"""``attncli permute-test`` through the CLI: the seed's demo, JSON contract, Markdown, exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from attncli.spec import IMPLS

ENCODED = ("sinusoidal", "learned", "rope")


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    # The table must read in a plain 80-column terminal; pin it so the tests see one.
    monkeypatch.setenv("COLUMNS", "80")


def _token_rows(out: str) -> dict[tuple[str, str], tuple[str, str, str]]:
    """(encoding, token) -> (before, after, status) from the token table."""
    rows: dict[tuple[str, str], tuple[str, str, str]] = {}
    lines = out.splitlines()
    encoding = ""
    for k, line in enumerate(lines):
        m = re.match(r"^\s*(none|sinusoidal|learned|rope)?\s+(a\d) \(.*?\)\s+\d->\d\s+(\(.*?\))\s+\S+\s+(\w+)",
                     line)
        if not m:
            continue
        encoding = m.group(1) or encoding
        after = re.search(r"\(.*?\)", lines[k + 1])
        assert after is not None
        rows[(encoding, m.group(2))] = (m.group(3), after.group(0), m.group(4))
    return rows


def test_defaults_show_b1_unchanged_without_encoding_and_changed_with_each(cli: Any) -> None:
    brief = cli("permute-test")
    assert brief.code == 0 and len(brief.out.splitlines()) <= 24  # the demonstration on one 80x24 screen
    assert len(_token_rows(brief.out)) == 3  # the case without encoding: b1 unchanged
    r = cli("permute-test", "--verbose")
    assert r.code == 0, r.err
    assert r.err == ""
    assert "\x1b[" not in r.out
    assert all(len(line) <= 80 for line in r.out.splitlines())
    rows = _token_rows(r.out)
    assert len(rows) == 12
    before, after, status = rows[("none", "a1")]
    assert before == after and status == "unchanged"
    for name in ENCODED:
        before, after, status = rows[(name, "a1")]
        assert before != after and status == "changed", name
    assert "HOLDS" in r.out and "cannot tell token order" in r.out
    assert "a1 (1, 2)" in r.out and "a2 (2, 3)" in r.out and "a3 (3, 4)" in r.out
    assert "permutation [0, 2, 1]" in r.out


def test_json_contract(cli: Any) -> None:
    r = cli("permute-test", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["schema"] == "attncli.permute/1"
    config = doc["config"]
    assert (config["dim"], config["heads"], config["seq"], config["batch"]) == (2, 1, 3, 1)
    assert config["permutation"] == [0, 2, 1] and config["tolerance"] == 1e-6
    assert config["encodings"] == ["none", *ENCODED]
    assert doc["permutation"] == [0, 2, 1]
    assert doc["holds"] is True
    cases = {c["encoding"]: c for c in doc["cases"]}
    assert cases["none"]["equivariant"] is True
    assert all(cases[n]["equivariant"] is False for n in ENCODED)
    assert cases["none"]["outputs"][0]["before"] == cases["none"]["outputs"][0]["after"]


def test_markdown_and_output_file(cli: Any, tmp_path: Path) -> None:
    md = cli("permute-test", "--format", "markdown")
    assert md.code == 0
    assert md.out.startswith("### attncli permute-test")
    assert "| `none` | a1 | `(1, 2)` | 0->0 |" in md.out and "**HOLDS**" in md.out
    target = tmp_path / "permute.json"
    written = cli("permute-test", "--format", "json", "--output", str(target))
    assert written.code == 0 and written.out == ""
    assert json.loads(target.read_text())["holds"] is True
    table = tmp_path / "permute.txt"
    assert cli("permute-test", "--output", str(table)).code == 0
    assert "unchanged" in table.read_text()


@pytest.mark.parametrize("impl", IMPLS)
def test_every_impl(cli: Any, impl: str) -> None:
    r = cli("permute-test", "--impl", impl, "--format", "json")
    assert r.code == 0, r.err
    assert r.json()["config"]["impl"] == impl


@pytest.mark.parametrize("args", [["--no-batch-first"], ["--unbatched"], ["--batch", "2"],
                                  ["--no-batch-first", "--batch", "3", "--tokens", "seed"]])
def test_every_layout(cli: Any, args: list[str]) -> None:
    r = cli("permute-test", *args, "--format", "json")
    assert r.code == 0, r.err
    assert r.json()["holds"] is True


def test_options(cli: Any) -> None:
    doc = cli("permute-test", "--dim", "8", "--heads", "2", "--seq", "6", "--seed", "3",
              "-e", "rope", "--encoding", "sinusoidal", "--permutation", "5,4,3,2,1,0",
              "--tolerance", "1e-8", "--no-need-weights", "--format", "json").json()
    assert doc["holds"] is True
    assert [c["encoding"] for c in doc["cases"]] == ["none", "sinusoidal", "rope"]
    assert doc["permutation"] == [5, 4, 3, 2, 1, 0]
    assert doc["config"]["tolerance"] == 1e-8 and doc["config"]["tokens"] == "random"
    doc32 = cli("permute-test", "--dtype", "float32", "--format", "json").json()
    assert doc32["holds"] is True and doc32["config"]["tolerance"] == 1e-5


@pytest.mark.parametrize(("args", "words"), [
    (["--seq", "1"], "single token"),
    (["--permutation", "0,1,2"], "identity"),
    (["--tokens", "1,2;2,3;2,3"], "identical tokens"),
])
def test_degenerate_requests_exit_1_and_say_why(cli: Any, args: list[str], words: str) -> None:
    r = cli("permute-test", *args)
    assert r.code == 1
    assert "DEGENERATE" in r.out and words in r.out and "proves nothing" in r.out
    doc = cli("permute-test", *args, "--format", "json")
    assert doc.code == 1
    assert doc.json()["holds"] is False and words in doc.json()["degenerate"]


def test_causal_mask_exits_1_and_explains(cli: Any) -> None:
    r = cli("permute-test", "--mask", "causal", "--format", "json")
    assert r.code == 1
    doc = r.json()
    assert doc["holds"] is False
    assert doc["cases"][0]["equivariant"] is False
    assert any("causal mask itself breaks the symmetry" in x for x in doc["reasons"])
    assert doc["mask_check"]["moved_equivariant"] is True
    table = cli("permute-test", "--mask", "causal")
    assert table.code == 1 and "DOES NOT HOLD" in table.out and "no longer about positional" in table.out


def test_padding_mask(cli: Any) -> None:
    assert cli("permute-test", "--mask", "padding").code == 1
    assert cli("permute-test", "--mask", "padding", "--permutation", "1,0,2").code == 0


def test_rope_without_a_pair_of_features_exits_1(cli: Any) -> None:
    r = cli("permute-test", "--dim", "2", "--heads", "2")
    assert r.code == 1 and "no pair of features" in r.out


@pytest.mark.parametrize(("args", "flag"), [
    (["--permutation", "0,0,1"], "--permutation"),
    (["--permutation", "0,1"], "--permutation"),
    (["--permutation", "0,1,5"], "--permutation"),
    (["--permutation", "x,y,z"], "--permutation"),
    (["--permutation=-1,0,1"], "--permutation"),
    (["--permutation", ""], "--permutation"),
    (["--kdim", "4"], "--kdim"),
    (["--vdim", "4"], "--vdim"),
    (["--kv-seq", "5"], "--kv-seq"),
    (["--encoding", "alibi"], "--encoding"),
    (["--tolerance", "0"], "--tolerance"),
    (["--dtype", "bfloat16"], "--dtype"),
    (["--tokens", "seed", "--seq", "4"], "--tokens"),
    (["--tokens", "1,2"], "--tokens"),
    (["--heads", "3"], "--heads"),
])
def test_bad_input_is_one_line_exit_2(cli: Any, args: list[str], flag: str) -> None:
    r = cli("permute-test", *args)
    assert r.code == 2, (args, r.out, r.err)
    assert r.out == ""
    assert flag in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert "Traceback" not in r.err


def test_help_lists_the_options(cli: Any) -> None:
    r = cli("permute-test", "--help")
    assert r.code == 0
    for option in ("--permutation", "--encoding", "--tolerance", "--dtype", "--tokens", "--impl",
                   "--mask", "--format"):
        assert option in r.out


def test_importing_the_cli_imports_neither_torch_nor_rich() -> None:
    code = "import sys, attncli.cli; print(sorted(m for m in ('torch', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_failed_demonstration_says_so_on_stderr(cli: Any) -> None:
    """One token proves nothing: exit 1 and one CHECK FAILED line, as every failed check gives."""
    r = cli("permute-test", "--seq", "1")
    assert r.code == 1 and r.err.startswith("attncli: CHECK FAILED: permute-test:") and r.err.count("\n") == 1
