"""``attncli.render.common``: number formats and Markdown tables (no torch)."""

from __future__ import annotations

import pytest

from attncli.render.common import (
    commas,
    console_environ,
    human,
    human_bytes,
    md_table,
    no_color_requested,
    render_table_text,
    to_json_text,
)
from attncli.spec import SpecError


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


@pytest.mark.parametrize(("columns", "kept"), [("0", False), ("19", False), ("abc", False), ("", False),
                                               ("-5", False), ("20", True), ("120", True)])
def test_unusable_columns_are_dropped(columns: str, kept: bool) -> None:
    # COLUMNS=0 made rich print nothing at all (exit 0): below 20 counts as unset.
    assert ("COLUMNS" in console_environ({"COLUMNS": columns})) is kept


@pytest.mark.parametrize(("value", "off"), [("", False), ("1", True), ("0", True)])
def test_no_color_needs_a_non_empty_value(value: str, off: bool) -> None:
    # no-color.org: "when present and not an empty string"
    assert no_color_requested({"NO_COLOR": value}) is off
    assert no_color_requested({}) is False


def test_json_refuses_nan() -> None:
    with pytest.raises(SpecError):
        to_json_text({"schema": "x", "value": float("nan")})
    assert to_json_text({"v": 1.5}) == '{\n  "v": 1.5\n}\n'
