"""sys.exit from forward, with a number and with a message; os._exit, which skips everything."""

from __future__ import annotations

import os
import sys

import torch

from tests.hostile._base import Base


class ExitSeven(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sys.exit(7)


class ExitMessage(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sys.exit("goodbye from forward")


class HardExitZero(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        os._exit(0)
