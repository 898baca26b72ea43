"""Positional encodings, and how each one is attached to an attention layer.

Three ways to tell an attention layer where a token sits, next to ``none``:

- ``sinusoidal``: the fixed sine/cosine table of "Attention Is All You Need" (section 3.5),
  added to the input: ``PE[pos, 2i] = sin(pos / 10000^(2i/E))``,
  ``PE[pos, 2i+1] = cos(pos / 10000^(2i/E))``.
- ``learned``: an absolute position table, ``nn.Embedding(L, E)`` with a seeded N(0, 1)
  initialisation (as the ViT paper and seed ``002_*`` describe, untrained here), added to the
  input.
- ``rope``: rotary position embedding (Su et al., RoFormer). Not added to the input: each
  head's query and key vectors are rotated, pair of features by pair of features, by an
  angle proportional to the token's position, *after* the q/k projections. Scores then
  depend on the relative offset of the two tokens: ``<R_m q, R_n k> = <q, R_(n-m) k>``.

Additive encodings need nothing from the layer. RoPE must sit between the projections and
the scores, so :func:`rope_attached` hooks the q/k projections of attncli's own
implementations (``split``, ``sdpa``, ``fused``, ``per-head``) and runs the layer's own
attention unchanged. ``nn.MultiheadAttention`` cannot be hooked there (it reads its
``in_proj_weight`` directly), so :func:`rope_ready` stands in the ``split`` implementation
loaded with the very same weights; callers check and report that the stand-in reproduces the
``torch`` layer without RoPE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from attncli.layer.modules import FusedAttention, PerHeadAttention, SplitAttention, load_from_torch
from attncli.spec import AttnSpec

ENCODINGS: tuple[str, ...] = ("none", "sinusoidal", "learned", "rope")
"""Every encoding ``--encoding`` accepts, in the order reports list them."""

ADDITIVE: frozenset[str] = frozenset({"sinusoidal", "learned"})
"""Encodings added to the input tokens (the others act inside the layer or not at all)."""

BASE = 10000.0
"""The wavelength base of the sinusoidal table and of RoPE's angles (both papers use 10^4)."""

DESCRIPTIONS: dict[str, str] = {
    "none": "no positional information: the layer sees a set of tokens",
    "sinusoidal": "x + PE, PE[p, 2i] = sin(p / 10000^(2i/E)), PE[p, 2i+1] = cos(same)",
    "learned": "x + Embedding(L, E)(p), seeded N(0, 1) init (untrained)",
    "rope": "q and k rotated by angle p * 10000^(-2i/d) per feature pair, after the projections",
}


