"""The permutation test: why attention needs positional encoding (issue 4, seed ``002_*``).

Self-attention without positional information treats its input as a *set*: permute the
tokens with a permutation P and the outputs are only permuted the same way,
``f(P x) = P f(x)`` (permutation equivariance). The output for a token the permutation keeps
in place (the seed's b1) does not change at all. A positional encoding ties every slot of
the sequence to a position, and the symmetry breaks.

:func:`permute_test` runs the layer the spec describes on the tokens ``x`` and on ``P x``,
for every encoding of :mod:`attncli.encodings`, and compares ``f(P x)`` with ``P f(x)``
along the *sequence* axis of the spec's layout (batch-first ``(B, L, E)``, sequence-first
``(L, B, E)`` or unbatched ``(L, E)``).

Seed ``002_*`` gets this wrong: it feeds a ``(1, 3, 2)`` tensor to
``nn.MultiheadAttention(2, 1)``, whose default layout is sequence-first, so it holds one token
in three batch items and its "swap" moves batch items, not tokens. Nothing here permutes
anything but the sequence axis, and requests that prove nothing (one token, the identity, a
swap of identical tokens) are reported as degenerate, never as a pass.

Permutation convention: ``--permutation 0,2,1`` is the new order, slot ``j`` of ``P x``
holds token ``perm[j]`` of ``x`` (``P x = x[perm]``).

The result is a frozen :class:`PermuteReport` with ``to_json()``; nothing here prints.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attncli import encodings as enc
from attncli.layout import along_sequence, first_item, layout_name, sequence_axis, tokens_in_layout
from attncli.modules import build, make_inputs
from attncli.spec import AttnSpec, SpecError

SCHEMA = "attncli.permute/1"

DTYPES: dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32}

# NOTE: the tolerance must sit between rounding noise and the effect of an encoding. A
# permutation only reorders the sums inside softmax and ``weights @ v``, so without encoding
# ``f(P x)`` and ``P f(x)`` differ by rounding alone. Measured at ``--dim 512 --heads 8
# --seq 1024`` for all five impls: about 1e-16 in float64 and 5e-8 in float32, while the
# encodings moved outputs by 4e-2 or more (2e-2 to 6e-1 on the seed's tokens). 1e-6 in
# float64 leaves ten orders of magnitude below and four above; float32 gets 1e-5, two orders
# above its own noise at that size.
DEFAULT_TOLERANCE: dict[str, float] = {"float64": 1e-6, "float32": 1e-5}
"""The default ``--tolerance`` per ``--dtype``."""

SEED_TOKENS: tuple[tuple[float, ...], ...] = ((1.0, 2.0), (2.0, 3.0), (3.0, 4.0))
"""The three tokens of seed ``002_*`` (q1/k1/v1, q2/k2/v2, q3/k3/v3)."""

SEED_PERMUTATION: tuple[int, ...] = (0, 2, 1)
"""The seed's reordering: a1, a3, a2 (the last two tokens swapped)."""

SHOW_TOKENS, SHOW_FEATURES = 8, 4
"""Token outputs are listed (batch item 0) up to this many tokens of this many features."""


