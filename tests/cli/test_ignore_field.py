"""``--ignore-field NAME``: count past a config field the allowlist guard refuses, saying so in every title
and in the JSON's ``config.ignored_fields``; on every command that takes ``--config``/``--preset``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.discovery import commands

# NOTE: a Llama layer (transformers' LlamaConfig names) with one field attncli neither reads nor knows.
LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 256, "num_attention_heads": 4,
         "num_key_value_heads": 2, "num_hidden_layers": 2, "acme_knob": 1}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "acme" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(LLAMA))
    return path


@pytest.mark.parametrize("command", ["flops", "shapes", "report", "sweep", "model"])
def test_refused_then_counted_past_with_the_title_and_json_saying_so(cli: Any, config: Path, command: str) -> None:
    small = ("--seq", "8") if command != "sweep" else ("--seq", "4,8")
    r = cli(command, "--config", str(config), *small)
    assert r.code == 2 and r.err.strip() == ("attncli: error: --config: acme_knob (not modelled for llama); attncli "
                                             "would count a different layer (--ignore-field NAME passes a field you "
                                             "know to be harmless)")
    r = cli(command, "--config", str(config), *small, "--ignore-field", "acme_knob")
    assert r.code == 0, r.err
    assert "(ignoring acme_knob)" in r.out.splitlines()[0]
    r = cli(command, "--config", str(config), *small, "--ignore-field", "acme_knob", "-f", "json")
    assert r.code == 0 and r.json()["config"]["ignored_fields"] == ["acme_knob"], r.err


def test_the_count_is_the_layer_without_the_field(cli: Any, config: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({k: v for k, v in LLAMA.items() if k != "acme_knob"}))
    a = cli("flops", "--config", str(plain), "--seq", "8", "-f", "json").json()
    b = cli("flops", "--config", str(config), "--seq", "8", "--ignore-field", "acme_knob", "-f", "json").json()
    assert "ignored_fields" not in a["config"]
    assert [v["fvcore_flops"] for v in a["variants"]] == [v["fvcore_flops"] for v in b["variants"]]


def test_presets_and_layer_take_it_too(cli: Any, config: Path) -> None:
    r = cli("presets", "--config", str(config), "--ignore-field", "acme_knob", "-f", "json")
    assert r.code == 0 and r.json()["config"]["ignored_fields"] == ["acme_knob"], r.err
    r = cli("flops", "--config", str(config), "--seq", "8", "--layer", "1", "--ignore-field", "acme_knob")
    assert r.code == 0 and "(ignoring acme_knob) layer 1 (full)" in r.out.splitlines()[0], r.err


@pytest.mark.parametrize(("args", "needle"), [
    (("--ignore-field", "acme_knob", "--ignore-field", "rope_theta"), "--ignore-field: rope_theta: not a field"),
    (("--ignore-field", "acme_knob", "--ignore-field", "typo"), "--ignore-field: typo: not a field"),
])
def test_a_name_the_guard_would_not_refuse_exits_2(cli: Any, config: Path, args: tuple[str, ...], needle: str) -> None:
    r = cli("flops", "--config", str(config), "--seq", "8", *args)
    assert r.code == 2 and needle in r.err and len(r.err.strip().splitlines()) == 1


def test_without_a_config_it_exits_2(cli: Any) -> None:
    r = cli("flops", "--ignore-field", "acme_knob")
    assert r.code == 2 and "--ignore-field: needs --config or --preset" in r.err


def test_every_command_with_config_takes_it() -> None:
    names = {c: {n for opt in opts for n in opt.names} for c, opts in commands().items()}
    with_config = {c for c, opts in names.items() if "--config" in opts}
    assert len(with_config) >= 8 and all("--ignore-field" in names[c] for c in with_config)