def sinusoidal(length: int, dim: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The (length, dim) sine/cosine table of the original Transformer paper.

    Even features take the sine, odd features the cosine of the same frequency; with an odd
    ``dim`` the last feature is a sine with no cosine partner.
    """
    pos = torch.arange(length, dtype=torch.float64)[:, None]  # (L, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)  # (ceil(E/2),)
    angle = pos / BASE ** (two_i / dim)  # (L, ceil(E/2))
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return table.to(dtype)


def learned(length: int, dim: int, seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The (length, dim) table of a seeded, untrained ``nn.Embedding(length, dim)``."""
    # NOTE: the generator is local and the table is built from the drawn weight
    # (given as ``_weight``, nn.Embedding skips its own init), so it neither disturbs nor depends
    # on the global RNG that seeds the attention weights: same seed, same table.
    gen = torch.Generator().manual_seed(seed)
    weight = torch.empty(length, dim, dtype=torch.float64)
    nn.init.normal_(weight, generator=gen)
    table = nn.Embedding(length, dim, _weight=weight)
    with torch.no_grad():
        rows: Tensor = table(torch.arange(length))  # (L,) -> (L, E)
    return rows.to(dtype)


def rope_angles(length: int, head_dim: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """(length, head_dim // 2) rotation angles: position p, pair i -> p * 10000^(-2i/d)."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]  # (L, 1)
    two_i = torch.arange(0, head_dim - 1, 2, dtype=torch.float64)  # (d // 2,)
    return (pos * BASE ** (-two_i / head_dim)).to(dtype)  # (L, d // 2)


def rotate(x: Tensor, head_dim: int) -> Tensor:
    """RoPE on ``x`` (b, n, k * head_dim): every head's features rotated by position.

    The sequence axis is 1 (batch-first, as attncli's implementations hold q and k inside the
    layer). Feature pair (2i, 2i+1) of the token at position p turns by ``p * theta_i``:
    ``(x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos)``. With an odd ``head_dim`` the last
    feature has no partner and stays; with ``head_dim == 1`` nothing turns at all.
    """
    b, n, f = x.shape
    heads = x.view(b, n, f // head_dim, head_dim)  # (b, n, k, d)
    ang = rope_angles(n, head_dim, x.dtype).to(x.device)[None, :, None, :]  # (1, n, 1, d//2)
    cos, sin = torch.cos(ang), torch.sin(ang)
    pairs = 2 * (head_dim // 2)
    even, odd = heads[..., 0:pairs:2], heads[..., 1:pairs:2]  # (b, n, k, d//2) each
    out = heads.clone()
    out[..., 0:pairs:2] = even * cos - odd * sin
    out[..., 1:pairs:2] = even * sin + odd * cos
    return out.view(b, n, f)


def rope_acts(spec: AttnSpec) -> bool:
    """Whether RoPE can change anything: a head needs at least one pair of features."""
    return spec.head_dim >= 2


def rope_ready(module: nn.Module, spec: AttnSpec) -> nn.Module:
    """A module RoPE can be hooked into, computing the same function as ``module``.

    attncli's own implementations are returned as they are. ``nn.MultiheadAttention`` gets a
    ``split`` stand-in loaded with its weights (same dtype and device, eval mode).
    """
    if isinstance(module, SplitAttention | PerHeadAttention):
        return module
    if isinstance(module, nn.MultiheadAttention):
        param = module.out_proj.weight
        with torch.device(param.device):
            stand_in = SplitAttention(spec.with_(impl="split"))
        stand_in = stand_in.to(param.dtype)
        load_from_torch(stand_in, module)
        return stand_in.eval()
    raise TypeError(f"cannot attach RoPE to {type(module).__name__}")


@contextmanager
def rope_attached(module: nn.Module, head_dim: int) -> Iterator[list[int]]:
    """Rotate q and k by position inside ``module`` (from :func:`rope_ready`) while open.

    Forward hooks on the q and k projections replace their outputs with the rotated ones;
    the layer's own head split, attention kernel and W_O run unchanged. Yields a one-item
    list counting the rotations done, so callers can check RoPE actually ran.
    """
    # NOTE: the hooks sit on the projections, before ``extend_kv``, so an ``--add-bias-kv``
    # key and an ``--add-zero-attn`` key are appended unrotated: they have no position.
    calls = [0]

    def hook(rotated: slice | None) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], Tensor]:
        def run(_mod: nn.Module, _inputs: tuple[Tensor, ...], out: Tensor) -> Tensor:
            calls[0] += 1
            if rotated is None:
                return rotate(out, head_dim)
            b, n, f = out.shape
            chunks = out.view(b, n, f // head_dim, head_dim)  # (b, n, h + 2g, d) for fused qkv
            turned = chunks.clone()
            part = chunks[:, :, rotated].reshape(b, n, -1)
            turned[:, :, rotated] = rotate(part, head_dim).view(b, n, -1, head_dim)
            return turned.view(b, n, f)
        return run

    linears: list[tuple[nn.Module, slice | None]]
    if isinstance(module, FusedAttention):
        h, g = module.num_heads, module.num_kv_heads
        # (b, n, (h + 2g) d) = [q heads | k heads | v heads]: turn the first h + g chunks of d features.
        linears = [(module.qkv, slice(0, h + g))]
    elif isinstance(module, SplitAttention):
        linears = [(lin, None) for lin in (module.W_q, module.W_k) if lin is not None]
    elif isinstance(module, PerHeadAttention):
        # NOTE: with grouped-query heads only the first head of a group has k (shared by the group).
        linears = [(lin, None) for head in module.heads_list for lin in (head.q, head.k) if lin is not None]
    else:
        raise TypeError(f"cannot attach RoPE to {type(module).__name__}; pass it through rope_ready()")
    handles = [lin.register_forward_hook(hook(rotated)) for lin, rotated in linears]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def additive_table(encoding: str, spec: AttnSpec, dtype: torch.dtype) -> Tensor | None:
    """The (L, E) table an additive encoding adds to the input, or ``None`` for the others."""
    if encoding == "sinusoidal":
        return sinusoidal(spec.seq, spec.dim, dtype)
    if encoding == "learned":
        return learned(spec.seq, spec.dim, spec.seed, dtype)
    return None


def describe(encoding: str) -> str:
    """One line saying what the encoding does."""
    return DESCRIPTIONS[encoding]


__all__ = [
    "ADDITIVE",
    "BASE",
    "ENCODINGS",
    "additive_table",
    "describe",
    "learned",
    "rope_acts",
    "rope_angles",
    "rope_attached",
    "rope_ready",
    "rotate",
    "sinusoidal",
]