# ---------------------------------------------------------------------------- parsing
def parse_permutation(text: str | Sequence[int] | None, length: int, seed: int = 0) -> tuple[int, ...]:
    """The permutation ``--permutation`` asks for, or the default for ``length`` tokens.

    Default: the seed's swap ``0,2,1`` for three tokens, otherwise a random non-identity
    permutation drawn with ``seed`` (``0`` for a single token, which is then degenerate).
    Raises :class:`SpecError` naming ``--permutation`` when the text is not a permutation of
    ``0..length-1``.
    """
    if text is None:
        return default_permutation(length, seed)
    if isinstance(text, str):
        parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
        if not parts:
            raise SpecError("--permutation", "is empty; give the new order as indices, e.g. 0,2,1")
        values: list[int] = []
        for part in parts:
            try:
                values.append(int(part))
            except ValueError:
                raise SpecError("--permutation", f"{part!r} is not an integer; give the new order "
                                                 "as comma-separated indices, e.g. 0,2,1") from None
    else:
        values = [int(v) for v in text]
    if len(values) != length:
        raise SpecError("--permutation", f"has {len(values)} entries but --seq is {length}; "
                                         f"list every index 0..{length - 1} once")
    for v in values:
        if not 0 <= v < length:
            hint = " (indices are 0-based)" if sorted(values) == list(range(1, length + 1)) else ""
            raise SpecError("--permutation", f"index {v} is out of range 0..{length - 1} "
                                             f"for --seq {length}{hint}")
    seen: set[int] = set()
    for v in values:
        if v in seen:
            raise SpecError("--permutation", f"index {v} appears more than once; "
                                             f"a permutation lists every index 0..{length - 1} once")
        seen.add(v)
    return tuple(values)


MAX_BYTES = 1 << 30
"""The permutation test runs real tensors; it refuses a layer whose forward pass needs more."""


def check_size(spec: AttnSpec, dtype: str) -> None:
    """Refuse (SpecError naming the largest flag) a layer too large for a real forward pass.

    Counted: the weights (4 E^2), the input, its permuted copy, encodings and activations
    (about 12 B L E), and the attention matrix with its weights (2 B H L^2), per run.
    """
    n = 8 if dtype == "float64" else 4
    b, h, seq, e = spec.batch, spec.heads, spec.seq, spec.dim
    need = n * (4 * e * e + 12 * b * seq * e + 2 * b * h * seq * spec.s_total)
    if need > MAX_BYTES:
        weights, tokens = 4 * e * e, 12 * b * seq * e + 2 * b * h * seq * spec.s_total
        flag = "--dim" if weights >= tokens else ("--batch" if b > seq else "--seq")
        raise SpecError(flag, f"a real forward pass of this layer needs about {need / 2**30:,.1f} GiB "
                              f"({dtype}); the permutation test runs real tensors and stops at "
                              f"{MAX_BYTES // 2**30} GiB: use a smaller --dim/--seq/--batch (equivariance "
                              "does not depend on the sizes)")


def default_permutation(length: int, seed: int = 0) -> tuple[int, ...]:
    """The seed's swap for three tokens; a seeded random non-identity order otherwise."""
    if length == len(SEED_PERMUTATION):
        return SEED_PERMUTATION
    order = list(range(length))
    if length < 2:
        return tuple(order)
    rng = random.Random(seed)
    while order == sorted(order):
        rng.shuffle(order)
    return tuple(order)


def parse_encodings(names: Sequence[str] | None) -> tuple[str, ...]:
    """The encodings to test, ``none`` first (it is the baseline every other one is judged by).

    Accepts repeated values and comma-separated lists; the default is all of them.
    """
    if not names:
        return enc.ENCODINGS
    chosen: list[str] = []
    for item in names:
        for name in (n.strip().lower() for n in item.split(",")):
            if not name:
                continue
            if name not in enc.ENCODINGS:
                raise SpecError("--encoding", f"unknown encoding {name!r}; choose from "
                                              f"{', '.join(enc.ENCODINGS)}")
            if name not in chosen:
                chosen.append(name)
    if not chosen:
        raise SpecError("--encoding", f"is empty; choose from {', '.join(enc.ENCODINGS)}")
    # NOTE: the no-encoding case is always run: "each encoding breaks the symmetry" means
    # nothing without the layer that keeps it.
    return ("none", *(n for n in enc.ENCODINGS if n in chosen and n != "none"))


def check_self_attention(spec: AttnSpec) -> None:
    """Refuse cross-attention settings: permuting "the tokens" needs q, k and v to be one tensor."""
    for flag, value, same in (("--kv-seq", spec.kv_seq, spec.seq), ("--kdim", spec.kdim, spec.dim),
                              ("--vdim", spec.vdim, spec.dim)):
        if value is not None and value != same:
            raise SpecError(flag, f"permute-test is about self-attention (one sequence as query, key "
                                  f"and value); {flag} {value} makes it cross-attention, drop it")


