"""The accelerator table (``attncli/data/gpus.json``): each GPU's dense datasheet peaks per dtype and its
peak memory bandwidth, with the URL of its datasheet; looked up by name (``--gpu``) or matched from the
device name torch reports (``bench``). The roofline (:mod:`attncli.analyses.roofline`) reads it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from attncli.choices import DTYPE_BYTES
from attncli.spec import SpecError

DTYPES: tuple[str, ...] = tuple(DTYPE_BYTES)
"""The dtypes of the device table, in its column order (:data:`attncli.choices.DTYPE_BYTES`'s)."""


# ---------------------------------------------------------------------------- the device table
def _tera(value: float | int | str) -> float:
    """10^12 x a datasheet figure, through decimal: 2.039 TB/s is 2039000000000.0 bytes/s, not
    the 2039000000000.0002 that 2.039 * 1e12 gives in binary floating point."""
    return float(Decimal(str(value)) * 10**12)



@dataclass(frozen=True)
class Gpu:
    """One accelerator's datasheet figures (see ``attncli/data/gpus.json``)."""

    name: str
    label: str
    peak_flops_per_s: Mapping[str, float]
    bandwidth_bytes_per_s: float
    memory_bytes: int
    source: str
    note: str
    match: tuple[str, ...] = ()

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s at ``dtype``; :class:`SpecError` on ``--dtype`` when there is none."""
        if dtype not in self.peak_flops_per_s:
            raise SpecError("--dtype", f"{self.name} has no datasheet figure for {dtype!r}; "
                                       f"choose from {', '.join(self.peak_flops_per_s)}")
        return self.peak_flops_per_s[dtype]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "peak_flops_per_s": dict(self.peak_flops_per_s),
                "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s, "memory_bytes": self.memory_bytes,
                "source": self.source, "note": self.note}


@functools.cache
def gpus() -> tuple[Gpu, ...]:
    """Every accelerator of the packaged table, in its order (read once)."""
    raw = json.loads(resources.files("attncli").joinpath("data/gpus.json").read_text(encoding="utf-8"))
    out = []
    for g in raw["gpus"]:
        out.append(Gpu(
            name=g["name"], label=g["label"],
            # NOTE: the table is in TFLOP/s and TB/s as datasheets print them; convert once here.
            peak_flops_per_s={k: _tera(v) for k, v in g["peak_tflops"].items()},
            bandwidth_bytes_per_s=_tera(g["bandwidth_tb_per_s"]),
            memory_bytes=round(float(g["memory_gb"]) * 1e9),
            source=g["source"], note=g["note"], match=tuple(g.get("match", ()))))
    return tuple(out)


GPUS_SCHEMA = "attncli.gpus/1"


def gpus_document() -> dict[str, Any]:
    """The ``attncli gpus`` JSON document: every accelerator in SI units."""
    return {"schema": GPUS_SCHEMA,
            "config": {"units": {"peak_flops_per_s": "FLOP/s, dense (no 2:4 sparsity)",
                                 "bandwidth_bytes_per_s": "bytes/s",
                                 "memory_bytes": "bytes (10^9 per datasheet GB)"}},
            "gpus": [g.to_json() for g in gpus()]}


def gpu(name: str, flag: str = "--gpu") -> Gpu:
    """The accelerator called ``name`` (case-insensitive), or by a name people say (``h100``,
    :mod:`attncli.analyses.gpunames`); :class:`SpecError` with the close matches."""
    from attncli.analyses.gpunames import resolve

    table = {g.name: g for g in gpus()}
    return table[resolve(name, list(table), flag)]


_VENDOR_WORDS = frozenset({"nvidia", "amd"})
"""Words a device name may carry or not ("NVIDIA L4", "L4"): dropped before matching."""

_VARIANT_WORD = re.compile(r"pcie|nvl\d*|sxm\d*|mig|laptop|mobile|\d+(?:\.\d+)?gb?")
"""A word that names a board variant: form factor, MIG slice, mobile part, memory size. A device
name with such a word that the matching pattern does not name is another board (an "H200 NVL" is
not the H200 SXM, an "A100 80GB PCIe" not the SXM, a MIG slice not the whole GPU)."""


def _words(name: str) -> tuple[str, ...]:
    """A device name or pattern as lower-case words, split at spaces, hyphens, underscores and
    slashes, vendor words dropped: "NVIDIA A100-SXM4-80GB" -> ("a100", "sxm4", "80gb")."""
    return tuple(w for w in re.split(r"[\s\-_/]+", name.lower()) if w and w not in _VENDOR_WORDS)


@functools.cache
def _match_patterns() -> tuple[tuple[tuple[str, ...], Gpu], ...]:
    """Every entry's ``match`` patterns as words, checked once: no pattern is empty and none
    belongs to two entries (the same words cannot mean two boards)."""
    owner: dict[tuple[str, ...], Gpu] = {}
    for g in gpus():
        for pattern in g.match:
            words = _words(pattern)
            if not words:
                raise ValueError(f"gpus.json: {g.name} has an empty match pattern {pattern!r}")
            if owner.setdefault(words, g) is not g:
                raise ValueError(f"gpus.json: match pattern {pattern!r} of {g.name} is also {owner[words].name}'s")
    return tuple(owner.items())


def _run_at(words: tuple[str, ...], pattern: tuple[str, ...]) -> int | None:
    """Where ``pattern`` occurs in ``words`` as a run of whole words, or None."""
    n = len(pattern)
    return next((i for i in range(len(words) - n + 1) if words[i:i + n] == pattern), None)


def match_device(device_name: str) -> Gpu | None:
    """The table entry for a device name as CUDA reports it ("NVIDIA H100 80GB HBM3"), or None.

    Names and patterns compare as whole words (vendor words dropped), never as substrings: "L4"
    is not in "L40S", "H200" not in "GH200", "B200" not in "GB200". A pattern matches when its
    words occur in the name in order and every other word of the name is no variant word
    (:data:`_VARIANT_WORD`): "H200" does not match "H200 NVL". Of the patterns that match, the
    longest (most words, then most letters) wins, so a name equal to a pattern always gets that
    entry; two entries tied for the longest, or none matching, give None: a device the table does
    not have is costed as nothing rather than as a neighbour.
    """
    words = _words(device_name)
    best: tuple[int, int] = (0, 0)
    found: set[str] = set()
    hit: Gpu | None = None
    for pattern, g in _match_patterns():
        at = _run_at(words, pattern)
        if at is None:
            continue
        rest = words[:at] + words[at + len(pattern):]
        if any(_VARIANT_WORD.fullmatch(w) for w in rest):
            continue
        size = (len(pattern), sum(map(len, pattern)))
        if size > best:
            best, found, hit = size, {g.name}, g
        elif size == best:
            found.add(g.name)
    return hit if len(found) == 1 else None
