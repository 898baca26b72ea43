"""Usage errors in attncli's own words: the flag, the value given and what it should be."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(("args", "line"), [
    (["flops", "--impl", "fast"], "attncli: error: --impl: 'fast' is not one of torch, split, per-head, fused, sdpa"),
    (["flops", "--dim", "abc"], "attncli: error: --dim: 'abc' is not an integer"),
    (["flops", "--dim", "1.5"], "attncli: error: --dim: '1.5' is not an integer"),
    (["flops", "--format", "xml"], "attncli: error: --format: 'xml' is not one of table, json, markdown"),
    (["flops", "--mask", "foo"], "attncli: error: --mask: 'foo' is not one of none, causal, padding"),
])
def test_choice_and_number_errors_read_like_attncli(args: list[str], line: str, cli: Any) -> None:
    r = cli(*args)
    assert r.code == 2 and r.out == ""
    assert r.err.startswith(line)
    assert len(r.err.strip().splitlines()) == 1
    for pydantic in ("Input should be", "Value error", "Invalid value for", "unable to parse"):
        assert pydantic not in r.err


def test_a_float_option_names_the_value(cli: Any) -> None:
    """permute-test --tolerance is a float: 'x' is not a number (typer's float parsing, not budget's)."""
    r = cli("permute-test", "--tolerance", "x")
    assert r.code == 2 and r.err.startswith("attncli: error: --tolerance: 'x' is not a number")


@pytest.mark.parametrize(("args", "line"), [
    (["flops", "--nope"], "attncli: error: --nope: no such option"),
    (["flops", "--dimm", "3"], "attncli: error: --dimm: no such option (did you mean --dim or"),
    (["flops", "--dim"], "attncli: error: --dim: needs a value"),
    (["flops", "--module"], "attncli: error: --module: needs a value"),
    (["presets", "--config"], "attncli: error: --config: needs a value"),
    (["flops", "--module-timeout", "-1"], "attncli: error: --module-timeout: must be at least 0, got -1"),
    (["flops", "--dim", "0"], "attncli: error: --dim: must be at least 1, got 0"),
])
def test_option_errors_name_the_flag_first(args: list[str], line: str, cli: Any) -> None:
    """click's "No such option: --nope" and "Option '--dim' requires an argument." and pydantic's
    "Input should be greater than or equal to 0", in the --flag: ... form of every other error."""
    r = cli(*args)
    assert r.code == 2 and r.out == "" and len(r.err.strip().splitlines()) == 1
    assert r.err.startswith(line), r.err
    assert "Input should be" not in r.err and "requires an argument" not in r.err


def test_control_characters_in_an_error_are_escaped(cli: Any) -> None:
    """A path with ESC (which would colour the terminal) and CR (which would overwrite the line)
    is shown escaped, on one line."""
    r = cli("flops", "--config", "/nonexistent/a\x1b[31mRED\rOVER.json")
    assert r.code == 2 and "\x1b" not in r.err and "\r" not in r.err
    assert r.err == "attncli: error: --config: /nonexistent/a\\x1b[31mRED\\rOVER.json: no such file\n"