# ---------------------------------------------------------------------------- results
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


def _per_slot_max(t: Tensor, axis: int) -> Tensor:
    """max over every axis but ``axis``: (L,)."""
    return t.movedim(axis, 0).reshape(t.shape[axis], -1).amax(dim=1)


Rows = Sequence[Sequence[float]]


def parse_tokens(tokens: str | Rows, spec: AttnSpec) -> tuple[str, Rows | None]:
    """Which tokens to run: ``(source, rows)``; ``rows`` is ``None`` for seeded random tokens.

    ``auto`` takes the seed's three tokens when the sizes are the seed's (``--dim 2 --seq 3``,
    one batch item) and random ones otherwise; ``seed`` and ``random`` force either; anything
    else is the tokens themselves, ``;`` between tokens and ``,`` between features
    (``"1,2;2,3;3,4"``), repeated in every batch item.
    """
    if not isinstance(tokens, str):
        return "given", _check_rows([list(map(float, row)) for row in tokens], spec)
    text = tokens.strip().lower()
    fits = spec.dim == len(SEED_TOKENS[0]) and spec.seq == len(SEED_TOKENS)
    if text == "auto":
        return ("seed", SEED_TOKENS) if fits and spec.batch == 1 else ("random", None)
    if text == "random":
        return "random", None
    if text == "seed":
        if not fits:
            raise SpecError("--tokens", f"the seed's tokens are 3 tokens of 2 features; they need "
                                        f"--dim 2 --seq 3 (got --dim {spec.dim} --seq {spec.seq})")
        return "seed", SEED_TOKENS
    rows: list[list[float]] = []
    for part in text.split(";"):
        try:
            rows.append([float(v) for v in part.replace(" ", "").split(",")])
        except ValueError:
            raise SpecError("--tokens", f"{part.strip()!r} is not a token; give auto, seed, random or "
                                        "numbers like 1,2;2,3;3,4 (';' between tokens)") from None
    return "given", _check_rows(rows, spec)


def _check_rows(rows: list[list[float]], spec: AttnSpec) -> list[list[float]]:
    if len(rows) != spec.seq:
        raise SpecError("--tokens", f"{len(rows)} tokens given but --seq is {spec.seq}; "
                                    f"pass --seq {len(rows)}")
    for row in rows:
        if len(row) != spec.dim:
            raise SpecError("--tokens", f"a token has {len(row)} features but --dim is {spec.dim}")
        if any(v != v or abs(v) == float("inf") for v in row):
            raise SpecError("--tokens", "tokens must be finite numbers")
    return rows


# ---------------------------------------------------------------------------- the test
Masks = tuple[Tensor | None, Tensor | None]


def _forward(module: nn.Module, spec: AttnSpec, x: Tensor, masks: Masks, table: Tensor | None) -> Tensor:
    """One self-attention call ``module(x', x', x')`` with ``x' = x (+ table)``."""
    xin = x if table is None else x + along_sequence(table, spec)
    key_padding_mask, attn_mask = masks
    out: Tensor = module(xin, xin, xin, key_padding_mask=key_padding_mask,
                         need_weights=spec.need_weights, attn_mask=attn_mask,
                         average_attn_weights=spec.average_weights)[0]
    return out


def _permuted_masks(masks: Masks, idx: Tensor) -> Masks:
    """The masks moved with their tokens: key padding ``m[perm]``, attn mask ``M[perm][:, perm]``."""
    kpm, attn_mask = masks
    kpm = None if kpm is None else kpm.index_select(-1, idx)
    attn_mask = None if attn_mask is None else attn_mask.index_select(0, idx).index_select(1, idx)
    return kpm, attn_mask


