"""One way to build a kind's torch layer: seeded on a real device, uninitialised on meta.

:func:`build_seeded` makes the module under ``torch.device(device)``; on a real device the
parameters are drawn from a generator seeded with ``spec.seed`` inside ``fork_rng`` (the global
RNG is left as it was) and ``init`` may redraw some (norm weights away from 1, so a lost one
shows); on meta nothing is initialised and any size can be counted. The module comes back in
eval mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from attncli.spec import AttnSpec

M = TypeVar("M", bound=nn.Module)


def build_seeded(make: Callable[[], M], spec: AttnSpec, device: str | torch.device,
                 init: Callable[[M], None] | None = None) -> M:
    meta = torch.device(device).type == "meta"
    with torch.random.fork_rng(devices=[]):
        if not meta:
            torch.manual_seed(spec.seed)
        with torch.device(device):
            module = make()
        if not meta and init is not None:
            with torch.no_grad():
                init(module)
    return module.eval()
