"""The permutation test: why attention needs positional encoding (issue 4, seed ``002_*``).

Self-attention without positional information treats its input as a *set*: permute the
tokens with a permutation P and the outputs are only permuted the same way,
``f(P x) = P f(x)`` (permutation equivariance). The output for a token the permutation keeps
in place (the seed's b1) does not change at all. A positional encoding ties every slot of
the sequence to a position, and the symmetry breaks.

:func:`permute_test` runs the layer the spec describes on the tokens ``x`` and on ``P x``,
for every encoding of :mod:`attncli.analyses.permute.encodings`, and compares ``f(P x)`` with ``P f(x)``
along the *sequence* axis of the spec's layout (batch-first ``(B, L, E)``, sequence-first
``(L, B, E)`` or unbatched ``(L, E)``).

Seed ``002_*`` gets this wrong: it feeds a ``(1, 3, 2)`` tensor to
``nn.MultiheadAttention(2, 1)``, whose default layout is sequence-first, so it holds one token
in three batch items and its "swap" moves batch items, not tokens. Nothing here permutes
anything but the sequence axis, and requests that prove nothing (one token, the identity, a
swap of identical tokens) are reported as degenerate, never as a pass.

Permutation convention: ``--permutation 0,2,1`` is the new order, slot ``j`` of ``P x``
holds token ``perm[j]`` of ``x`` (``P x = x[perm]``).

The result is a frozen :class:`PermuteReport` with ``to_json()``; nothing here prints. The
package: :mod:`~attncli.analyses.permute.parse` (options and refusals),
:mod:`~attncli.analyses.permute.run` (the test), :mod:`~attncli.analyses.permute.results` (the dataclasses) and
:mod:`~attncli.analyses.permute.verdict` (the words).
"""

from __future__ import annotations

from attncli.analyses.permute.parse import (
    DEFAULT_TOLERANCE,
    SEED_PERMUTATION,
    SEED_TOKENS,
    check_self_attention,
    check_size,
    default_permutation,
    parse_encodings,
    parse_permutation,
    parse_tokens,
)
from attncli.analyses.permute.results import SCHEMA, Case, MaskCheck, PermuteReport, RopeInfo, TokenRow
from attncli.analyses.permute.run import permute_test

__all__ = [
    "DEFAULT_TOLERANCE", "SCHEMA", "SEED_PERMUTATION", "SEED_TOKENS", "Case", "MaskCheck", "PermuteReport",
    "RopeInfo", "TokenRow", "check_self_attention", "check_size", "default_permutation", "parse_encodings",
    "parse_permutation", "parse_tokens", "permute_test",
]