def _case(encoding: str, y: Tensor, y_perm: Tensor, x: Tensor, perm: tuple[int, ...],
          spec: AttnSpec, tolerance: float, show: bool) -> Case:
    axis = sequence_axis(spec)
    idx = torch.tensor(perm)
    expected = y.index_select(axis, idx)  # P f(x): slot j holds f(x)[perm[j]]
    diff = (y_perm - expected).abs()
    max_diff = float(diff.max())
    per_slot = _per_slot_max(diff, axis)  # (L,): slot j is about token perm[j]
    inverse = [0] * len(perm)
    for slot, token in enumerate(perm):
        inverse[token] = slot
    token_diffs = tuple(float(per_slot[inverse[i]]) for i in range(len(perm)))
    rows = None
    if show:
        x0, y0, yp0 = first_item(x, spec), first_item(y, spec), first_item(y_perm, spec)
        rows = tuple(TokenRow(
            token=i, slot_after=inverse[i], input=tuple(x0[i].tolist()), before=tuple(y0[i].tolist()),
            after=tuple(yp0[inverse[i]].tolist()),
            max_abs_diff=float((yp0[inverse[i]] - y0[i]).abs().max())) for i in range(len(perm)))
    return Case(encoding=encoding, description=enc.describe(encoding), max_abs_diff=max_diff,
                equivariant=max_diff <= tolerance, max_abs_output=float(y.abs().max()),
                token_diffs=token_diffs, rows=rows)


def _degenerate(spec: AttnSpec, perm: tuple[int, ...], x: Tensor, x_perm: Tensor) -> str | None:
    if spec.seq == 1:
        return ("a single token has only one order (--seq 1): there is nothing to permute, so "
                "f(P x) = P f(x) holds for any layer, with or without positional encoding")
    if list(perm) == sorted(perm):
        return ("the identity permutation moves no token: f(P x) = P f(x) holds for any layer, "
                "with or without positional encoding")
    if torch.equal(x, x_perm):
        moved = [i for i, p in enumerate(perm) if i != p]
        return (f"the permutation only exchanges identical tokens (slots {moved}), so P x = x: the "
                "layer sees the same input twice and the test cannot show what it does with order")
    return None


