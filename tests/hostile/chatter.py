"""Starts a daemon thread that prints in a loop, from import on and after attncli's run: stdout must
stay the report (strict JSON), and a reader that closes the pipe early must not hang or crash attncli."""

from __future__ import annotations

import os
import sys
import threading
import time

import torch

from tests.hostile._base import Base


def _chatter() -> None:
    n = 0
    while True:
        n += 1
        print(f"hostile: chatter {n}")
        sys.stdout.flush()
        if n % 7 == 0:
            os.write(1, b"hostile: chatter on fd 1\n")
        time.sleep(0.0005)


threading.Thread(target=_chatter, daemon=True, name="hostile-chatter").start()


class Chatter(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attend(x)
