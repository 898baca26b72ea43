"""One rule book for layer 0: ``flops --config X`` describes ``schedule.layers[0]``, the layer
``flops --config X --layer 0`` and ``attncli model`` describe, as transformers builds it; and the
config file is parsed once per run.

Expected values are transformers 5.24/5.25's (``.venv/.../transformers/models/<family>/``):

- Gemma2Config: ``sliding_window: int | None = 4096`` (configuration_gemma2.py), ``layer_types``
  default: even layers sliding. A gemma2 config.json without ``sliding_window`` has a sliding layer 0, W 4096.
- Qwen3MoeModel: ``mask_function = create_causal_mask if self.config.sliding_window is None else
  create_sliding_window_causal_mask`` (modeling_qwen3_moe.py) for every layer; Qwen3MoeConfig keeps the
  window when ``use_sliding_window`` is true. ``max_window_layers`` is not read: layer 0 slides, W 4096.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attncli.models.configs import read_hf_config
from attncli.models.schedule import read_schedule

GEMMA2_NO_WINDOW = {"model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"], "hidden_size": 256,
                    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "num_hidden_layers": 4}
QWEN3_MOE_WINDOW = {"model_type": "qwen3_moe", "architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 256,
                    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "num_hidden_layers": 48,
                    "use_sliding_window": True, "sliding_window": 4096, "max_window_layers": 28}
TRANSFORMERS_LAYER0 = [(GEMMA2_NO_WINDOW, 4096), (QWEN3_MOE_WINDOW, 4096)]


def _write(tmp_path: Path, cfg: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize(("cfg", "window"), TRANSFORMERS_LAYER0, ids=["gemma2", "qwen3_moe"])
def test_layer_0_is_transformers_first_layer_both_ways(cli: Any, tmp_path: Path, cfg: dict[str, Any],
                                                      window: int) -> None:
    path = _write(tmp_path, cfg)
    assert read_hf_config(path).window == window
    assert read_schedule(cfg, cfg["model_type"]).layers[0].window == window
    plain = cli("flops", "--config", str(path), "--seq", "8", "-f", "json")
    layer0 = cli("flops", "--config", str(path), "--seq", "8", "--layer", "0", "-f", "json")
    assert plain.code == 0 and layer0.code == 0, plain.err + layer0.err
    a, b = plain.json(), layer0.json()
    assert a["config"]["window"] == b["config"]["window"] == window
    assert b["config"]["layer_type"] == "sliding_attention"
    assert [v["effective_fvcore_flops"] for v in a["variants"]] == [v["effective_fvcore_flops"] for v in b["variants"]]


def test_the_config_file_is_parsed_once_per_run(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, {**GEMMA2_NO_WINDOW, "hidden_size": 320})
    real = json.loads
    parsed: list[str] = []

    def counting(text: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(text, str) and '"hidden_size": 320' in text:
            parsed.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counting)
    for layer in ((), ("--layer", "1")):
        parsed.clear()
        assert cli("flops", "--config", str(path), "--seq", "8", *layer).code == 0
        assert len(parsed) == 1, layer
        path.write_text(path.read_text() + " ")  # NOTE: a changed file is read again on the next run


DATA = Path(__file__).parents[1] / "data" / "configs"


@pytest.mark.parametrize("folder", sorted(p.name for p in DATA.iterdir() if (p / "config.json").is_file()))
def test_every_answered_config_describes_its_schedules_first_layer(folder: str) -> None:
    from attncli.models.modelconfig import read_model
    from attncli.spec import SpecError

    try:
        model = read_model(DATA / folder)
    except SpecError:
        pytest.skip(f"{folder} is refused")
    first = model.schedule.layers[0]
    layer = read_hf_config(DATA / folder)
    assert (layer.window, layer.chunk, layer.layer0_type) == (first.window, first.chunk, first.layer_type)