def permute_test(spec: AttnSpec, *, permutation: str | Sequence[int] | None = None,
                 encodings: Sequence[str] | None = None, tolerance: float | None = None,
                 dtype: str = "float64",
                 tokens: str | Rows = "auto") -> PermuteReport:
    """Compare ``f(P x)`` with ``P f(x)`` for each encoding; see the module docstring.

    Raises :class:`SpecError` (naming the flag) for a malformed permutation or tokens, an
    unknown encoding or dtype, a non-positive tolerance or cross-attention settings.
    """
    check_self_attention(spec)
    if dtype not in DTYPES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    tol = DEFAULT_TOLERANCE[dtype] if tolerance is None else tolerance
    if not tol > 0.0 or tol == float("inf"):
        raise SpecError("--tolerance", f"must be a positive finite number, got {tolerance}")
    check_size(spec, dtype)
    perm = parse_permutation(permutation, spec.seq, spec.seed)
    chosen = parse_encodings(encodings)
    source, rows = parse_tokens(tokens, spec)
    torch_dtype = DTYPES[dtype]

    inputs = make_inputs(spec, dtype=torch_dtype)
    x = inputs.query if rows is None else tokens_in_layout(torch.tensor(rows, dtype=torch_dtype), spec)
    masks: Masks = (inputs.key_padding_mask, inputs.attn_mask)
    axis = sequence_axis(spec)
    idx = torch.tensor(perm)
    x_perm = x.index_select(axis, idx)  # P x: slot j holds token perm[j]
    show = spec.seq <= SHOW_TOKENS and spec.dim <= SHOW_FEATURES

    module = build(spec).to(torch_dtype)
    cases: list[Case] = []
    rope: RopeInfo | None = None
    with torch.no_grad():
        for name in chosen:
            table = enc.additive_table(name, spec, torch_dtype)
            if name == "rope":
                layer = enc.rope_ready(module, spec)
                stand_in_diff = None
                if layer is not module:
                    stand_in_diff = float((_forward(layer, spec, x, masks, None)
                                           - _forward(module, spec, x, masks, None)).abs().max())
                with enc.rope_attached(layer, spec.head_dim) as calls:
                    y = _forward(layer, spec, x, masks, None)
                    y_perm = _forward(layer, spec, x_perm, masks, None)
                if calls[0] == 0:
                    raise RuntimeError(f"RoPE hooks never ran in {type(layer).__name__}")
                via = ("hooks on the q and k projections of the layer itself" if layer is module else
                       "the split implementation loaded with nn.MultiheadAttention's own weights "
                       "(MHA cannot be hooked between its projections and its scores)")
                rope = RopeInfo(via=via, acts=enc.rope_acts(spec), stand_in_max_abs_diff=stand_in_diff)
            else:
                y = _forward(module, spec, x, masks, table)
                y_perm = _forward(module, spec, x_perm, masks, table)
            cases.append(_case(name, y, y_perm, x, perm, spec, tol, show))

        mask_check = None
        if spec.mask != "none":
            moved = float((_forward(module, spec, x_perm, _permuted_masks(masks, idx), None)
                           - _forward(module, spec, x, masks, None).index_select(axis, idx)).abs().max())
            mask_check = MaskCheck(mask=spec.mask, fixed_max_abs_diff=cases[0].max_abs_diff,
                                   moved_max_abs_diff=moved, moved_equivariant=moved <= tol)

    degenerate = _degenerate(spec, perm, x, x_perm)
    reasons = _reasons(spec, cases, tol, degenerate, rope)
    fixed = tuple(i for i, p in enumerate(perm) if i == p)
    return PermuteReport(
        spec=spec, permutation=perm, tolerance=tol, dtype=dtype, encodings=chosen, tokens=source,
        layout=layout_name(spec).split(" ")[0], sequence_axis=axis, input_shape=tuple(x.shape),
        fixed_tokens=fixed, cases=tuple(cases), holds=not reasons, degenerate=degenerate,
        reasons=reasons, verdict=_verdict(cases, tol, reasons, fixed),
        mask_check=mask_check, rope=rope,
        notes=_notes(spec, source, dtype, tol, show, mask_check, rope))


# ---------------------------------------------------------------------------- words
def _reasons(spec: AttnSpec, cases: Sequence[Case], tol: float, degenerate: str | None,
             rope: RopeInfo | None) -> tuple[str, ...]:
    """Why the demonstration does not hold; empty when it does."""
    if degenerate is not None:
        return (f"degenerate request: {degenerate}; it proves nothing",)
    reasons: list[str] = []
    base = cases[0]
    if not base.equivariant:
        if spec.mask == "causal":
            reasons.append(
                f"the causal mask itself breaks the symmetry (no encoding: max diff {base.max_abs_diff:.3g} "
                f"> {tol:.3g}): query slot j may only see slots 0..j, so the mask carries order and the "
                "demonstration is no longer about positional encodings; run it with --mask none")
        elif spec.mask == "padding":
            reasons.append(
                f"the padding mask itself breaks the symmetry (no encoding: max diff {base.max_abs_diff:.3g} "
                f"> {tol:.3g}): it hides fixed slots, not tokens, so which tokens every query sees "
                "depends on where they sit; the demonstration is no longer about positional "
                "encodings; run it with --mask none")
        else:
            reasons.append(f"without encoding the layer is not equivariant (max diff {base.max_abs_diff:.3g} "
                           f"> tolerance {tol:.3g}); if this is rounding, raise --tolerance or use "
                           "--dtype float64")
    for case in cases[1:]:
        if case.equivariant:
            why = ""
            if case.encoding == "rope" and rope is not None and not rope.acts:
                why = (f": a head of {spec.head_dim} feature has no pair of features to rotate, so "
                       "RoPE is the identity here; give every head at least 2 features "
                       "(--dim >= 2 * --heads)")
            reasons.append(f"{case.encoding} did not break the symmetry (max diff {case.max_abs_diff:.3g} "
                           f"<= {tol:.3g}){why}")
    if rope is not None and rope.stand_in_max_abs_diff is not None and rope.stand_in_max_abs_diff > tol:
        reasons.append(f"the RoPE stand-in does not reproduce nn.MultiheadAttention (max diff "
                       f"{rope.stand_in_max_abs_diff:.3g}); the rope row is not trustworthy")
    return tuple(reasons)


