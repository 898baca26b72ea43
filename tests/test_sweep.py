"""Sweep ranges and growth exponents (pure parts; the CLI test counts for real)."""

from __future__ import annotations

import pytest

from attncli.spec import SpecError
from attncli.sweep import fit_exponent, parse_values


@pytest.mark.parametrize(("text", "values"), [
    ("128", [128]),
    ("256,128,256", [128, 256]),
    ("128:8192:x2", [128, 256, 512, 1024, 2048, 4096, 8192]),
    ("128:1000:x2", [128, 256, 512]),
    ("128:512:+128", [128, 256, 384, 512]),
    ("2:8", [2, 4, 8]),
])
def test_parse_values(text: str, values: list[int]) -> None:
    assert parse_values(text, "--seq") == values


@pytest.mark.parametrize("text", ["", "a,b", "8:2:x2", "1:10:x1", "0:8:x2", "1:100000:+1", "x"])
def test_parse_values_rejects(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_values(text, "--seq")
    assert info.value.flag == "--seq"


def test_fit_exponent_on_power_laws() -> None:
    xs = [128, 256, 512, 1024]
    assert fit_exponent(xs, [3 * x * x for x in xs]) == pytest.approx(2.0)
    assert fit_exponent(xs, [7 * x for x in xs]) == pytest.approx(1.0)
    assert fit_exponent(xs, [5 for _ in xs]) == pytest.approx(0.0)
    assert fit_exponent([128], [1]) is None
    assert fit_exponent(xs, [0, 1, 2, 3]) is None
