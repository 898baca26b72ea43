"""Attention modules written outside attncli, for the ``--module`` tests."""

from __future__ import annotations

import torch
from torch import nn


class TinyAttention(nn.Module):
    """A plain single-input self-attention: fused qkv, heads, W_O (written here, not in attncli)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)  # type: ignore[no-any-return]


def build_tiny(dim: int, heads: int) -> TinyAttention:
    return TinyAttention(dim, heads)


def build_mha(dim: int, heads: int) -> nn.MultiheadAttention:
    return nn.MultiheadAttention(dim, heads, batch_first=True)


def broken(dim: int, heads: int) -> nn.Module:
    raise RuntimeError("this factory always fails")


class WrongShape(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.lin = nn.Linear(dim + 1, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)  # type: ignore[no-any-return]


not_callable = 42
