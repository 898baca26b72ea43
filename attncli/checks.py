"""Budgets and baselines for CI: parse counts like ``68.7G``, check limits, compare reports.

The checks run on typed results: anything with ``heads``, ``out_proj``, ``fvcore_flops`` and
``params`` (:class:`CountedVariant`: a :class:`attncli.flops.Variant`, a user module's count).
Only the baseline is a document (an earlier run's JSON), read once into :class:`Counted` rows.
Nothing here imports torch. A failed check is a :class:`CheckResult` with ``passed=False``;
the command exits 1 when any fails.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from attncli.spec import SpecError

SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_COUNT = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([KMGTP]?)\s*$", re.IGNORECASE)


def parse_count(text: str, flag: str) -> int:
    """``"1e9"``, ``"68.7G"``, ``"68,719,476,736"``, ``"12M"`` -> an int; else SpecError(flag)."""
    m = _COUNT.match(text)
    if not m:
        raise SpecError(flag, f"expected a count like 1e9, 68.7G or 1,050,624; got {text!r}")
    number = float(m.group(1).replace(",", "").replace("_", ""))
    value = number * SUFFIXES[m.group(2).upper()]
    if not math.isfinite(value) or value < 0:
        raise SpecError(flag, f"expected a non-negative count, got {text!r}")
    return round(value)


@dataclass(frozen=True)
class CheckResult:
    """One budget or baseline comparison."""

    name: str
    value: int
    limit: int
    passed: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "limit": self.limit,
                "passed": self.passed, "message": self.message}


def _pct(over: int, base: int) -> str:
    return f"{100.0 * over / base:+.1f}%" if base else "n/a"


def budget(name: str, value: int, limit: int, what: str) -> CheckResult:
    """``value <= limit``; the message names what exceeded and by how much."""
    if value <= limit:
        return CheckResult(name, value, limit, True, f"{name}: {value:,} within {limit:,} ({what})")
    over = value - limit
    return CheckResult(name, value, limit, False,
                       f"{name}: {value:,} exceeds {limit:,} by {over:,} ({_pct(over, limit)}) ({what})")


def load_baseline(path: Path) -> dict[str, Any]:
    """An earlier ``attncli flops`` or ``attncli report`` JSON document; SpecError otherwise."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError("--baseline", f"cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise SpecError("--baseline", f"{path} is not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith(("attncli.flops/", "attncli.report/")):
        raise SpecError("--baseline", f"{path} is not an attncli flops or report JSON document")
    return doc


class CountedVariant(Protocol):
    """What the checks read of one counted variant (None: a baseline that did not record it)."""

    @property
    def heads(self) -> int: ...
    @property
    def out_proj(self) -> bool: ...
    @property
    def fvcore_flops(self) -> int | None: ...
    @property
    def params(self) -> int | None: ...


@dataclass(frozen=True)
class Counted:
    """One variant of a baseline document (or any count), as the checks compare it."""

    heads: int
    out_proj: bool
    fvcore_flops: int | None
    params: int | None


Key = tuple[int, bool]


def keyed(variants: Iterable[CountedVariant]) -> dict[Key, CountedVariant]:
    """Variants by (heads, out_proj), in their order."""
    return {(v.heads, v.out_proj): v for v in variants}


def flops_part(doc: dict[str, Any]) -> Any:
    """The flops document itself, or the one nested in a report document."""
    return doc.get("flops", doc) if str(doc.get("schema", "")).startswith("attncli.report/") else doc


def baseline_variants(doc: dict[str, Any]) -> dict[Key, Counted]:
    """The FLOP variants of a flops or report document, keyed by (heads, out_proj)."""
    flops = flops_part(doc)
    rows = flops.get("variants", []) if isinstance(flops, dict) else []
    out: dict[Key, Counted] = {}
    for v in rows:
        if isinstance(v, dict) and {"heads", "out_proj"} <= set(v):
            out[(int(v["heads"]), bool(v["out_proj"]))] = Counted(
                int(v["heads"]), bool(v["out_proj"]),
                None if "fvcore_flops" not in v else int(v["fvcore_flops"]),
                None if "params" not in v else int(v["params"]))
    return out


def compare_baseline(new: Mapping[Key, CountedVariant], old: Mapping[Key, CountedVariant],
                     tolerance: float) -> list[CheckResult]:
    """Each variant's fvcore_flops and params must not grow beyond ``old * (1 + tolerance)``."""
    results: list[CheckResult] = []
    for key, nv in new.items():
        ov = old.get(key)
        if ov is None:
            continue
        label = f"{key[0]} head{'s' if key[0] != 1 else ''} {'with' if key[1] else 'without'} W_O"
        for field in ("fvcore_flops", "params"):
            new_value, old_value = getattr(nv, field), getattr(ov, field)
            if new_value is None or old_value is None:
                continue
            value, base = int(new_value), int(old_value)
            limit = math.floor(base * (1.0 + tolerance))
            name = f"baseline {field} ({label})"
            if value <= limit:
                results.append(CheckResult(name, value, limit, True,
                                           f"{name}: {value:,} vs baseline {base:,} ({_pct(value - base, base)})"))
            else:
                results.append(CheckResult(
                    name, value, limit, False,
                    f"{name}: {value:,} regressed from {base:,} by {value - base:,} "
                    f"({_pct(value - base, base)}, tolerance {tolerance:.1%})"))
    if not results:
        results.append(CheckResult("baseline", 0, 0, False,
                                   "baseline: no variant (heads, W_O) in common with the baseline document"))
    return results


def run_checks(variants: Iterable[CountedVariant], heads: int, *, max_flops: str | None,
               max_params: str | None, baseline: Path | None, tolerance: float) -> list[CheckResult]:
    """The budgets and baseline the user asked for, against counted ``variants`` of a layer
    configured with ``heads`` heads (the budgets apply to H heads with W_O)."""
    if tolerance < 0 or not math.isfinite(tolerance):
        raise SpecError("--tolerance", f"must be a non-negative fraction (0.05 = 5%), got {tolerance}")
    limits = [(flag, parse_count(text, flag)) for flag, text in
              (("--max-flops", max_flops), ("--max-params", max_params)) if text is not None]
    old = baseline_variants(load_baseline(baseline)) if baseline is not None else None
    results: list[CheckResult] = []
    new = keyed(variants)
    layer = new.get((heads, True))
    for flag, limit in limits:
        if layer is None:
            raise SpecError(flag, "the document has no variant for the configured layer")
        if flag == "--max-flops":
            results.append(budget("max-flops", int(layer.fvcore_flops or 0), limit,
                                  "fvcore MACs of H heads with W_O; FLOPs = 2x"))
        else:
            results.append(budget("max-params", int(layer.params or 0), limit, "parameters of H heads with W_O"))
    if old is not None:
        results += compare_baseline(new, old, tolerance)
    return results
