"""A generated corpus of hostile inputs for the subprocess fuzz (tests/cli/test_subprocess_fuzz.py
and benchmarks/fuzz_long.py): config.json files, --baseline files, --module references,
--output targets and environments.

Every file is written under a scratch folder given by the caller; nothing here runs attncli.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

LLAMA: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
    "num_key_value_heads": 8, "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 128256,
    "max_position_embeddings": 8192, "rope_theta": 500000.0, "torch_dtype": "bfloat16",
}
"""A well-formed config.json (Llama-3-8B's sizes), the start of most hostile variants."""

BIG_CONFIG_BYTES = 70 << 20
"""The size of the over-large config.json (70 MiB, most of it a JSON string)."""
DEEP = 100_000
"""Nesting depth of the deep config.json and baseline (arrays and objects)."""


def _config_texts() -> dict[str, bytes | str]:
    def doc(**change: Any) -> str:
        return json.dumps({**LLAMA, **change})

    return {
        "good": doc(),
        "not_json": "{model_type: llama,",
        "empty": "",
        "top_list": "[1, 2, 3]",
        "top_string": '"config"',
        "null": "null",
        "string_sizes": doc(hidden_size="4096", num_attention_heads="32"),
        "float_sizes": doc(hidden_size=4096.5, num_attention_heads=32.0),
        "bool_sizes": doc(hidden_size=True, num_attention_heads=False),
        "null_sizes": doc(hidden_size=None, num_key_value_heads=None),
        "list_sizes": doc(hidden_size=[4096], num_attention_heads={"n": 32}),
        "huge_sizes": doc(hidden_size=10**30, num_attention_heads=2**63, max_position_embeddings=10**18),
        "huge_layers": doc(num_hidden_layers=10**12, vocab_size=2**64),
        "digits": doc().replace("4096", "9" * 5000),
        "negative_sizes": doc(hidden_size=-4096, num_attention_heads=-32, num_hidden_layers=-1),
        "zero_sizes": doc(hidden_size=0, num_attention_heads=0, num_key_value_heads=0, head_dim=0),
        "kv_not_dividing": doc(num_key_value_heads=7),
        "nan_sizes": doc().replace("4096", "NaN").replace("500000.0", "Infinity"),
        "text_config_string": doc(text_config="llama"),
        "text_config_list": doc(text_config=[LLAMA]),
        "text_config_null": doc(text_config=None),
        "text_config_wrong": doc(text_config={"hidden_size": "big", "model_type": 7}),
        "text_config_nested": doc(text_config={"text_config": {"text_config": "x"}}),
        "control_chars": doc(model_type="llama\x1b[31m\x07\x1b]0;owned\x07\r\x00", architectures=["\x1b[2J\x9b1m"]),
        "control_key": doc(**{"hidden\x00size": 1, "\x1b[31m": 2}),
        "surrogate": doc().replace('"llama"', '"\\ud800\\udfff\\ud800"'),
        "latin1": b'{"model_type": "\xff\xfe", "hidden_size": 4096}',
        "utf16": json.dumps(LLAMA).encode("utf-16"),
        "bom": b"\xef\xbb\xbf" + json.dumps(LLAMA).encode(),
        "unknown_attention": doc(attention_type="quantum", attn_implementation="warp", sliding_window=-1,
                                 rope_scaling={"type": "unknown", "factor": "x"}, q_lora_rank="r",
                                 kv_lora_rank=-5, index_topk=10**20, linear_num_key_heads=[1]),
        "unknown_layers": doc(layer_types=["warp_attention", "full_attention", None, 7], num_hidden_layers=4),
        "layer_types_mismatch": doc(layer_types=["sliding_attention"] * 3, sliding_window=4096),
        "layer_types_long": doc(layer_types=["full_attention"] * 1_000_000),
        "mla_wrong": doc(model_type="deepseek_v3", kv_lora_rank=0, qk_rope_head_dim=-64, v_head_dim="128"),
        "gdn_wrong": doc(model_type="qwen3_next", linear_num_key_heads=0, linear_key_head_dim=10**12,
                         layer_types=["linear_attention"] * 48),
        "unknown_model": doc(model_type="no_such_model_xyz", architectures=["NoSuchModelForCausalLM"]),
        "deep_array": '{"hidden_size": ' + "[" * DEEP + "]" * DEEP + "}",
        "deep_object": '{"a": ' * DEEP + "1" + "}" * DEEP,
        "duplicate_keys": '{"hidden_size": 4096, "hidden_size": "x", "num_attention_heads": 32}',
    }


def configs(tmp: Path) -> list[str]:
    """Write the hostile config.json files under ``tmp/configs`` and return their paths, with a
    FIFO, a symlink to /dev/zero, a symlink loop, a 70 MiB file, a folder holding a good
    config.json, a folder without one, a missing file and a 300-byte name."""
    folder = tmp / "configs"
    folder.mkdir(exist_ok=True)
    paths = []
    for name, text in _config_texts().items():
        p = folder / f"{name}.json"
        p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        paths.append(str(p))
    big = folder / "big.json"
    with open(big, "wb") as fh:
        head = json.dumps(LLAMA)[:-1].encode() + b', "padding": "'
        fh.write(head)
        fh.write(b"x" * (BIG_CONFIG_BYTES - len(head) - 2))
        fh.write(b'"}')
    fifo = folder / "fifo.json"
    if not fifo.exists():
        os.mkfifo(fifo)
    zero, loop = folder / "zero.json", folder / "loop.json"
    for link, target in ((zero, "/dev/zero"), (loop, str(loop))):
        if not link.is_symlink():
            link.symlink_to(target)
    model = folder / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps(LLAMA))
    empty = folder / "empty_folder"
    empty.mkdir(exist_ok=True)
    return [*paths, str(big), str(fifo), str(zero), str(loop), str(model), str(empty), str(folder / "missing.json"),
            str(folder / ("c" * 300 + ".json")), "/dev/zero", "/dev/null"]


