"""Forwards that raise, return nothing, never return, recurse forever, or press Ctrl-C."""

from __future__ import annotations

import signal
import time
from typing import Any

import torch

from tests.hostile._base import Base


class Raises(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("a message\nover two lines")


class ReturnsEmpty(Base):
    def forward(self, x: torch.Tensor) -> Any:
        return ()


class ReturnsNone(Base):
    def forward(self, x: torch.Tensor) -> None:
        self.attend(x)


class Loops(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while True:
            pass


class LoopsInExec(Base):
    """Never returns: loops inside ``exec()`` of a string, where CPython notes an
    interrupt as unhandled even when the caller catches it (see ``attncli.cli._exit_now``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("hostile: looping in exec", flush=True)  # goes to stderr: the test's cue for Ctrl-C
        exec("while True: pass")
        return x


class Sleeps(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(10**6)
        return x


class IgnoresCtrlC(Base):
    """Ignores SIGINT and spins: only the last resort after the timeout can end it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            pass


class SwallowsInterrupts(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while True:
            try:
                while True:
                    pass
            except BaseException:  # hostile on purpose
                pass


class Recurses(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)


class CtrlC(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise KeyboardInterrupt


class NeedsValues(Base):
    """``.item()`` reads a value: the meta device has none, real tensors do."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = float(x.abs().max().item()) or 1.0
        return self.attend(x / scale)


def broken_build(dim: int, heads: int) -> Base:
    raise RuntimeError("cannot build")