def _verdict(cases: Sequence[Case], tol: float, reasons: Sequence[str], fixed: Sequence[int]) -> str:
    if reasons:
        return "The demonstration does not hold: " + "; ".join(reasons) + "."
    base = cases[0]
    kept = ", ".join(f"b{i + 1}" for i in fixed)
    stays = (f" The output of a token the permutation leaves in place ({kept}) is unchanged."
             if fixed else "")
    text = (f"Without positional encoding the layer cannot tell token order: permuting the tokens "
            f"only permutes the outputs (max |f(Px) - P f(x)| = {base.max_abs_diff:.3g} <= "
            f"tolerance {tol:.3g}).{stays}")
    others = cases[1:]
    if others:
        broken = ", ".join(f"{c.encoding} ({c.max_abs_diff:.3g})" for c in others)
        text += (f" Each positional encoding breaks the symmetry: the outputs now depend on where a "
                 f"token sits; max difference {broken}, all above the tolerance.")
    return text


def _notes(spec: AttnSpec, source: str, dtype: str, tol: float, show: bool,
           mask_check: MaskCheck | None, rope: RopeInfo | None) -> tuple[str, ...]:
    notes: list[str] = []
    axis = sequence_axis(spec)
    notes.append(f"Tokens are permuted along the sequence axis (axis {axis} of the "
                 f"{layout_name(spec)} input); P x = x[perm], so slot j of P x holds token perm[j].")
    if source == "seed":
        notes.append("These are the tokens of seed 002: (1, 2), (2, 3), (3, 4). Its own demo fed them as a "
                     "(1, 3, 2) tensor to nn.MultiheadAttention(2, 1), whose default layout is "
                     "sequence-first: one token in three batch items, so its swap moved batch items, "
                     "not tokens, and proved nothing.")
    notes.append(f"Computed in {dtype}: without encoding f(Px) and P f(x) differ only by the order of "
                 f"summation (rounding), far below the tolerance {tol:.3g}; the encodings move outputs "
                 "by orders of magnitude more.")
    if mask_check is not None:
        kind = ("a causal mask lets slot j see only slots 0..j" if mask_check.mask == "causal"
                else "a key padding mask hides the last slots")
        if mask_check.fixed_max_abs_diff > tol:
            effect = (f"so it is a source of order itself (no encoding, mask on its slots: max diff "
                      f"{mask_check.fixed_max_abs_diff:.3g})")
        else:
            effect = ("but this permutation keeps the tokens of the masked slots within the masked slots, "
                      "so the mask did not break the symmetry here")
        notes.append(f"--mask {mask_check.mask}: {kind}; it belongs to positions, not tokens, {effect}. "
                     f"Permuted together with the tokens the mask keeps the symmetry (max diff "
                     f"{mask_check.moved_max_abs_diff:.3g}).")
    if rope is not None:
        notes.append(f"RoPE is applied through {rope.via}" + (
            f"; without RoPE the stand-in reproduces it within {rope.stand_in_max_abs_diff:.3g}."
            if rope.stand_in_max_abs_diff is not None else "."))
    if spec.add_bias_kv or spec.add_zero_attn:
        notes.append("The extra bias/zero keys sit outside the sequence: they are not permuted and have "
                     "no position (RoPE leaves them unrotated).")
    if show and not spec.unbatched and spec.batch > 1:
        notes.append("Token outputs are shown for batch item 0.")
    if not show:
        notes.append(f"Token outputs are listed only up to {SHOW_TOKENS} tokens of {SHOW_FEATURES} "
                     "features (--format json has the per-token differences).")
    return tuple(notes)
