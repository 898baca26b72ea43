"""``attncli.render.common``: number formats and Markdown tables (no torch)."""

from __future__ import annotations

from attncli.render.common import commas, human, human_bytes, md_table, render_table_text


def test_human_units_are_decimal_and_bytes_binary() -> None:
    assert human(68_719_476_736) == "68.72 G"   # the seed's 8 heads with W_O
    assert human(999) == "999"
    assert human(1_500_000) == "1.50 M"
    assert human_bytes(2**30) == "1.00 GiB"     # the seed's attention matrix at float32
    assert human_bytes(512 * 2**10) == "512.00 KiB"
    assert human_bytes(100) == "100 B"
    assert commas(60_129_542_144) == "60,129,542,144"


def test_md_table_escapes_pipes_and_aligns() -> None:
    text = md_table(["a", "b|c"], [("x|y", 3)], align="lr")
    assert text.splitlines() == ["| a | b\\|c |", "| --- | ---: |", "| x\\|y | 3 |"]


def test_plain_text_has_no_colour() -> None:
    from rich.text import Text

    out = render_table_text(Text("FAIL", style="bold red"), width=20)
    assert out == "FAIL\n" and "\x1b[" not in out
