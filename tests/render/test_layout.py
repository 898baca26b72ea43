"""Every command's table at 80 and 140 columns, piped: nothing truncated, nothing over the width,
no trailing spaces, no status line; and every Markdown report through GitHub's own renderer
(cmark-gfm): formulas stay code, each table parses with its column count.

The words checked per case are the ones rich used to cut (``he…``, ``wit…``, ``memo…``) or break
(``scaled_dot_product_att`` / ``ention``, ``B*S*kdim…``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from attncli.render.layout import md_formulas

LLAMA = ["--dim", "4096", "--heads", "32", "--kv-heads", "8", "--head-dim", "128", "--no-bias"]

CASES: dict[str, tuple[list[str], list[str]]] = {
    "flops_brief": (["flops"], ["heads + W_O *", "fwd+bwd", "params", "--verbose"]),
    "flops_default": (["flops", "--verbose"], ["heads + W_O *", "fwd+bwd", "params", "weights x V", "B*T*kdim*G*d"]),
    "flops_huge": (["flops", "--dim", "8192", "--heads", "64", "--seq", "131072", "--batch", "8", "--verbose"],
                   ["64 heads + W_O *", "2,533,274,790,395,904", "B*T*vdim*G*d", "out_proj: linear"]),
    "flops_modern_gpu": (["flops", *LLAMA, "--seq", "8192", "--batch", "1", "--mask", "causal", "--impl", "sdpa",
                          "--gpu", "h100-sxm", "--verbose"],
                         ["effective", "scaled_dot_product_attention", "B*L*H*d*E", "compute", "memory"]),
    "flops_torch_sdpa": (["flops", "--impl", "torch", "--no-need-weights", "--mask", "causal", "--seq", "256",
                          "--verbose"],
                         ["scaled_dot_product_attention", "effective", "1 head"]),
    "flops_checks": (["flops", "--max-flops", "1G"], ["max-flops", "FAIL", "exceeds"]),
    "shapes_brief": (["shapes"], ["q_heads", "(1, 8, 10, 64)", "parameters: 1,050,624", "--verbose"]),
    "shapes_default": (["shapes", "--verbose"], ["q_heads", "(1, 8, 10, 64)", "out_proj.weight"]),
    "shapes_modern": (["shapes", *LLAMA, "--seq", "4", "--cache", "6", "--verbose"],
                      ["k_heads", "parameters by component"]),
    "permute": (["permute-test", "--verbose"], ["equivariant (<= 1e-06)", "b_i before / after", "unchanged"]),
    "permute_brief": (["permute-test"], ["equivariant (<= 1e-06)", "unchanged", "HOLDS", "--verbose"]),
    "sweep_brief": (["sweep", "--seq", "128:1024:x2"], ["growth exponent", "expected", "--verbose"]),
    "sweep_seq_gpu": (["sweep", "--seq", "128:1024:x2", "--gpu", "h100-sxm", "--verbose"],
                      ["attn matrix", "compute", "growth exponent", "log scale"]),
    "sweep_heads": (["sweep", "--heads", "1,2,4,8,16"], ["H heads with W_O", "attn matrix", "1.00"]),
    "sweep_window": (["sweep", "--window", "128,256,512", "--seq", "1024", "--mask", "causal"],
                     ["QK^T eff.", "total eff."]),
    # The longest datasheet URL (attncli/data/gpus.json) must come out whole, never folded.
    "gpus": (["gpus"], ["h100-sxm", "TB/s", "memory",
                        "https://www.amd.com/content/dam/amd/en/documents/instinct-tech-docs/data-sheets/"
                        "amd-instinct-mi300x-data-sheet.pdf"]),
    "presets": (["presets"], ["llama-3-8b", "mistral-7b", "family"]),
    "bench": (["bench", "--dim", "32", "--heads", "2", "--seq", "8", "--batch", "1", "--min-run-time", "0.01",
               "--threads", "1"], ["median", "FLOP/s", "predicted"]),
}
SLOW = {"report": (["report", "--verbose"], ["FLOPs", "Shapes", "Permutation test", "HOLDS"]),
        "report_brief": (["report"], ["8 heads + W_O *", "shapes: input", "permutation test: holds", "--verbose"])}


def _check_text(text: str, width: int, words: list[str]) -> None:
    assert "…" not in text, "a cell or header was truncated"
    assert "\x1b[" not in text
    for line in text.splitlines():
        # A URL is never folded (a folded URL is two wrong addresses): it alone may run past the width.
        is_url = line.startswith("http") and " " not in line
        assert len(line) <= width or is_url, f"over {width} columns: {line!r}"
        assert line == line.rstrip(), f"trailing spaces: {line!r}"
        assert not re.search(r"[┏┃━┡╇│└┘]", line), f"heavy box: {line!r}"  # one table style
    for word in words:
        assert word in text, f"{word!r} cut or missing at {width} columns"


@pytest.mark.parametrize("width", [80, 140])
@pytest.mark.parametrize("name", sorted(CASES))
def test_tables_fit(name: str, width: int, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    args, words = CASES[name]
    r = cli(*args)
    assert r.code in (0, 1), r.err
    _check_text(r.out, width, words)
    assert "attncli" not in r.err.replace("attncli: CHECK FAILED", "") or "error" not in r.err
    assert not re.search(r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", r.err), "a status line in a pipe"


@pytest.mark.parametrize("name", ["report", "report_brief"])
def test_report_fits_80_columns(cli: Any, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    args, words = SLOW[name]
    r = cli(*args)
    assert r.code == 0, r.err
    _check_text(r.out, 80, words)
    if name == "report_brief":
        assert len(r.out.splitlines()) <= 24, "the default report is the answer on one 80x24 screen"


def test_output_file_has_no_trailing_spaces(cli: Any, tmp_path: Any) -> None:
    target = tmp_path / "flops.txt"
    assert cli("flops", "--mask", "causal", "--output", str(target)).code == 0
    text = target.read_text()
    assert all(line == line.rstrip() for line in text.splitlines())
    assert max(len(line) for line in text.splitlines()) <= 100


def test_force_color_reaches_rich(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """FORCE_COLOR=1 keeps colour in a pipe (rich decides; attncli no longer overrides it)."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    r = cli("flops", "--max-flops", "1G")
    assert "\x1b[" in r.out


