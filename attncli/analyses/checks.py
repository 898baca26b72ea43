"""Budgets and baselines for CI: parse counts like ``68.7G``, check limits, compare reports.

The checks run on typed results: anything with ``heads``, ``out_proj``, ``fvcore_flops`` and
``params`` (:class:`CountedVariant`: a :class:`attncli.analyses.flops.Variant`, a user module's count).
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
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from attncli.registry import STANDARD
from attncli.spec import SpecError

SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
MAX_COUNT = 10**30
"""The largest budget or baseline count accepted (a layer at --seq 10**9 --dim 65536 is ~1e23)."""
_COUNT = re.compile(r"^\s*(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+(?:_[0-9]+)*)(?:\.(?P<frac>[0-9]*))?"
                    r"(?:[eE](?P<exp>[+-]?[0-9]{1,3}))?\s*(?P<suffix>[KMGTP]?)\s*$", re.IGNORECASE)


def parse_count(text: str, flag: str) -> int:
    """``"1e9"``, ``"68.7G"``, ``"68,719,476,736"``, ``"12M"`` -> an int; else SpecError(flag).

    Exact: the number is read as a decimal (``68.7G`` is 68,700,000,000, ``9007199254740993``
    stays itself), thousands separators only in groups of three (``1,1M`` is refused), SI
    suffixes decimal (K = 1e3 ... P = 1e15). The result must be a whole number of at most
    :data:`MAX_COUNT`.
    """
    m = _COUNT.match(text)
    if not m:
        raise SpecError(flag, f"expected a count like 1e9, 68.7G or 1,050,624 (commas only between "
                              f"groups of three digits); got {text[:40]!r}")
    digits = m.group("int").replace(",", "").replace("_", "")
    number = Decimal(f"{digits}.{m.group('frac') or '0'}e{m.group('exp') or '0'}")
    value = Fraction(number) * SUFFIXES[m.group("suffix").upper()]
    if value.denominator != 1:
        raise SpecError(flag, f"{text[:40]!r} is not a whole number of {'MACs' if 'flops' in flag else 'parameters'}")
    if value > MAX_COUNT:
        raise SpecError(flag, f"{text[:40]!r} is larger than the largest count accepted (1e30)")
    return int(value)


MAX_TOLERANCE = 10**6
"""The largest --tolerance accepted (a factor of a million)."""
_TOLERANCE = re.compile(r"^\s*(?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]{1,3})?|\.[0-9]+)\s*(?P<pct>%?)\s*$")


def parse_tolerance(value: str | float | Fraction, flag: str = "--tolerance") -> Fraction:
    """``"0.05"``, ``"5%"``, ``"1e-3"`` -> an exact fraction (0.05 = 5% growth allowed)."""
    if isinstance(value, Fraction):
        tol = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(flag, f"must be a non-negative fraction (0.05 or 5%), got {value!r}")
        tol = Fraction(Decimal(repr(value)))
    else:
        m = _TOLERANCE.match(str(value))
        if not m:
            raise SpecError(flag, f"must be a non-negative fraction like 0.05 or a percentage like 5%, "
                                  f"got {str(value)[:40]!r}")
        tol = Fraction(Decimal(m.group("num"))) / (100 if m.group("pct") else 1)
        if not m.group("pct") and tol >= 1:
            # NOTE: "--tolerance 5" read as a fraction is 500%, a gate that lets a 5x regression pass
            raise SpecError(flag, f"{str(value)[:40]} as a fraction is {float(tol) * 100:g}%; write a fraction below 1 "
                                  f"(0.05) or a percentage ({str(value)[:40]}% for {str(value)[:40]} percent)")
    if tol < 0:
        raise SpecError(flag, f"must be a non-negative fraction (0.05 or 5%), got {value!r}")
    if tol > MAX_TOLERANCE:
        raise SpecError(flag, f"at most {MAX_TOLERANCE:,} (a growth of a million times), got {str(value)[:40]!r}")
    return tol


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
    """``over`` as a signed percentage of ``base``; two significant digits when one decimal would
    read +0.0% for a real difference (68.7G exceeded by 19,476,736 is +0.028%)."""
    if not base:
        return "n/a"
    pct = 100.0 * over / base
    return f"{pct:+.2g}%" if over and abs(pct) < 0.05 else f"{pct:+.1f}%"


def budget(name: str, value: int, limit: int, what: str) -> CheckResult:
    """``value <= limit``; the message names what exceeded and by how much."""
    if value <= limit:
        return CheckResult(name, value, limit, True, f"{name}: {value:,} within {limit:,} ({what})")
    over = value - limit
    return CheckResult(name, value, limit, False,
                       f"{name}: {value:,} exceeds {limit:,} by {over:,} ({_pct(over, limit)}) ({what})")


MAX_BASELINE_BYTES = 64 << 20
"""A flops or report document is tens of KiB; refuse a --baseline file larger than this unread."""

BASELINE_SCHEMAS = ("attncli.flops/1", "attncli.flops/2", "attncli.report/1", "attncli.report/2")
"""The document versions a --baseline may be (attncli.analyses.flops.SCHEMA, attncli.analyses.report.SCHEMA)."""

BASIC_LAYER_KEYS = ("dim", "heads", "batch", "seq")
"""Settings every flops document has recorded since its first version: a baseline without them
describes no layer that can be checked."""

LAYER_KEYS = ("dim", "heads", "kv_heads", "head_dim", "batch", "seq", "kv_seq", "kdim", "vdim", "bias",
              "add_bias_kv", "add_zero_attn", "unbatched", "mask", "window", "cache")
KIND_KEYS = ("kind", "kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
"""The kind of layer and MLA's sizes: compared even when one document lacks them (a document
without ``kind`` predates the kinds and describes a standard layer)."""
"""The ``config`` settings a baseline must share with the counted layer (the implementation,
dtype and seed may differ: comparing them is what a baseline is for)."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_baseline(path: Path) -> dict[str, Any]:
    """An earlier ``attncli flops`` or ``attncli report`` JSON document; SpecError otherwise.

    Read strictly: at most :data:`MAX_BASELINE_BYTES`, UTF-8, standard JSON (no ``NaN`` or
    ``Infinity``), not absurdly nested; the schema is checked by :func:`baseline_variants`.
    """
    shown = repr(str(path))
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BASELINE_BYTES + 1)
    except OSError as exc:
        raise SpecError("--baseline", f"cannot read {shown}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a NUL byte in the path
        raise SpecError("--baseline", f"cannot read {shown}: {exc}") from None
    if len(raw) > MAX_BASELINE_BYTES:
        raise SpecError("--baseline", f"{shown} is larger than {MAX_BASELINE_BYTES >> 20} MiB; "
                                      "not an attncli flops or report document")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise SpecError("--baseline", f"{shown} is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise SpecError("--baseline", f"{shown} is not JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError:
        raise SpecError("--baseline", f"{shown} is nested too deeply to be an attncli document") from None
    except ValueError as exc:  # NaN/Infinity, or an integer with thousands of digits
        raise SpecError("--baseline", f"{shown} is not strict JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("schema"), str) or \
            not doc["schema"].startswith(("attncli.flops/", "attncli.report/")):
        raise SpecError("--baseline", f"{shown} is not an attncli flops or report JSON document")
    if doc["schema"] not in BASELINE_SCHEMAS:
        raise SpecError("--baseline", f"{shown} has schema {json.dumps(doc['schema'])[:40]}; this attncli "
                                      f"reads {' and '.join(BASELINE_SCHEMAS)}")
    return doc


def check_same_layer(doc: Mapping[str, Any], config: Mapping[str, Any], where: str = "the baseline") -> None:
    """Refuse (SpecError naming --baseline) a baseline whose ``config`` describes another layer.

    The settings in :data:`LAYER_KEYS` are compared where both documents record them.
    """
    old = doc.get("config")
    if not isinstance(old, dict):
        raise SpecError("--baseline", f"{where} has no config object, so the layer it was made for is "
                                      "unknown; pass --baseline-any-layer to compare anyway")
    missing = [key for key in BASIC_LAYER_KEYS if key not in old]
    if missing:
        raise SpecError("--baseline", f"{where} records no {', '.join(missing)} in its config, so the layer it "
                                      "was made for is unknown; pass --baseline-any-layer to compare anyway")
    differ = [f"{key} {json.dumps(old[key])[:20]} (now {json.dumps(config[key])[:20]})"
              for key in LAYER_KEYS if key in old and key in config
              and json.dumps(old[key]) != json.dumps(config[key])]
    for key in KIND_KEYS:
        default = STANDARD if key == "kind" else None
        was, now = old.get(key, default), config.get(key, default)
        if json.dumps(was) != json.dumps(now):
            differ.append(f"{key} {json.dumps(was)[:20]} (now {json.dumps(now)[:20]})")
    if differ:
        raise SpecError("--baseline", f"{where} was made for another layer: {', '.join(differ)}; "
                                      "pass --baseline-any-layer to compare anyway")


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
    form: str | None = None
    """MLA's form (naive, absorbed); None for other kinds."""


Key = tuple[int, bool, str | None]
"""(heads, out_proj, form): MLA's two variants differ in their form alone."""


def _key(v: CountedVariant) -> Key:
    return (v.heads, v.out_proj, getattr(v, "form", None))


def keyed(variants: Iterable[CountedVariant]) -> dict[Key, CountedVariant]:
    """Variants by (heads, out_proj, form), in their order."""
    return {_key(v): v for v in variants}


def flops_part(doc: dict[str, Any]) -> Any:
    """The flops document itself, or the one nested in a report document."""
    return doc.get("flops", doc) if str(doc.get("schema", "")).startswith("attncli.report/") else doc


def _count(value: Any, what: str) -> int:
    """A non-negative integer count of a baseline (bool is not an int); SpecError otherwise."""
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise SpecError("--baseline", f"{what} must be a non-negative integer of at most 1e30, "
                                      f"got {json.dumps(value)[:40]}")
    return value


def baseline_variants(doc: dict[str, Any]) -> dict[Key, Counted]:
    """The FLOP variants of a flops or report document, keyed by (heads, out_proj, form).

    Every variant is checked (SpecError naming --baseline): ``heads`` a positive integer,
    ``out_proj`` true or false, ``fvcore_flops`` and ``params`` (when present) non-negative
    integers; JSON booleans are not numbers and strings are not booleans.
    """
    flops = flops_part(doc)
    if not isinstance(flops, dict) or not isinstance(flops.get("variants"), list):
        raise SpecError("--baseline", "the baseline has no list of FLOP variants (\"variants\")")
    if not flops["variants"]:
        raise SpecError("--baseline", "the baseline's list of FLOP variants (\"variants\") is empty")
    out: dict[Key, Counted] = {}
    first: dict[Key, int] = {}
    for i, v in enumerate(flops["variants"]):
        where = f"variants[{i}]"
        if not isinstance(v, dict) or "heads" not in v or "out_proj" not in v:
            raise SpecError("--baseline", f"{where} must be an object with heads and out_proj")
        heads = _count(v["heads"], f"{where}.heads")
        if heads < 1:
            raise SpecError("--baseline", f"{where}.heads must be at least 1, got {heads}")
        if type(v["out_proj"]) is not bool:
            raise SpecError("--baseline", f"{where}.out_proj must be true or false, "
                                          f"got {json.dumps(v['out_proj'])[:40]}")
        form = v.get("form")
        if form is not None and form not in ("naive", "absorbed"):
            raise SpecError("--baseline", f"{where}.form must be naive or absorbed, got {json.dumps(form)[:40]}")
        key = (heads, v["out_proj"], form)
        if key in first:
            raise SpecError("--baseline", f"{where} repeats heads {heads}, out_proj {json.dumps(v['out_proj'])}"
                                          f"{'' if form is None else ', form ' + form} of "
                                          f"variants[{first[key]}]: which one to compare is unknown")
        first[key] = i
        out[key] = Counted(
            heads, v["out_proj"],
            None if "fvcore_flops" not in v else _count(v["fvcore_flops"], f"{where}.fvcore_flops"),
            None if "params" not in v else _count(v["params"], f"{where}.params"), form)
    return out


def compare_baseline(new: Mapping[Key, CountedVariant], old: Mapping[Key, CountedVariant],
                     tolerance: float | Fraction) -> list[CheckResult]:
    """Each variant's fvcore_flops and params must not grow beyond ``old * (1 + tolerance)``."""
    tol = parse_tolerance(tolerance)
    results: list[CheckResult] = []
    for key, nv in new.items():
        ov = old.get(key)
        if ov is None:
            continue
        label = (f"{key[0]} head{'s' if key[0] != 1 else ''} {'with' if key[1] else 'without'} W_O"
                 + ("" if key[2] is None else f", {key[2]} form"))
        for field in ("fvcore_flops", "params"):
            new_value, old_value = getattr(nv, field), getattr(ov, field)
            if new_value is None or old_value is None:
                continue
            value, base = int(new_value), int(old_value)
            limit = math.floor(base * (1 + tol))
            name = f"baseline {field} ({label})"
            if value <= limit:
                results.append(CheckResult(name, value, limit, True,
                                           f"{name}: {value:,} vs baseline {base:,} ({_pct(value - base, base)})"))
            else:
                results.append(CheckResult(
                    name, value, limit, False,
                    f"{name}: {value:,} regressed from {base:,} by {value - base:,} "
                    f"({_pct(value - base, base)}, tolerance {float(tol):.1%})"))
    if not results:
        results.append(CheckResult("baseline", 0, 0, False,
                                   "baseline: no variant (heads, W_O) in common with the baseline document"))
    return results


def run_checks(variants: Iterable[CountedVariant], heads: int, *, max_flops: str | None,
               max_params: str | None, baseline: Path | None, tolerance: str | float | Fraction,
               config: Mapping[str, Any] | None = None) -> list[CheckResult]:
    """The budgets and baseline the user asked for, against counted ``variants`` of a layer
    configured with ``heads`` heads (the budgets apply to H heads with W_O).

    With ``config`` (the counted layer's settings, ``AttnSpec.to_dict()``) a baseline made for
    another layer is refused (:func:`check_same_layer`); ``None`` compares any layer.
    """
    tolerance = parse_tolerance(tolerance)
    limits = [(flag, parse_count(text, flag)) for flag, text in
              (("--max-flops", max_flops), ("--max-params", max_params)) if text is not None]
    old = None
    if baseline is not None:
        doc = load_baseline(baseline)
        if config is not None:
            check_same_layer(doc, config, f"the baseline {str(baseline)!r}")
        old = baseline_variants(doc)
    results: list[CheckResult] = []
    variants = list(variants)
    new = keyed(variants)
    # NOTE: the configured layer is the first variant with H heads and W_O (MLA's other form follows it).
    layer = next((v for v in variants if v.heads == heads and v.out_proj), None)
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
