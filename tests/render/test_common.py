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
    assert human(68_719_476_736) == "68.7 G"   # the classic ViT experiment's 8 heads with W_O
    assert human(999) == "999"
    assert human(1_500_000) == "1.50 M"
    assert human(150_994_944) == "151 M"       # three significant digits, always
    assert human(60_129_542_144) == "60.1 G"
    assert human(2_533_274_790_395_904) == "2.53 P"
    assert human(2.53e18) == "2.53 E"
    assert human(999_999) == "1.00 M"          # rounds up into the next unit, not "1000 K"
    assert human(989.4e12, "FLOP/s") == "989 TFLOP/s"
    assert human_bytes(2**30) == "1.00 GiB"     # that experiment's attention matrix at float32
    assert human_bytes(512 * 2**10) == "512 KiB"
    assert human_bytes(32 * 2**40) == "32.0 TiB"
    assert human_bytes(1000 * 2**20) == "0.98 GiB"  # not "1000 MiB"
    assert human_bytes(100) == "100 B"
    assert commas(60_129_542_144) == "60,129,542,144"


def test_one_formatter_for_counts_and_one_for_bytes() -> None:
    """No renderer keeps a number formatter of its own (they disagreed: 151M, 150.99 M, 60.13 G)."""
    import re
    from pathlib import Path

    import attncli.render as pkg

    for path in Path(pkg.__file__).parent.glob("*.py"):
        if path.name == "common.py":
            continue
        defs = re.findall(r"^def (short\w*|human\w*)\(", path.read_text(), re.M)
        assert not defs, f"{path.name} formats numbers itself: {defs}"


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
