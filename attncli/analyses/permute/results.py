"""The results of the permutation test: frozen dataclasses with ``to_json()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attncli.spec import AttnSpec

SCHEMA = "attncli.permute/1"

SHOW_TOKENS, SHOW_FEATURES = 8, 4
"""Token outputs are listed (batch item 0) up to this many tokens of this many features."""



@dataclass(frozen=True)
class TokenRow:
    """One token's output before and after the permutation (batch item 0)."""

    token: int
    """Index i of the token in the original order (the seed's a_{i+1} -> b_{i+1})."""
    slot_after: int
    """Where P puts the token."""
    input: tuple[float, ...]
    """The token itself, before any encoding."""
    before: tuple[float, ...]
    """f(x) at slot i."""
    after: tuple[float, ...]
    """f(P x) at the token's new slot."""
    max_abs_diff: float

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "slot_after": self.slot_after, "input": list(self.input),
                "before": list(self.before), "after": list(self.after),
                "max_abs_diff": self.max_abs_diff}


@dataclass(frozen=True)
class Case:
    """One encoding: how far ``f(P x)`` is from ``P f(x)``."""

    encoding: str
    description: str
    max_abs_diff: float
    """max |f(P x) - P f(x)| over every element."""
    equivariant: bool
    """``max_abs_diff <= tolerance``."""
    max_abs_output: float
    """max |f(x)|, the scale the difference is measured against."""
    token_diffs: tuple[float, ...]
    """Per token (original order): max |output after - output before|."""
    rows: tuple[TokenRow, ...] | None
    """The outputs side by side, for small cases; ``None`` otherwise."""

    def to_json(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "description": self.description,
                "max_abs_diff": self.max_abs_diff, "equivariant": self.equivariant,
                "max_abs_output": self.max_abs_output, "token_diffs": list(self.token_diffs),
                "outputs": None if self.rows is None else [r.to_json() for r in self.rows]}


@dataclass(frozen=True)
class MaskCheck:
    """With a mask: the no-encoding case again, the mask now permuted with its tokens."""

    mask: str
    fixed_max_abs_diff: float
    """The mask stays on its slots (what a model does): the no-encoding case."""
    moved_max_abs_diff: float
    """The mask moves with the tokens (``P M P^T`` / ``P m``)."""
    moved_equivariant: bool

    def to_json(self) -> dict[str, Any]:
        return {"mask": self.mask, "fixed_max_abs_diff": self.fixed_max_abs_diff,
                "moved_max_abs_diff": self.moved_max_abs_diff,
                "moved_equivariant": self.moved_equivariant}


@dataclass(frozen=True)
class RopeInfo:
    """How RoPE was attached to the layer."""

    via: str
    acts: bool
    """False when a head has a single feature: nothing to rotate."""
    stand_in_max_abs_diff: float | None
    """``torch`` impl only: max |stand-in(x) - MHA(x)| without RoPE."""

    def to_json(self) -> dict[str, Any]:
        return {"via": self.via, "acts": self.acts, "stand_in_max_abs_diff": self.stand_in_max_abs_diff}


@dataclass(frozen=True)
class PermuteReport:
    """Everything ``attncli permute-test`` reports."""

    spec: AttnSpec
    permutation: tuple[int, ...]
    tolerance: float
    dtype: str
    encodings: tuple[str, ...]
    tokens: str
    """``seed`` (the seed's three tokens), ``random`` (seeded normal tokens) or ``given``."""
    layout: str
    sequence_axis: int
    input_shape: tuple[int, ...]
    fixed_tokens: tuple[int, ...]
    """Tokens the permutation leaves in place (the seed's b1)."""
    cases: tuple[Case, ...]
    holds: bool
    degenerate: str | None
    """Why the request proves nothing, or ``None``."""
    reasons: tuple[str, ...]
    """Why the demonstration does not hold (empty when it holds)."""
    verdict: str
    mask_check: MaskCheck | None
    rope: RopeInfo | None
    notes: tuple[str, ...]

    def case(self, encoding: str) -> Case:
        return next(c for c in self.cases if c.encoding == encoding)

    def config(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "permutation": list(self.permutation),
                "tolerance": self.tolerance, "encodings": list(self.encodings),
                "dtype": self.dtype, "tokens": self.tokens}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "config": self.config(),
            "layout": self.layout,
            "sequence_axis": self.sequence_axis,
            "input_shape": list(self.input_shape),
            "permutation": list(self.permutation),
            "fixed_tokens": list(self.fixed_tokens),
            "cases": [c.to_json() for c in self.cases],
            "holds": self.holds,
            "degenerate": self.degenerate,
            "reasons": list(self.reasons),
            "verdict": self.verdict,
            "mask_check": None if self.mask_check is None else self.mask_check.to_json(),
            "rope": None if self.rope is None else self.rope.to_json(),
            "notes": list(self.notes),
        }