# ---------------------------------------------------------------------------- baselines
BASELINE_LAYER: dict[str, Any] = {
    "dim": 512, "heads": 8, "batch": 32, "seq": 1024, "kv_seq": 1024, "kdim": 512, "vdim": 512, "bias": True,
    "add_bias_kv": False, "add_zero_attn": False, "unbatched": False, "mask": "none", "kv_heads": 8, "window": None,
    "cache": 0, "head_dim": 64}
"""The layer of ``attncli flops`` with its defaults, as a baseline's config names it."""


def baselines(tmp: Path) -> list[str]:
    """Odd --baseline files (and a good one for the default flops layer, first)."""
    layer = BASELINE_LAYER

    def doc(variant: dict[str, Any], **config: Any) -> str:
        return json.dumps({"schema": "attncli.flops/1", "config": {**layer, **config}, "variants": [variant]})

    good = {"heads": 8, "out_proj": True, "fvcore_flops": 68_719_476_736, "params": 1_050_624}
    texts: dict[str, bytes | str] = {
        "good": doc(good),
        "strings": doc({**good, "fvcore_flops": "68719476736"}),
        "infinity": doc(good).replace("68719476736", "Infinity"),
        "nan": doc(good).replace("68719476736", "NaN"),
        "1e400": doc(good).replace("68719476736", "1e400"),
        "null": doc({**good, "params": None}),
        "list": doc({**good, "params": [1]}),
        "digits": doc(good).replace("68719476736", "9" * 5000),
        "eight": doc({**good, "heads": "eight"}),
        "bool_heads": doc({**good, "heads": True}),
        "negative": doc({**good, "fvcore_flops": -5}),
        "false_string": doc({**good, "out_proj": "false"}),
        "other_layer": doc(good, dim=64),
        "no_config": json.dumps({"schema": "attncli.flops/1", "variants": [good]}),
        "not_attncli": json.dumps({"schema": "other/1"}),
        "empty": "",
        "latin1": b"\xff\xfe\x00{",
        "deep": "[" * DEEP + "]" * DEEP,
        "report": json.dumps({"schema": "attncli.report/1", "config": layer, "flops": {"variants": "x"}}),
        "control_chars": doc({**good, "heads": "\x1b[31m8\x07"}, mask="\x1b]0;t\x07"),
        "config_list": json.dumps({"schema": "attncli.flops/1", "config": [1], "variants": [good]}),
        "variants_dict": json.dumps({"schema": "attncli.flops/1", "config": layer, "variants": {"a": good}}),
        "schema_int": json.dumps({"schema": 1, "config": layer, "variants": [good]}),
    }
    folder = tmp / "baselines"
    folder.mkdir(exist_ok=True)
    paths = []
    for name, text in texts.items():
        p = folder / f"{name}.json"
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        paths.append(str(p))
    fifo = folder / "fifo.json"  # NOTE: issue 22: a FIFO blocked the read forever
    if not fifo.exists():
        os.mkfifo(fifo)
    return [*paths, str(folder), str(folder / "missing.json"), str(folder / "new\nline.json"), str(fifo),
            "/dev/zero", str(folder / ("b" * 300 + ".json"))]


