"""Parsing ``permute-test``'s own options: the permutation, the encodings, the tokens, and
the checks that refuse a request before anything runs (cross-attention, a too-large layer,
an unknown dtype or tolerance). Nothing runs here (the encodings are only named).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from attncli.analyses.permute import encodings as enc
from attncli.choices import PERMUTE_DTYPES
from attncli.spec import AttnSpec, SpecError

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


def check_dtype(dtype: str, tolerance: float | None) -> float:
    """The tolerance to use for ``dtype`` (its default when ``tolerance`` is None), or SpecError."""
    if dtype not in PERMUTE_DTYPES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(PERMUTE_DTYPES)}")
    tol = DEFAULT_TOLERANCE[dtype] if tolerance is None else tolerance
    if not tol > 0.0 or tol == float("inf"):
        raise SpecError("--tolerance", f"must be a positive finite number, got {tolerance}")
    return tol


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


REAL_RUN_MAX_BYTES = 1 << 30
"""The permutation test runs real tensors; it refuses a layer whose forward pass needs more."""


def check_size(spec: AttnSpec, dtype: str) -> None:
    """Refuse (SpecError naming the largest flag) a layer too large for a real forward pass.

    Counted: the weights (W = 2 E H d + 2 E G d elements) as many times as they exist at once
    at the peak (the seeded reference layer and the layer built from it, both float32, then
    the layer's copy in ``dtype``, and one more for RoPE's stand-in layer: W x (4 + 4 + 2n)
    bytes with n bytes per element; measured: ``--dim 5632 --heads 8 --seq 3`` peaks at
    2.3 GiB where W x n alone said 0.95), the input, its permuted copy, encodings and
    activations (about 12 B S' max(E, H d)), and the attention matrix with its weights
    (2 B H L S'), per run.
    """
    n = 8 if dtype == "float64" else 4
    b, h, seq, e = spec.batch, spec.heads, spec.seq, spec.dim
    weights = 2 * e * spec.inner + 2 * e * spec.kv_inner  # W_q, W_O, W_k, W_v
    tokens = 12 * b * spec.s_total * max(e, spec.inner) + 2 * b * h * seq * spec.s_total
    need = weights * (8 + 2 * n) + n * tokens
    if need > REAL_RUN_MAX_BYTES:
        flag = "--dim" if weights * (8 + 2 * n) >= n * tokens else ("--batch" if b > seq else "--seq")
        if flag == "--dim" and spec.inner > e:
            flag = "--head-dim"
        raise SpecError(flag, f"a real forward pass of this layer needs about {need / 2**30:,.1f} GiB "
                              f"({dtype}); the permutation test runs real tensors and stops at "
                              f"{REAL_RUN_MAX_BYTES // 2**30} GiB: use a smaller --dim/--seq/--batch (equivariance "
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
    if spec.cache:
        raise SpecError("--cache", "permute-test permutes the tokens of one sequence; a KV cache holds earlier "
                                   "tokens at fixed positions that it cannot permute, drop --cache")


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
            raise SpecError("--tokens", f"the classic demo's tokens are 3 tokens of 2 features; they need "
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
