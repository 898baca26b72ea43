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
    assert values == {"dim": 4096, "heads": 32, "kv_heads": 8, "d_head": 128, "window": None, "chunk": None,
                      "bias": False, "mask": "causal", "model": "llama-3-8b"}
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


# ------------------------------------------------------------------ through the commands
# Meta-Llama-3-8B (https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json):
# hidden_size 4096, 32 heads, 8 KV heads, head_dim 4096/32 = 128, no attention bias, causal LM.
LLAMA3_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                 "num_attention_heads": 32, "num_key_value_heads": 8, "attention_bias": False,
                 "intermediate_size": 14336, "num_hidden_layers": 32, "rope_theta": 500000.0}
B, L, E, H, G, D = 1, 8192, 4096, 32, 8, 128
LLAMA3_STAGES = {  # closed form, MACs, H heads with W_O
    "q_proj": B * L * E * H * D,              # 137,438,953,472
    "k_proj": B * L * E * G * D,              # 34,359,738,368
    "v_proj": B * L * E * G * D,
    "qk": B * H * L * L * D,                  # 274,877,906,944 (dense)
    "av": B * H * L * L * D,
    "out_proj": B * L * H * D * E,            # 137,438,953,472
}
LLAMA3_EFFECTIVE_QK = B * H * D * (L * (L + 1) // 2)  # causal: L(L+1)/2 visible pairs = 137,455,730,688
LLAMA3_PARAMS = 2 * E * H * D + 2 * E * G * D          # W_q, W_O, W_k, W_v without biases = 41,943,040


def _llama3_variant(cli: Any, *source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    r = cli("flops", *source, "--seq", str(L), "--batch", str(B), "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    (v,) = [v for v in doc["variants"] if v["heads"] == H and v["out_proj"]]
    return doc, v


@pytest.mark.parametrize("source", ["preset", "config"])
def test_llama3_8b_flops_from_preset_and_config(cli: Any, tmp_path: Path, source: str) -> None:
    if source == "preset":
        args: tuple[str, ...] = ("--preset", "llama-3-8b")
        origin = "preset llama-3-8b"
    else:
        (tmp_path / "config.json").write_text(json.dumps(LLAMA3_CONFIG))
        args, origin = ("--config", str(tmp_path / "config.json")), "config.json:num_key_value_heads"
    doc, v = _llama3_variant(cli, *args)
    assert v["by_stage"] == LLAMA3_STAGES
    assert v["effective"]["by_stage"]["qk"] == LLAMA3_EFFECTIVE_QK
    assert v["params"] == LLAMA3_PARAMS
    cfg = doc["config"]
    assert (cfg["kv_heads"], cfg["head_dim"], cfg["mask"], cfg["bias"]) == (G, D, "causal", False)
    assert cfg["sources"]["kv_heads"] == origin
    assert cfg["sources"]["seq"] == "command line" and cfg["sources"]["dropout"] == "default"


def test_typed_head_dim_and_kv_heads_beat_the_preset(cli: Any) -> None:
    r = cli("shapes", "--preset", "llama-3-8b", "--head-dim", "64", "--kv-heads", "4", "--format", "json")
    assert r.code == 0, r.err
    cfg = json.loads(r.out)["config"]
    assert (cfg["dim"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]) == (4096, 32, 4, 64)
    assert cfg["sources"]["head_dim"] == cfg["sources"]["kv_heads"] == "command line"
    assert cfg["sources"]["dim"] == "preset llama-3-8b"


def test_no_sources_without_config(cli: Any) -> None:
    r = cli("shapes", "--format", "json")
    assert r.code == 0 and "sources" not in json.loads(r.out)["config"]


def test_config_and_preset_together_is_a_one_line_error(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_CONFIG))
    r = cli("shapes", "--preset", "llama-3-8b", "--config", str(tmp_path / "config.json"))
    assert r.code == 2 and r.err.count("\n") == 1 and "--preset" in r.err


def test_an_error_in_a_preset_value_says_where_it_came_from(cli: Any) -> None:
    """Llama-3-8B has 8 KV heads (its config.json: num_key_value_heads 8); --heads 30 is typed."""
    r = cli("flops", "--preset", "llama-3-8b", "--heads", "30")
    assert r.code == 2 and r.err.count("\n") == 1
    assert r.err.startswith("attncli: error: --kv-heads: --kv-heads 8 must divide --heads 30 ")
    assert "comes from preset llama-3-8b; you typed --heads" in r.err
    r = cli("flops", "--preset", "llama-3-8b", "--kv-heads", "7")  # typed: no origin to add
    assert r.code == 2 and "comes from" not in r.err


def test_the_model_dtype_is_the_default_for_counts(cli: Any) -> None:
    """Meta-Llama-3-8B's config.json says torch_dtype bfloat16: the roofline and memory of
    --preset llama-3-8b are bfloat16's unless --dtype says otherwise; GPT-2's names none (float32)."""
    r = cli("flops", "--preset", "llama-3-8b", "--gpu", "h100-sxm", "--batch", "1", "--format", "json")
    assert r.code == 0 and r.json()["config"]["dtype"] == "bfloat16"
    r = cli("flops", "--preset", "llama-3-8b", "--gpu", "h100-sxm", "--batch", "1", "--dtype", "fp32",
            "--format", "json")
    assert r.code == 0 and r.json()["config"]["dtype"] == "float32"
    r = cli("flops", "--preset", "gpt2", "--format", "json")
    assert r.code == 0 and r.json()["config"]["dtype"] == "float32"
    r = cli("flops", "--config", "tests/data/configs/gemma-2-9b", "--format", "json")  # torch_dtype float32
    assert r.code == 0 and r.json()["config"]["dtype"] == "float32"
