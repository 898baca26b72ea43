"""What the linear kinds' tests against transformers share (test_gdn_torch.py, test_kda_torch.py): transformers'
torch paths forced, seeded tokens, FlopCounterMode over the last of a run of calls on one cache, and the two
state checks (a decode step from the state of a run is the last row of a longer run; a prefill after a state
is transformers' chunked continuation), each run on a file's own pair of layers (:class:`Pair`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from attncli.spec import AttnSpec


def force_torch_paths(monkeypatch: pytest.MonkeyPatch, modeling: ModuleType, names: Sequence[str]) -> Iterator[None]:
    """transformers' torch functions ``names`` of ``modeling``, whatever kernels (fla, causal-conv1d) are
    installed, their warnings silenced; a file's autouse fixture yields from it."""
    for name in names:
        fn = getattr(modeling, name)
        monkeypatch.setattr(modeling, name, getattr(fn, "__wrapped__", fn))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def tokens(n: int, dim: int = 64, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, n, dim, generator=torch.Generator().manual_seed(n))


def count_last_call(ref: Any, calls: list[tuple[torch.Tensor, bool]], cache: Any) -> FlopCounterMode:
    """FlopCounterMode over the last of ``calls`` (tokens, whether it reads ``cache``); the ones before fill it."""
    with torch.no_grad():
        for x, _ in calls[:-1]:
            ref(x, cache=cache)
        with FlopCounterMode(display=False) as fc:
            x, cached = calls[-1]
            ref(x, cache=cache if cached else None)
    return fc


@dataclass(frozen=True)
class Pair:
    """A test file's transformers layer and attncli's: ``real_layer()`` seeded, ``mine_like(ref, spec)`` with
    its weights, ``spec(**kw)`` of the file's small sizes, ``cache()`` an empty transformers cache for them."""

    real_layer: Callable[[], Any]
    mine_like: Callable[[Any, AttnSpec], Any]
    spec: Callable[..., AttnSpec]
    cache: Callable[[], Any]


def check_decode_step_continues_a_run(pair: Pair) -> None:
    """A decode step from the state of a run is the last row of a longer run; the states attncli's layer returns
    are the ones transformers' cache keeps."""
    ref = pair.real_layer()
    x = tokens(9)
    prefill, step = pair.mine_like(ref, pair.spec(seq=8)), pair.mine_like(ref, pair.spec(seq=1, cache=8))
    assert step.form == "recurrent"
    cache = pair.cache()
    with torch.no_grad():
        _, rec, conv = prefill(x[:, :8])
        got = step(x[:, 8:], recurrent_state=rec, conv_state=conv)[0]
        ref(x[:, :8], cache=cache)
        # the state rule: what attncli's layer returns is what transformers' cache keeps
        layer_cache = cache.layers[0]
        torch.testing.assert_close(rec, layer_cache.recurrent_states[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(conv, layer_cache.conv_states[0])
        want_step = ref(x[:, 8:], cache=cache)
        want_full = ref(x)[:, 8:]
    torch.testing.assert_close(got, want_step, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got, want_full, rtol=1e-4, atol=1e-5)


def check_prefill_after_a_state_continues_chunked(pair: Pair, prefill: int) -> None:
    """A prefill of 5 tokens after the state of ``prefill`` is transformers' chunked continuation."""
    ref = pair.real_layer()
    x = tokens(prefill + 5)
    first, second = pair.mine_like(ref, pair.spec(seq=prefill)), pair.mine_like(ref, pair.spec(seq=5, cache=prefill))
    assert second.form == "chunked"
    cache = pair.cache()
    with torch.no_grad():
        _, rec, conv = first(x[:, :prefill])
        got = second(x[:, prefill:], recurrent_state=rec, conv_state=conv)[0]
        ref(x[:, :prefill], cache=cache)
        want = ref(x[:, prefill:], cache=cache)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got, ref(x)[:, prefill:].detach(), rtol=1e-4, atol=1e-5)
