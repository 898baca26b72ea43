"""CONTRIBUTING's "A new kind of attention", kept true: a kind written outside attncli (tests/kinds/toykind.py,
a folder's worth of kind) plus one registry entry, its setting in ``KIND_FIELDS`` and the setting on the spec
is selected, validated, counted (closed form, fvcore, FlopCounterMode), put in JSON and rendered, with no
other module of attncli changed.

The toy: standard attention whose output projection is low-rank (o_a: H*d -> r, o_b: r -> E). Its numbers,
by hand, for E = 64, H = 4 (d = 16), L = S = 8, B = 1, r = 16: q, k and v projections 8*64*64 = 32,768 MACs
each, QK^T and weights x V H*L*S*d = 4*8*8*16 = 4,096 each, the output B*L*(H*d*r + r*E) = 8*(1,024 + 1,024)
= 16,384; parameters 3*(64*64 + 64) + 64*16 + (16*64 + 64) = 14,592.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from attncli import registry
from attncli.registry import KindEntry
from attncli.spec import AttnSpec, SpecError

TOY = KindEntry("lowrank_o", "a toy low-rank output projection (o_rank)", "--config", "toykind", ("o_rank",),
                "lowrank_o")


@dataclass(frozen=True)
class ToySpec(AttnSpec):
    """The kind's setting on the spec (a new kind adds its settings to AttnSpec; the toy subclasses it)."""

    o_rank: int | None = None


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setattr(registry, "REGISTRY", (*registry.REGISTRY, TOY))
    monkeypatch.setitem(registry._BY_NAME, TOY.name, TOY)
    monkeypatch.setattr(registry, "_SELECTION", (TOY, *registry._SELECTION))
    monkeypatch.setitem(registry.KIND_FIELDS, "o_rank", ((TOY.name,), (None,)))
    yield


def _spec(**kw: object) -> AttnSpec:
    return ToySpec(**{"dim": 64, "heads": 4, "seq": 8, "o_rank": 16, "impl": TOY.name, **kw}).validate()  # type: ignore[arg-type]


@pytest.mark.usefixtures("toy")
def test_the_toy_kind_is_selected_and_validated_by_its_own_checks() -> None:
    assert _spec().kind == TOY.name and _spec().form is None
    with pytest.raises(SpecError, match="--o-rank"):
        _spec(o_rank=0)
    with pytest.raises(SpecError, match=r"^--impl"):
        _spec(impl="split")
    with pytest.raises(SpecError, match="--kv-lora-rank: applies to multi-head latent"):
        _spec(kv_lora_rank=8)  # NOTE: another kind's setting, refused through KIND_FIELDS as for every kind


@pytest.mark.usefixtures("toy")
def test_the_toy_kind_answers_the_whole_protocol() -> None:
    from attncli.kinds.base import Kind

    mod = registry.kind_of(_spec())
    names = [n for n in dir(Kind) if not n.startswith("_")] + list(Kind.__annotations__)
    assert TOY.name == mod.NAME and not [n for n in names if not hasattr(mod, n)]


@pytest.mark.usefixtures("toy")
def test_the_toy_kind_is_counted_as_its_closed_form_fvcore_and_flop_counter_mode_say() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from attncli.analyses.flops import count_flops

    spec = _spec()
    r = count_flops(spec)
    first = r.variants[0]
    by_hand = {"q_proj": 32_768, "k_proj": 32_768, "v_proj": 32_768, "qk": 4_096, "av": 4_096, "out_proj": 16_384}
    assert {k: v for k, v in first.by_stage.items() if v} == by_hand
    assert first.closed_form == {**first.closed_form, **by_hand} and first.fvcore_flops == sum(by_hand.values())
    assert first.params == 14_592 and first.agree and not first.problems
    module, args, kwargs = registry.kind_of(spec).build_call(spec, "cpu")
    with FlopCounterMode(display=False) as fc:
        module(*args, **kwargs)
    assert fc.get_total_flops() == 2 * sum(by_hand.values())  # NOTE: FlopCounterMode counts 2 FLOPs per MAC
    assert sum(p.numel() for p in module.parameters()) == 14_592
    assert r.variants[1].fvcore_flops == sum(by_hand.values()) - 16_384


@pytest.mark.usefixtures("toy")
def test_the_toy_kind_reaches_json_and_the_table() -> None:
    from rich.console import Console

    from attncli.analyses.flops import count_flops
    from attncli.render.flops import table

    d = _spec().to_dict()
    assert d["kind"] == TOY.name and d["o_rank"] == 16 and "kv_lora_rank" not in d and d["head_dim"] == 16
    console = Console(width=100, record=True)
    console.print(table(count_flops(_spec())))
    text = console.export_text()
    assert "low-rank out proj" in text and "r=16" in text, text