# ---------------------------------------------------------------------------- modules
SLOW_MODULES = ("Loops", "LoopsInExec", "Sleeps", "IgnoresCtrlC", "SwallowsInterrupts")
"""Factories that never return by themselves: the fuzz gives them ``--module-timeout 2``."""


def modules() -> list[str]:
    """--module references: every hostile factory of tests/hostile (by module name and by file
    path), harmless stdlib ones that are no attention, and malformed references."""
    refs = [f"tests.hostile.misbehave:{f}" for f in ("Raises", "ReturnsEmpty", "ReturnsNone", "Recurses", "CtrlC",
                                                     "NeedsValues", "broken_build", *SLOW_MODULES)]
    refs += ["tests.hostile.exits:ExitSeven", "tests.hostile.exits:ExitMessage", "tests.hostile.exits:HardExitZero",
             "tests.hostile.exit_on_import:anything", "tests.hostile.prints:Printer", "tests.hostile.prints:RawWriter",
             "tests.hostile.prints:ChangesDirectory", "tests.hostile._base:Base"]
    here = ROOT / "tests" / "hostile"
    refs += [f"{here / 'misbehave.py'}:Raises", f"{here / 'prints.py'}:Printer", f"{here / 'nope.py'}:X",
             f"{here}:Base", "json:loads", "torch.nn:Linear", "os:system", "no_such_module_xyz:make", ":", "x:",
             ":Base", "tests.hostile.misbehave", "\x1b[31m:x", "a" * 300 + ":b", "../../etc/passwd:x"]
    return refs


# ---------------------------------------------------------------------------- outputs, environments
OUTPUTS_RELATIVE = ("out.json", "out.txt", "good.json", "sub/x.json")
"""--output names inside the run's own working folder (checked for partial files); good.json
is a copy of the good baseline made before the run."""


def outputs(tmp: Path) -> list[str]:
    ro = tmp / "readonly"
    ro.mkdir(exist_ok=True)
    os.chmod(ro, 0o500)
    return [*OUTPUTS_RELATIVE, str(tmp), "/dev/full", str(tmp / "a\nb.json"), str(ro / "x.json"),
            str(tmp / "missing" / "x.json"), "/dev/null", "o" * 300 + ".json"]  # issue 22: a name too long


ENVIRONMENTS: tuple[dict[str, str], ...] = (
    {"PYTHONIOENCODING": "ascii"}, {"PYTHONIOENCODING": "latin-1"}, {"PYTHONIOENCODING": "utf-16"},
    {"LC_ALL": "C", "LANG": "C"}, {"LC_ALL": "C.UTF-8"}, {"FORCE_COLOR": "1"}, {"NO_COLOR": "1"}, {"NO_COLOR": ""},
    {"COLUMNS": "20"}, {"COLUMNS": "300"}, {"COLUMNS": "0"}, {"COLUMNS": "abc"}, {"LINES": "3"},
    {"FORCE_COLOR": "1", "COLUMNS": "20", "PYTHONIOENCODING": "ascii"}, {"TERM": "dumb"},
    {"PYTHONIOENCODING": "ascii:strict", "LC_ALL": "C"},
)
"""Odd environments a run may get (on top of the fuzz's own)."""
