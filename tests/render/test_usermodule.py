"""``attncli.render.usermodule``: the ``--module`` tables read like the built-in ones.

Title as a line above the table (never squeezed into its width), the one table style (no heavy
boxes), nothing over the width, no trailing spaces in a pipe, no word cut; the mask, window and
S in the title; an effective column when the layer masks pairs; the memory the built-in flops
table prints. Expected numbers are closed forms (fvcore MACs) at E=64, H=4, d=16, B=2, L=16:
q and W_O B*L*E*H*d = 131,072 each, k and v B*L*E*G*d, QK^T and weights x V B*H*L*S*d dense and
B*H*d*(visible pairs) effective.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

SMALL = ("--dim", "64", "--heads", "4", "--batch", "2", "--seq", "16")
LLAMA = "transformers.models.llama.modeling_llama:LlamaAttention"
MISTRAL = "transformers.models.mistral.modeling_mistral:MistralAttention"
# Causal, L = S = 16: query p sees p + 1 keys, 16*17/2 = 136 of the 256 pairs.
CAUSAL_QK = 2 * 4 * 16 * 136  # B*H*d*(visible pairs) = 17,408
DENSE_QK = 2 * 4 * 16 * 16 * 16  # B*H*L*S*d = 32,768
# Llama, G=2: q = W_O = B*L*E*H*d = 131,072; k = v = B*L*E*G*d = 2*16*64*2*16 = 65,536
LLAMA_DENSE = 131_072 + 2 * 65_536 + 2 * DENSE_QK + 131_072  # 458,752
LLAMA_EFFECTIVE = 131_072 + 2 * 65_536 + 2 * CAUSAL_QK + 131_072  # 427,008


def _check_text(text: str, width: int) -> None:
    assert "…" not in text, "a cell or header was truncated"
    for line in text.splitlines():
        assert len(line) <= width, f"over {width} columns: {line!r}"
        assert line == line.rstrip(), f"trailing spaces: {line!r}"
        assert not re.search(r"[┏┃━┡╇│└┘]", line), f"heavy box: {line!r}"


def _table(cli: Any, monkeypatch: pytest.MonkeyPatch, width: int, *args: str) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    r = cli(*args)
    assert r.code == 0, r.err
    _check_text(r.out, width)
    return str(r.out)


def _row(text: str, label: str) -> list[str]:
    (line,) = [ln for ln in text.splitlines() if ln.startswith(label + " ")]
    return line.split()


@pytest.mark.parametrize("width", [80, 140])
def test_llama_table_shows_mask_effective_and_memory(cli: Any, monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    pytest.importorskip("transformers")
    text = _table(cli, monkeypatch, width, "flops", "--module", LLAMA, *SMALL, "--kv-heads", "2", "-v")
    lines = text.splitlines()
    assert lines[0].startswith("attncli flops: module")
    assert LLAMA in lines[0] or lines[1] == LLAMA  # whole, never broken mid-word
    assert "B=2 L=16 E=64 H=4 G=2 d=16 mask=causal" in text
    header = next(ln for ln in lines if ln.startswith("stage "))
    assert header.split()[-1] == "effective"
    assert _row(text, "QK^T")[-3:] == [f"{DENSE_QK:,}", f"{DENSE_QK:,}", f"{CAUSAL_QK:,}"]
    assert _row(text, "total")[-3:] == [f"{LLAMA_DENSE:,}", f"{LLAMA_DENSE:,}", f"{LLAMA_EFFECTIVE:,}"]
    assert "visible (query, key) pairs only" in text and "dense" in text
    # float32: attention matrix B*H*L*S*4 = 8,192 B; KV cache 2*B*S*G*d*4 = 8,192 B; activations
    # q, scores, weights, context, output 8,192 B each + k, v B*S*G*d*4 = 4,096 each = 48 KiB.
    mem = next(i for i, ln in enumerate(lines) if ln.startswith("memory one forward pass would need (float32)"))
    assert ["8.00", "KiB", "48.0", "KiB", "8.00", "KiB"] in [ln.split() for ln in lines[mem:mem + 6]]


def test_mistral_title_names_the_window(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Window 4 at L = 16: query p sees min(4, p + 1) keys, 1 + 2 + 3 + 13*4 = 58 pairs."""
    pytest.importorskip("transformers")
    text = _table(cli, monkeypatch, 80, "flops", "--module", MISTRAL, *SMALL, "--kv-heads", "2", "--window", "4")
    assert "window=4" in text
    assert _row(text, "QK^T")[-1] == f"{2 * 4 * 16 * 58:,}"


