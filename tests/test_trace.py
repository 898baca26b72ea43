"""``attncli.trace`` and ``attncli.crosscheck`` on modules small enough to count by hand."""

from __future__ import annotations

import torch
from torch import nn

from attncli.crosscheck import flop_counter_check
from attncli.trace import caller, count_module, trace_count


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