# ------------------------------------------------------------------ Markdown, as GitHub renders it
cmarkgfm = pytest.importorskip("cmarkgfm")


def _gfm(md: str) -> str:
    from cmarkgfm.cmark import Options

    return str(cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE))


MARKDOWN = {**{k: v[0] for k, v in CASES.items() if k != "bench"}, "report": SLOW["report"][0]}


@pytest.mark.parametrize("name", sorted(MARKDOWN))
def test_markdown_renders_on_github(name: str, cli: Any) -> None:
    r = cli(*MARKDOWN[name], "--format", "markdown")
    assert r.code in (0, 1), r.err
    html = _gfm(r.out)
    assert "<em>" not in html, "a formula turned into emphasis"
    tables = re.findall(r"<table>.*?</table>", html, flags=re.S)
    pipes = [line for line in r.out.splitlines() if line.startswith("| ")]
    assert tables or not pipes, "pipe rows that did not become a table"
    for t in tables:
        head = re.search(r"<thead>.*?</thead>", t, flags=re.S)
        assert head is not None
        n = len(re.findall(r"<th[ >]", head.group(0)))
        for row in re.findall(r"<tr>.*?</tr>", t, flags=re.S):
            assert len(re.findall(r"<td[ >]", row)) in (0, n), f"a row with the wrong column count in {name}"
    # every Markdown table line has as many cells as its header
    blocks = re.split(r"\n(?!\|)", r.out)
    for block in blocks:
        rows = [line for line in block.splitlines() if line.startswith("| ")]
        if rows:
            cells = {len(re.split(r"(?<!\\)\|", line)) for line in rows}
            assert len(cells) == 1, f"uneven table in {name}: {rows[:3]}"


def test_formulas_become_code() -> None:
    """GFM would eat the asterisks of B*L*E*E (italic L); a code span keeps them."""
    assert "<em>" in _gfm("B*L*E*E")  # the trap itself, in GitHub's renderer
    for text in ("B*L*E*E", "counts B*H*d*(visible (query, key) pairs), what", "cache (2*B*S*G*d)"):
        html = _gfm(md_formulas(text))
        assert "<em>" not in html and "<code>" in html
    assert md_formulas("already `B*L`") == "already `B*L`"
    assert md_formulas("**bold** text") == "**bold** text"
