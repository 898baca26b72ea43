"""The mask a user's module applies itself, read from its calls to ``scaled_dot_product_attention``.

A module that calls ``F.scaled_dot_product_attention(q, k, v, is_causal=True)`` is causal whatever
attncli's flags say; one that passes an ``attn_mask`` tensor hides pairs attncli cannot see; one
that never calls SDPA may build a mask from tensor ops (``masked_fill``), which no counter reads.
:func:`watching_sdpa` records every SDPA call of one forward pass (a ``TorchFunctionMode``, on any
device, meta included); :func:`read_mask` turns the record and a typed ``--mask`` into the mask
the effective count uses and one line that says where it came from. Nothing here imports torch
at module level.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from attncli.spec import SpecError


@dataclass(frozen=True)
class SdpaCall:
    """One call: ``is_causal``, whether an ``attn_mask`` tensor was passed, and L and S."""

    causal: bool
    tensor_mask: bool
    queries: int
    keys: int


@contextmanager
def watching_sdpa() -> Iterator[list[SdpaCall]]:
    """Record every ``torch.nn.functional.scaled_dot_product_attention`` call made inside."""
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    seen: list[SdpaCall] = []

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func is F.scaled_dot_product_attention and len(args) >= 2:
                mask = kwargs.get("attn_mask", args[3] if len(args) > 3 else None)
                causal = kwargs.get("is_causal", args[5] if len(args) > 5 else False)
                q, k = args[0], args[1]
                seen.append(SdpaCall(bool(causal), mask is not None, int(q.shape[-2]), int(k.shape[-2])))
            return func(*args, **kwargs)

    with Watch():
        yield seen


def read_mask(ref: str, calls: list[SdpaCall], stated: str | None) -> tuple[str, str]:
    """(the mask to count with, the line that says where it came from).

    ``stated`` is a typed ``--mask`` (``None``: not typed). A mask read from the calls wins, and a
    stated one that contradicts it exits 2 naming ``--mask``; where attncli cannot read the mask
    (an ``attn_mask`` tensor, or no SDPA call) the stated one is used and said to be stated.
    """
    if calls and not any(c.tensor_mask for c in calls):
        causal = {c.causal for c in calls}
        if len(causal) > 1:
            read = None  # NOTE: some calls causal, some not: no one mask describes the layer
        elif causal == {True}:
            # NOTE: SDPA's is_causal is top-left aligned when L != S; attncli's causal is not.
            read = None if any(c.queries != c.keys for c in calls) else "causal"
        else:
            read = "none"
        if read is not None:
            if stated is not None and stated != read:
                said = "is_causal=True" if read == "causal" else "no mask and is_causal=False"
                raise SpecError("--mask", f"{ref} calls scaled_dot_product_attention with {said}: its mask is "
                                          f"{read}, not {stated}")
            how = "is_causal=True" if read == "causal" else "no attn_mask, is_causal=False"
            return read, f"mask {read}: read from {ref}'s scaled_dot_product_attention call ({how})"
    if calls:
        why = ("passes an attn_mask tensor to scaled_dot_product_attention" if any(c.tensor_mask for c in calls)
               else "calls scaled_dot_product_attention with is_causal in a way one mask cannot describe")
    else:
        why = "calls no scaled_dot_product_attention: a mask made with tensor ops is not visible to it"
    if stated is not None and stated != "none":
        return stated, f"mask {stated}: as stated by --mask; attncli cannot read {ref}'s own mask (it {why})"
    return "none", (f"mask: attncli cannot read {ref}'s own mask (it {why}); the effective count charges every "
                    "pair: state the mask with --mask")
