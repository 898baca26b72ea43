"""Prints at import, while building and in forward: attncli's stdout must stay the report."""

from __future__ import annotations

import os
import sys

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


class RawWriter(Base):
    """Writes past sys.stdout: to file descriptor 1 and to sys.__stdout__."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        os.write(1, b"hostile: fd 1\n")
        print("hostile: __stdout__", file=sys.__stdout__, flush=True)
        return self.attend(x)


class ChangesDirectory(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        os.chdir("/")
        return self.attend(x)
