"""``attncli.engine.trace`` and ``attncli.engine.crosscheck`` on modules small enough to count by hand."""

from __future__ import annotations

import torch
from torch import nn

from attncli.engine.crosscheck import flop_counter_check
from attncli.engine.trace import caller, count_module, trace_count


class TwoLinears(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def test_linear_chain_is_counted_per_module() -> None:
    """(3, 5, 8) @ (8, 16): 3*5*8*16 = 1,920 MACs; then @ (16, 4): 3*5*16*4 = 960."""
    with torch.device("meta"):
        m = TwoLinears()
    count = count_module(m, [torch.empty(3, 5, 8, device="meta")])
    assert count.total == 1_920 + 960
    assert count.by_module["a"] == 1_920 and count.by_module["b"] == 960
    assert sum(count.by_stage.values()) == count.total  # stages add up (all "other" here)


def test_flop_counter_mode_is_twice_fvcore() -> None:
    with torch.device("meta"):
        m = TwoLinears()
    call, tensors = caller(m, (torch.empty(3, 5, 8, device="meta"),), {})
    count = trace_count(call, tensors)
    fc = flop_counter_check(call, tensors, count.ops)
    assert fc.flops == 2 * (1_920 + 960) and not fc.mismatches


class EinsumThenNorm(nn.Module):
    """An einsum (fvcore counts it; FlopCounterMode sees a bmm) and a LayerNorm (FlopCounterMode: no formula)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.einsum("bld,bmd->blm", x, x))


class LinearNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.a(x))


def _check(m: nn.Module, x: torch.Tensor) -> object:
    call, tensors = caller(m, (x,), {})
    count = trace_count(call, tensors)
    return flop_counter_check(call, tensors, count.ops)


def test_the_cross_check_names_the_op_it_cannot_line_up() -> None:
    with torch.device("meta"):
        fc = _check(EinsumThenNorm(), torch.empty(2, 8, 8))
    (msg,) = fc.mismatches  # type: ignore[attr-defined]
    assert "aten::einsum" in msg


def test_norms_are_left_out_of_the_comparison_and_named() -> None:
    """(2, 4, 8) @ (8, 8): 2*4*8*8 = 512 MACs; LayerNorm (affine) on 64 elements: fvcore's 5 per element = 320."""
    with torch.device("meta"):
        fc = _check(LinearNorm(), torch.empty(2, 4, 8))
    assert fc.skipped == (("aten::layer_norm", 320),)  # type: ignore[attr-defined]
    assert fc.flops == 2 * 512 and not fc.mismatches  # type: ignore[attr-defined]
