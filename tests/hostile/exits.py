"""sys.exit from forward, with a number and with a message."""

from __future__ import annotations

import sys

import torch

from tests.hostile._base import Base


class ExitSeven(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sys.exit(7)


class ExitMessage(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sys.exit("goodbye from forward")
