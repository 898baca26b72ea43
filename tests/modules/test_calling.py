"""attncli.modules.calling: forward(x) or forward(q, k, v) from the signature's required inputs, and layout.

timm does not import here (it imports torchvision, whose only wheel on these machines is a CUDA
build), so the timm and T5 classes below copy those libraries' forward signatures exactly.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from attncli.modules.calling import call_args, output_layout, plan_call
from attncli.spec import SpecError


class TimmAttention(nn.Module):
    """timm's ViT attention: signature of ``Attention.forward`` in timm/layers/attention.py
    (timm 1.0.31; timm/models/vision_transformer.py in earlier releases):
    ``forward(self, x, attn_mask=None, is_causal=False)``.
    """

    def __init__(self, dim: int, num_heads: int = 8) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class T5LikeAttention(nn.Module):
    """The signature of transformers' ``T5Attention.forward`` (models/t5/modeling_t5.py):
    ``forward(self, hidden_states, mask=None, key_value_states=None, position_bias=None,
    past_key_values=None, **kwargs)``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.o = nn.Linear(dim, dim, bias=False)

    def forward(self, hidden_states: torch.Tensor, mask: Any = None, key_value_states: Any = None,
                position_bias: Any = None, past_key_values: Any = None, **kwargs: Any) -> Any:
        return self.o(hidden_states), position_bias, None


class QKV(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Any = None) -> torch.Tensor:
        return q + k + v


class TwoInputs(nn.Module):
    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return x + context


class VarArgs(nn.Module):
    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return args[0]


class NeedsKeyword(nn.Module):
    def forward(self, x: torch.Tensor, *, rope: torch.Tensor) -> torch.Tensor:
        return x


def test_optional_parameters_do_not_count() -> None:
    timm = plan_call(TimmAttention(16, 2))
    assert timm.style == "x" and "1 required input (x)" in timm.reason and not timm.transpose
    t5 = plan_call(T5LikeAttention(16))
    assert t5.style == "x" and "hidden_states" in t5.reason
    assert plan_call(QKV()).style == "qkv"


def test_timm_like_runs_as_planned() -> None:
    module = TimmAttention(16, 2).eval()
    x = torch.randn(2, 5, 16)
    plan = plan_call(module)
    out = output_layout(plan, module(*call_args(plan, x, x, x)))
    assert out.shape == (2, 5, 16)


def test_mha_seq_first_gets_seq_first_tensors() -> None:
    torch.manual_seed(0)
    seq_first = nn.MultiheadAttention(16, 2, batch_first=False).eval()
    batch_first = nn.MultiheadAttention(16, 2, batch_first=True).eval()
    batch_first.load_state_dict(seq_first.state_dict())
    plan = plan_call(seq_first)
    # nn.MultiheadAttention.forward(query, key, value, key_padding_mask=None, ...): three required inputs
    assert plan.style == "qkv" and plan.transpose
    assert len(plan.notes) == 1 and "batch_first=False" in plan.notes[0] and "(L, B, E)" in plan.notes[0]
    x = torch.randn(3, 5, 16)  # (B, L, E) with B != L, so a wrong layout cannot pass unnoticed
    args = call_args(plan, x, x, x)
    assert args[0].shape == (5, 3, 16)
    out = output_layout(plan, seq_first(*args, need_weights=False))
    expected, _ = batch_first(x, x, x, need_weights=False)
    torch.testing.assert_close(out, expected)
    assert not plan_call(batch_first).transpose
    # attncli's own tensors already seq-first (--no-batch-first): nothing to move
    assert not plan_call(seq_first, inputs_batch_first=False).transpose
    assert plan_call(batch_first, inputs_batch_first=False).transpose


def test_override() -> None:
    assert plan_call(TimmAttention(16, 2), call="x").reason == "--call x"
    # a forward with *args takes whatever is forced
    assert plan_call(VarArgs(), call="qkv").style == "qkv"
    # forcing three inputs into (x, attn_mask=None, is_causal=False) fits its positional slots
    assert plan_call(TimmAttention(16, 2), call="qkv").style == "qkv"


@pytest.mark.parametrize(("module", "call", "needle"), [
    (TwoInputs(), None, "2 required input(s) (x, context)"),
    (VarArgs(), None, "0 required input(s)"),
    (NeedsKeyword(), None, "keyword-only argument(s) rope"),
    (nn.MultiheadAttention(16, 2), "x", "requires 3"),
    (T5LikeAttention(16), "xyz", "choose from x, qkv"),
])
def test_errors_name_call(module: nn.Module, call: str | None, needle: str) -> None:
    with pytest.raises(SpecError) as err:
        plan_call(module, call=call)
    assert err.value.flag == "--call" and needle in err.value.message and "\n" not in str(err.value)


def test_unreadable_signature_needs_call() -> None:
    class Opaque(nn.Module):
        forward = print  # a builtin: no signature inspect can read

    with pytest.raises(SpecError) as err:
        plan_call(Opaque())
    assert err.value.flag == "--call" and "--call x or --call qkv" in err.value.message
    assert plan_call(Opaque(), call="x").style == "x"
