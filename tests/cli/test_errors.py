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


def test_other_usage_errors_keep_their_message(cli: Any) -> None:
    r = cli("flops", "--nope")
    assert r.code == 2 and "No such option: --nope" in r.err
