"""attncli.cli.layerflags: --config/--preset under the typed flags, told apart from defaults by click."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer

from attncli.cli.layerflags import ConfigOption, PresetOption, layer_values
from attncli.spec import SpecError


def run(*args: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A throwaway command with --dim/--heads/--bias/--mask defaults like attncli's; returns layer_values()."""
    app = typer.Typer()
    seen: dict[str, Any] = {}

    @app.command()
    def cmd(dim: Annotated[int, typer.Option("--dim")] = 512,
            heads: Annotated[int, typer.Option("--heads")] = 8,
            bias: Annotated[bool, typer.Option("--bias/--no-bias")] = True,
            mask: Annotated[str, typer.Option("--mask")] = "none",
            config: ConfigOption = None, preset: PresetOption = None) -> None:
        seen["result"] = layer_values({"dim": dim, "heads": heads, "bias": bias, "mask": mask}, config, preset)

    typer.main.get_command(app).main(list(args), standalone_mode=False)
    result: tuple[dict[str, Any], dict[str, str]] = seen["result"]
    return result


def test_preset_fills_what_was_not_typed() -> None:
    # llama-3-8b (https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json): 4096, 32 heads, 8 KV
    values, sources = run("--preset", "llama-3-8b")
    assert values == {"dim": 4096, "heads": 32, "kv_heads": 8, "head_dim": 128, "window": None,
                      "bias": False, "mask": "causal"}
    assert sources["dim"] == "preset llama-3-8b"


def test_typed_flags_win_even_when_equal_to_the_default() -> None:
    # --dim 512 is the command's default, typed on purpose: it must win over the preset's 4096
    values, sources = run("--preset", "llama-3-8b", "--dim", "512", "--bias")
    assert values["dim"] == 512 and values["bias"] is True and values["heads"] == 32
    assert sources["dim"] == sources["bias"] == "command line"


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    # keys from https://huggingface.co/google-bert/bert-base-uncased/blob/main/config.json
    path.write_text(json.dumps({"model_type": "bert", "hidden_size": 768, "num_attention_heads": 12}))
    values, sources = run("--config", str(path), "--heads", "6")
    assert values["dim"] == 768 and values["heads"] == 6 and values["mask"] == "none"
    assert "head_dim" not in values  # derived from dim/heads: AttnSpec derives it again for 6 heads
    assert sources["dim"] == "config.json:hidden_size"


def test_without_config_nothing_changes() -> None:
    assert run("--dim", "64") == ({"dim": 64, "heads": 8, "bias": True, "mask": "none"}, {})


def test_errors() -> None:
    with pytest.raises(SpecError) as err:
        run("--preset", "gpt-5")
    assert err.value.flag == "--preset"
    with pytest.raises(SpecError) as err:
        run("--preset", "gpt2", "--config", "config.json")
    assert err.value.flag == "--preset" and "not both" in err.value.message
