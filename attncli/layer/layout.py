"""Tensor layout, in one place: where batch, tokens and features lie for a spec.

``nn.MultiheadAttention`` takes batch-first ``(B, L, E)``, sequence-first ``(L, B, E)`` (its
default, ``batch_first=False``) or unbatched ``(L, E)`` inputs. Everything that shapes,
builds, permutes or reads a token tensor asks here. The shape functions need no torch; the
tensor functions take tensors the caller made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.spec import AttnSpec

if TYPE_CHECKING:
    from torch import Tensor


def token_shape(spec: AttnSpec, length: int, features: int) -> tuple[int, ...]:
    """The shape of a (batch, length, features) token tensor in the spec's layout."""
    if spec.unbatched:
        return (length, features)
    if spec.batch_first:
        return (spec.batch, length, features)
    return (length, spec.batch, features)


def sequence_axis(spec: AttnSpec) -> int:
    """The axis tokens lie along: 1 in (B, L, E), 0 in (L, B, E) and in (L, E)."""
    return 1 if spec.batch_first and not spec.unbatched else 0


def layout_name(spec: AttnSpec) -> str:
    """``batch-first (B, L, E)``, ``sequence-first (L, B, E)`` or ``unbatched (L, E)``."""
    if spec.unbatched:
        return "unbatched (L, E)"
    return "batch-first (B, L, E)" if spec.batch_first else "sequence-first (L, B, E)"


def along_sequence(table: Tensor, spec: AttnSpec) -> Tensor:
    """An (L, E) table shaped to broadcast against the spec's layout."""
    return table if spec.unbatched or spec.batch_first else table[:, None, :]  # (L, 1, E)


def first_item(t: Tensor, spec: AttnSpec) -> Tensor:
    """Batch item 0 as (L, E), whatever the layout."""
    if spec.unbatched:
        return t
    return t[0] if spec.batch_first else t[:, 0]


def tokens_in_layout(tokens: Tensor, spec: AttnSpec) -> Tensor:
    """(L, E) tokens as the spec's input, the same tokens in every batch item."""
    if spec.unbatched:
        return tokens
    if spec.batch_first:
        return tokens[None].expand(spec.batch, -1, -1).clone()  # (B, L, E)
    return tokens[:, None].expand(-1, spec.batch, -1).clone()  # (L, B, E)
