"""``attncli.layer.layout``: the three layouts of ``nn.MultiheadAttention``'s inputs.

Expected shapes are from the ``nn.MultiheadAttention`` documentation: query ``(L, N, E)`` when
``batch_first=False``, ``(N, L, E)`` when ``batch_first=True``, ``(L, E)`` unbatched.
"""

from __future__ import annotations

import pytest
import torch

from attncli.layer.layout import along_sequence, first_item, layout_name, sequence_axis, token_shape, tokens_in_layout
from attncli.spec import AttnSpec

LAYOUTS = {
    "batch-first": AttnSpec(batch=3, batch_first=True),
    "sequence-first": AttnSpec(batch=3, batch_first=False),
    "unbatched": AttnSpec(batch=1, unbatched=True),
}
SHAPES = {"batch-first": (3, 5, 4), "sequence-first": (5, 3, 4), "unbatched": (5, 4)}
AXIS = {"batch-first": 1, "sequence-first": 0, "unbatched": 0}


@pytest.mark.parametrize("name", LAYOUTS)
def test_shape_axis_and_name(name: str) -> None:
    spec = LAYOUTS[name]
    assert token_shape(spec, 5, 4) == SHAPES[name]
    assert sequence_axis(spec) == AXIS[name]
    assert layout_name(spec).startswith(name)


@pytest.mark.parametrize("name", LAYOUTS)
def test_tokens_round_trip(name: str) -> None:
    """Tokens put in a layout come back as batch item 0, and a table lines up with them."""
    spec = LAYOUTS[name]
    tokens = torch.arange(20.0).reshape(5, 4)
    x = tokens_in_layout(tokens, spec)
    assert tuple(x.shape) == SHAPES[name]
    assert torch.equal(first_item(x, spec), tokens)
    assert torch.equal(first_item(x + along_sequence(tokens, spec), spec), 2 * tokens)
    assert torch.equal(x.select(sequence_axis(spec), 2).reshape(-1, 4)[0], tokens[2])
