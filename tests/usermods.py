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


class TimmAttention(nn.Module):
    """timm's ``timm.models.vision_transformer.Attention`` (timm 1.0), its signature and forward copied.

    timm cannot be imported here (it needs torchvision), so its calling convention is checked
    through this copy: ``__init__(dim, num_heads=8, qkv_bias=False, qk_norm=False, ...)`` and
    ``forward(x, attn_mask=None)``: one required input although it lists two positional ones.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, qk_norm: bool = False,
                 proj_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0,
                 norm_layer: type[nn.Module] = nn.LayerNorm) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(attn_drop)
        self.norm = nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        x = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = x.transpose(1, 2).reshape(b, n, c)
        x = self.norm(x)
        return self.proj_drop(self.proj(x))  # type: ignore[no-any-return]


def timm_qk_norm(dim: int, heads: int) -> TimmAttention:
    return TimmAttention(dim, heads, qk_norm=True)


class SdpaAttention(nn.Module):
    """Self-attention through ``scaled_dot_product_attention``: causal by ``is_causal=True``, or
    masked by an ``attn_mask`` tensor of its own (which attncli cannot read)."""

    def __init__(self, dim: int, heads: int, causal: bool = False, tensor_mask: bool = False) -> None:
        super().__init__()
        self.heads, self.causal, self.tensor_mask = heads, causal, tensor_mask
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        mask = torch.ones(n, n, dtype=torch.bool, device=x.device).tril() if self.tensor_mask else None
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))  # type: ignore[no-any-return]


def sdpa_causal(dim: int, heads: int) -> SdpaAttention:
    return SdpaAttention(dim, heads, causal=True)


def sdpa_plain(dim: int, heads: int) -> SdpaAttention:
    return SdpaAttention(dim, heads)


def sdpa_tensor_mask(dim: int, heads: int) -> SdpaAttention:
    return SdpaAttention(dim, heads, tensor_mask=True)