def test_cross_attention_title_names_s_and_no_effective_column(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No mask: no effective column. S = 96: QK^T B*H*L*S*d = 2*4*16*96*16 = 196,608."""
    text = _table(cli, monkeypatch, 80, "flops", "--module", "tests.usermods:build_mha", *SMALL, "--kv-seq", "96")
    assert "B=2 L=16 S=96 E=64 H=4 G=4 d=16" in text
    header = next(ln for ln in text.splitlines() if ln.startswith("stage "))
    assert "effective" not in header
    assert _row(text, "QK^T")[-2:] == ["196,608", "196,608"]


@pytest.mark.parametrize("width", [80, 140])
def test_shapes_table_has_a_title_line_and_the_plain_style(cli: Any, monkeypatch: pytest.MonkeyPatch,
                                                           width: int) -> None:
    text = _table(cli, monkeypatch, width, "shapes", "--module", "tests.usermods:build_mha", "--kv-seq", "96")
    assert text.splitlines()[0].startswith("attncli shapes: module tests.usermods:build_mha")
    assert "S=96" in text
    # MultiheadAttention(512, 8): in_proj 3E x E + 3E, out_proj E x E + E = 1,050,624
    assert _row(text, "total")[-1] == "1,050,624"


cmarkgfm = pytest.importorskip("cmarkgfm")


@pytest.mark.parametrize("args", [
    ("flops", "--module", LLAMA, *SMALL, "--kv-heads", "2"),
    ("flops", "--module", "tests.usermods:timm_qk_norm", *SMALL),
    ("shapes", "--module", "torch.nn:MultiheadAttention"),
])
def test_markdown_renders_on_github(cli: Any, args: tuple[str, ...]) -> None:
    if LLAMA in args:
        pytest.importorskip("transformers")
    from cmarkgfm.cmark import Options

    r = cli(*args, "--format", "markdown")
    assert r.code == 0, r.err
    html = str(cmarkgfm.github_flavored_markdown_to_html(r.out, options=Options.CMARK_OPT_UNSAFE))
    assert "<em>" not in html, "a formula turned into emphasis"
    tables = re.findall(r"<table>.*?</table>", html, flags=re.S)
    assert tables
    for t in tables:
        head = re.search(r"<thead>.*?</thead>", t, flags=re.S)
        assert head is not None
        n = len(re.findall(r"<th[ >]", head.group(0)))
        for row in re.findall(r"<tr>.*?</tr>", t, flags=re.S):
            assert len(re.findall(r"<td[ >]", row)) in (0, n)
    if args[0] == "flops" and LLAMA in args:
        assert "mask=causal" in r.out and f"{CAUSAL_QK:,}" in r.out and "Memory one forward pass" in r.out


def test_module_flops_fits_one_screen_by_default(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stages, the summary and the cross-check on one 80x24 screen; the rest under --verbose."""
    pytest.importorskip("transformers")
    text = _table(cli, monkeypatch, 80, "flops", "--module", LLAMA, *SMALL, "--kv-heads", "2")
    assert len(text.splitlines()) <= 24 and "FlopCounterMode" in text and "--verbose" in text
    assert "memory one forward pass" not in text
    verbose = _table(cli, monkeypatch, 80, "flops", "--module", LLAMA, *SMALL, "--kv-heads", "2", "-v")
    assert "memory one forward pass" in verbose
