"""The one home of number formats: SI counts, IEC bytes, thousands separators (no rich, no torch).

The renderers (:mod:`attncli.render.common` re-exports these) and the kinds' sentences use them.
"""

from __future__ import annotations

UNITS = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


def human(n: float, suffix: str = "") -> str:
    """The one formatter for counts: SI units, three significant digits.

    68719476736 -> '68.7 G', 151000000 -> '151 M', 512 -> '512'; ``suffix`` follows the unit
    ('989 TFLOP/s'). Exact integers are in the JSON and beside it (:func:`commas`).
    """
    for scale, unit in UNITS:
        if abs(n) >= scale * 0.9995:  # NOTE: 999,999 is '1.00 M', not '1e+03 K'
            return f"{_sig3(n / scale)} {unit}{suffix}"
    plain = str(int(n)) if n == int(n) else _sig3(n)
    return f"{plain} {suffix}" if suffix else plain


def _sig3(x: float) -> str:
    """Three significant digits, keeping trailing zeros: 2.0 -> '2.00', 150.99 -> '151'."""
    digits = 2 if abs(x) < 9.995 else 1 if abs(x) < 99.95 else 0
    return f"{x:.{digits}f}"


def human_bytes(n: float) -> str:
    """The one formatter for memory: IEC (binary) units, three significant digits.

    1073741824 -> '1.00 GiB', 32 * 2**40 -> '32.0 TiB', 512 -> '512 B'.
    """
    for scale, unit in ((2**50, "PiB"), (2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(n) >= scale * 0.9995 * 1000 / 1024:  # NOTE: 1000 MiB reads as 0.98 GiB
            return f"{_sig3(n / scale)} {unit}"
    return f"{int(n)} B"


def commas(n: int) -> str:
    return f"{n:,}"
