"""The table of kinds (attncli/registry.py): what selects a kind, which form it runs, and that no module
outside ``attncli/kinds/`` spells a kind's name (the kinds answer for themselves; the registry names them)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from attncli.registry import ALL_KINDS, REGISTRY, STANDARD, entry, select, takes
from attncli.spec import AttnSpec, SpecError

ROOT = Path(__file__).resolve().parents[1] / "attncli"


def _kind_literals(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == "kinds" or rel.as_posix() == "registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ALL_KINDS:
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
    return found


def test_no_module_outside_the_kinds_spells_a_kind_name() -> None:
    found = _kind_literals(ROOT)
    assert not found, ("a kind's name spelled outside attncli/kinds/ (ask the kind, or the registry):\n"
                       + "\n".join(found))


def test_the_literal_check_sees_a_kind_name(tmp_path: Path) -> None:
    (tmp_path / "render").mkdir()
    (tmp_path / "render" / "x.py").write_text('def f(spec):\n    return spec.kind == "gdn"\n')
    (tmp_path / "kinds").mkdir()
    (tmp_path / "kinds" / "y.py").write_text('NAME = "gdn"\n')
    assert _kind_literals(tmp_path) == ["render/x.py:2: 'gdn'"]


def test_every_entry_loads_a_kind_of_its_own_name() -> None:
    import importlib

    for e in REGISTRY:
        assert e.name == importlib.import_module(e.module).NAME
        assert (e.impl is None) == (e.name == STANDARD), e.name  # NOTE: only the standard layer runs on --impl
    assert len(set(ALL_KINDS)) == len(REGISTRY)


@pytest.mark.parametrize(("settings", "kind"), [
    ({}, STANDARD),
    ({"kv_lora_rank": 512, "impl": "mla"}, "mla"),
    ({"kv_lora_rank": 512, "index_topk": 2048, "impl": "sparse_mla"}, "sparse_mla"),
    ({"linear_num_value_heads": 32, "impl": "gdn"}, "gdn"),
    ({"attn_output_gate": True, "impl": "gated"}, "gated"),
    ({"mamba_num_heads": 8, "impl": "mamba2"}, "mamba2"),
    ({"linear_num_heads": 8, "impl": "kda"}, "kda"),
    # NOTE: DeepSeek-V4 reads index_topk as sparse MLA does; its o_lora_rank selects it first
    ({"o_lora_rank": 1024, "index_topk": 512, "impl": "dsv4"}, "dsv4"),
])
def test_the_settings_select_the_kind(settings: dict[str, object], kind: str) -> None:
    assert select(AttnSpec(**settings)) == AttnSpec(**settings).kind == kind  # type: ignore[arg-type]


def test_a_size_of_zero_still_selects_its_kind_and_is_refused() -> None:
    # NOTE: 0 == False in Python; a kv_lora_rank of 0 must not fall back to standard attention silently
    assert AttnSpec(kv_lora_rank=0, impl="mla").kind == "mla"
    with pytest.raises(SpecError, match="--kv-lora-rank"):
        AttnSpec(kv_lora_rank=0, impl="mla").validate()


@pytest.mark.parametrize(("settings", "form"), [
    ({"kv_lora_rank": 512, "impl": "mla", "seq": 1, "cache": 100}, "absorbed"),
    ({"kv_lora_rank": 512, "impl": "mla", "seq": 8}, "naive"),
    ({"kv_lora_rank": 512, "impl": "mla", "seq": 8, "mla_form": "absorbed"}, "absorbed"),
    ({"linear_num_value_heads": 4, "linear_num_key_heads": 2, "linear_key_head_dim": 8, "linear_value_head_dim": 8,
      "linear_conv_kernel_dim": 4, "impl": "gdn", "seq": 1, "cache": 10}, "recurrent"),
    ({"mamba_num_heads": 4, "impl": "mamba2", "seq": 8}, "chunked"),
    ({}, None),
])
def test_the_form_is_the_kinds_form_setting_resolved(settings: dict[str, object], form: str | None) -> None:
    assert AttnSpec(**settings).form == form  # type: ignore[arg-type]


def test_takes_reads_which_kinds_own_a_setting() -> None:
    assert takes("mla", "mla_form") and takes("sparse_mla", "mla_form")
    assert not takes(STANDARD, "mla_form") and not takes("gdn", "mla_form")
    assert not takes("mla", "no_such_setting")
    assert entry("gdn").form == entry("kda").form  # NOTE: KDA takes Gated DeltaNet's --gdn-form
