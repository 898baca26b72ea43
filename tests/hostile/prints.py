"""Prints at import, while building and in forward: attncli's stdout must stay the report."""

from __future__ import annotations

import torch

from tests.hostile._base import Base

print("hostile: imported")


class Printer(Base):
    def __init__(self, dim: int, heads: int) -> None:
        print("hostile: building")
        super().__init__(dim, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("hostile: forward")
        return self.attend(x)
