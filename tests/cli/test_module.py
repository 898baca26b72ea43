"""``--module``: a module written in the tests is counted and shaped like attncli's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

B, L, E, H = 2, 64, 512, 8
# Closed form of standard self-attention (fvcore MACs): 3 projections B*L*E*E, QK^T and
# weights x V B*L*L*E each, W_O B*L*E*E.
CLOSED = 4 * B * L * E * E + 2 * B * L * L * E


@pytest.mark.parametrize("ref", ["tests.usermods:build_tiny", "tests.usermods:TinyAttention",
                                 "tests.usermods:build_mha"])
def test_flops_of_a_user_module(cli: Any, ref: str) -> None:
    r = cli("flops", "--module", ref, "--batch", str(B), "--seq", str(L), "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    (v,) = doc["variants"]
    assert v["fvcore_flops"] == CLOSED
    assert v["cross_checks"]["flop_counter"]["flops"] == 2 * CLOSED
    assert v["cross_checks"]["agree"] is True and doc["reference"]["matches"] is True
    # TinyAttention: qkv (3E x E, no bias) + proj (E x E + E); MHA: 4E^2 + 4E
    assert v["params"] == (3 * E * E + E * E + E if "tiny" in ref.lower() else 4 * E * E + 4 * E)


def test_user_module_budget(cli: Any) -> None:
    r = cli("flops", "--module", "tests.usermods:build_tiny", "--batch", str(B), "--seq", str(L),
            "--max-flops", "100M")
    assert r.code == 1 and "max-flops" in r.err


def test_shapes_of_a_user_module(cli: Any) -> None:
    doc = cli("shapes", "--module", "tests.usermods:build_tiny", "--format", "json").json()
    assert doc["outputs"]["attn_output"] == [1, 10, 512]
    assert doc["params"]["total"] == 3 * E * E + E * E + E


@pytest.mark.parametrize(("ref", "needle"), [
    ("no.such.module:f", "cannot import"),
    ("tests.usermods:nope", "no attribute"),
    ("tests.usermods:broken", "always fails"),
    ("tests.usermods:WrongShape", "cannot run on inputs"),
    ("just-a-name", "MODULE:FACTORY"),
])
@pytest.mark.parametrize("command", ["flops", "shapes"])
def test_bad_modules_fail_cleanly(cli: Any, command: str, ref: str, needle: str) -> None:
    r = cli(command, "--module", ref)
    assert r.code == 2 and "--module" in r.err and needle in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


# ------------------------------------------------------------------ real classes, through `attncli flops --module`
def _closed(b: int, n: int, e: int, h: int, g: int, d: int, out_proj: bool = True) -> dict[str, int]:
    """Closed form of attention in MACs (n = L = S): q B*L*E*H*d, k = v B*L*E*G*d, QK^T = AV B*H*L*L*d,
    W_O B*L*H*d*E."""
    return {"q_proj": b * n * e * h * d, "k_proj": b * n * e * g * d, "v_proj": b * n * e * g * d,
            "qk": b * h * n * n * d, "av": b * h * n * n * d, "out_proj": b * n * h * d * e if out_proj else 0}


SMALL = ("--dim", "64", "--heads", "4", "--batch", "2", "--seq", "16")
LN = 5 * 2 * 16 * 64  # fvcore's layer_norm handle: 5 per element (affine), on a (2, 16, 64) tensor


def _variant(cli: Any, ref: str, *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    r = cli("flops", "--module", ref, *extra, "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    (v,) = doc["variants"]
    for key in ("heads", "out_proj", "fvcore_flops", "flops", "params", "by_stage", "effective", "memory"):
        assert key in v
    assert "closed_form" in v["cross_checks"] and "conclusion" in doc
    assert doc["config"]["impl"] == "module"
    return doc, v


@pytest.mark.parametrize(("ref", "extra", "sizes", "out_proj", "other"), [
    # Llama with 2 KV heads: q 4 heads of 16, k/v 2 heads of 16, causal (transformers' LlamaAttention)
    ("transformers.models.llama.modeling_llama:LlamaAttention", ("--kv-heads", "2"), (64, 4, 2, 16), True, {}),
    ("transformers.models.gpt2.modeling_gpt2:GPT2Attention", (), (64, 4, 4, 16), True, {}),
    # BertSelfAttention: W_O lives in BertSelfOutput
    ("transformers.models.bert.modeling_bert:BertSelfAttention", (), (64, 4, 4, 16), False, {}),
    # BertAttention = self-attention + BertSelfOutput (dense W_O, dropout, LayerNorm(x + input))
    ("transformers.models.bert.modeling_bert:BertAttention", (), (64, 4, 4, 16), True, {"aten::layer_norm": LN}),
    # timm's Attention with qk_norm: a LayerNorm on q and one on k, (2, 4, 16, 16) each, between the
    # projection and attention
    ("tests.usermods:timm_qk_norm", (), (64, 4, 4, 16), True, {"aten::layer_norm": 2 * LN}),
])
def test_real_classes_count_as_the_closed_form(cli: Any, ref: str, extra: tuple[str, ...],
                                               sizes: tuple[int, int, int, int], out_proj: bool,
                                               other: dict[str, int]) -> None:
    if ref.startswith("transformers"):
        pytest.importorskip("transformers")
    e, h, g, d = sizes
    doc, v = _variant(cli, ref, *SMALL, *extra)
    want = _closed(2, 16, e, h, g, d, out_proj)
    assert {k: v["by_stage"][k] for k in want} == want
    assert v["by_stage"].get("other", 0) == sum(other.values())
    assert {o["op"]: o["fvcore_flops"] for o in v["other_ops"]} == other
    assert v["out_proj"] is out_proj and doc["config"]["kv_heads"] == g
    assert v["fvcore_flops"] == sum(want.values()) + sum(other.values())
    assert v["cross_checks"]["agree"] is True, v["cross_checks"]["problems"]
    fc = v["cross_checks"]["flop_counter"]
    assert fc["flops"] == 2 * sum(want.values())  # FlopCounterMode has no layer_norm formula: matmuls only
    assert [o["op"] for o in fc["not_counted_by_flop_counter"]] == list(other)


def test_llama_is_causal_so_effective_counts_half(cli: Any) -> None:
    pytest.importorskip("transformers")
    doc, v = _variant(cli, "transformers.models.llama.modeling_llama:LlamaAttention", *SMALL)
    assert doc["config"]["mask"] == "causal"
    # causal: L(L+1)/2 of the L*L pairs, B*H*d MACs each
    assert v["effective"]["by_stage"]["qk"] == 2 * 4 * 16 * (16 * 17 // 2)


def test_mha_is_fed_sequence_first_and_says_so(cli: Any) -> None:
    r = cli("flops", "--module", "torch.nn:MultiheadAttention", *SMALL, "-v")
    assert r.code == 0, r.err
    lines = [ln for ln in r.out.splitlines() if "batch_first=False" in ln]
    assert len(lines) == 1 and "(L, B, E)" in lines[0]
    doc, v = _variant(cli, "torch.nn:MultiheadAttention", *SMALL)
    assert doc["config"]["call"]["seq_first_inputs"] is True
    assert v["by_stage"] == _closed(2, 16, 64, 4, 4, 16)


def test_kv_seq_never_blames_an_impl_that_was_not_asked_for(cli: Any) -> None:
    r = cli("flops", "--module", "tests.usermods:build_mha", *SMALL, "--kv-seq", "96", "--format", "json")
    assert r.code == 0, r.err
    assert "--impl" not in r.err
    (v,) = r.json()["variants"]
    assert v["by_stage"]["k_proj"] == 2 * 96 * 64 * 64 and v["by_stage"]["qk"] == 2 * 4 * 16 * 96 * 16
    r = cli("flops", "--module", "tests.usermods:build_tiny", *SMALL, "--kv-seq", "96")
    assert r.code == 2 and "--impl" not in r.err and "--call qkv" in r.err


@pytest.mark.parametrize("flag", [("--impl", "split"), ("--add-bias-kv",),
                                  ("--add-zero-attn",), ("--cache", "4"), ("--dropout", "0.5"),
                                  ("--no-need-weights",), ("--need-weights",), ("--per-head-weights",)])
@pytest.mark.parametrize("command", ["flops", "shapes"])
def test_flags_a_module_cannot_take_exit_2(cli: Any, command: str, flag: tuple[str, ...]) -> None:
    r = cli(command, "--module", "tests.usermods:build_tiny", *flag)
    assert r.code == 2 and r.err.startswith(f"attncli: error: {flag[0]}:") and r.err.count("\n") == 1


@pytest.mark.parametrize(("flag", "biases"), [("--bias", 64 + 32 + 32 + 64), ("--no-bias", 0), (None, 0)])
def test_bias_flags_reach_a_hugging_face_config(cli: Any, flag: str | None, biases: int) -> None:
    """LlamaAttention at E=64, H=4, G=2, d=16: weights q 64*64, k = v 64*32, o 64*64 = 12,288;
    attention_bias adds q 64, k 32, v 32, o 64. Llama's default is no bias."""
    pytest.importorskip("transformers")
    _doc, v = _variant(cli, "transformers.models.llama.modeling_llama:LlamaAttention", *SMALL,
                       "--kv-heads", "2", *([flag] if flag else []))
    assert v["params"] == 64 * 64 + 2 * 64 * 32 + 64 * 64 + biases


@pytest.mark.parametrize("flag", ["--bias", "--no-bias"])
def test_bias_flags_a_factory_cannot_take_exit_2(cli: Any, flag: str) -> None:
    r = cli("flops", "--module", "tests.usermods:build_tiny", flag)
    assert r.code == 2 and r.err.startswith(f"attncli: error: {flag}:") and r.err.count("\n") == 1


def test_shapes_no_out_proj_with_a_module_exits_2(cli: Any) -> None:
    r = cli("shapes", "--module", "tests.usermods:build_tiny", "--no-out-proj")
    assert r.code == 2 and "--no-out-proj" in r.err


def test_call_override(cli: Any) -> None:
    r = cli("flops", "--module", "tests.usermods:build_tiny", *SMALL, "--call", "qkv")
    assert r.code == 2 and "--call" in r.err  # forward(x) accepts one input only
    doc, _ = _variant(cli, "tests.usermods:build_mha", *SMALL, "--call", "qkv")
    assert doc["config"]["call"]["reason"] == "--call qkv"


# ------------------------------------------------------------------ the JSON keys the built-in flops JSON has
def _keys(doc: Any, prefix: str = "") -> set[str]:
    """Every key path of a document (the first item of a list stands for all)."""
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            out |= {prefix + k} | _keys(v, prefix + k + ".")
    elif isinstance(doc, list) and doc and isinstance(doc[0], dict):
        out |= _keys(doc[0], prefix + "[].")
    return out


def test_module_json_has_the_built_in_keys(cli: Any) -> None:
    """Every key of `flops --format json` is in `flops --module ... --format json`, but those that
    compare variants a module does not have (one head) and the op and module names traced."""
    built_in = cli("flops", *SMALL, "--format", "json").json()
    doc, _ = _variant(cli, "torch.nn:MultiheadAttention", *SMALL)
    missing = {k for k in _keys(built_in) - _keys(doc)
               if not k.startswith(("variants.[].by_module.", "variants.[].by_operator."))}
    assert missing == {"conclusion.heads_cost"}


def test_module_json_dtype_pairs_and_w_o_cost(cli: Any) -> None:
    """LlamaAttention at SMALL, G=2, causal: 16*17/2 = 136 of 16*16 = 256 pairs visible; W_O
    B*L*H*d*E = 2*16*64*64 = 131,072 MACs on top of q 131,072 + k, v 65,536 each + QK^T,
    weights x V B*H*L*L*d = 32,768 each = 327,680: +40%."""
    pytest.importorskip("transformers")
    doc, v = _variant(cli, "transformers.models.llama.modeling_llama:LlamaAttention", *SMALL, "--kv-heads", "2",
                      "--dtype", "bfloat16")
    assert doc["config"]["dtype"] == "bfloat16" == v["memory"]["dtype"]
    assert (v["effective"]["visible_pairs"], v["effective"]["dense_pairs"]) == (136, 256)
    assert v["traced_fvcore_flops"] == v["fvcore_flops"] == sum(_closed(2, 16, 64, 4, 2, 16).values())
    assert v["uncalled_modules"] == []
    assert doc["conclusion"]["out_proj_cost"] == 131_072 and doc["conclusion"]["out_proj_percent"] == 40.0
    assert doc["cross_checks"]["agree"] is True
    assert "FlopCounterMode" in doc["cross_checks"]["flop_counter"] and "closed_form" in doc["cross_checks"]
    assert any("causal" in n and "136" in n and "256" in n for n in doc["notes"])


def test_module_without_w_o_has_no_w_o_cost(cli: Any) -> None:
    """BertSelfAttention keeps W_O in BertSelfOutput: nothing to cost, no mask: every pair visible."""
    pytest.importorskip("transformers")
    doc, v = _variant(cli, "transformers.models.bert.modeling_bert:BertSelfAttention", *SMALL)
    assert doc["conclusion"]["out_proj_cost"] is None and doc["conclusion"]["out_proj_percent"] is None
    assert v["effective"]["visible_pairs"] == v["effective"]["dense_pairs"] == 256


# ------------------------------------------------------------------ multi-head latent attention (DeepseekV3Attention)
DSV3 = "transformers.models.deepseek_v3.modeling_deepseek_v3:DeepseekV3Attention"


def test_deepseek_v3_attention_at_deepseeks_sizes(cli: Any) -> None:
    """DeepSeek-V3's own layer at its published sizes (E 7168, H 128, R 512, RQ 1536, DN 128, DR 64,
    DV 128), B 1, L 64, causal, through transformers' class, against the MLA closed form (naive: the
    latents re-expanded) by hand, stage by stage (MACs):
    q_a B*L*E*RQ = 64*7168*1536, q_b B*L*RQ*H*(DN+DR) = 64*1536*128*192, kv_a B*L*E*(R+DR) = 64*7168*576,
    kv_b B*S*R*H*(DN+DV) = 64*512*128*256, QK^T B*H*L*S*(DN+DR) = 128*64*64*192, AV B*H*L*S*DV = 128*64*64*128,
    W_O B*L*H*DV*E = 64*128*128*7168. Causal: 64*65/2 = 2,080 of 4,096 pairs. Parameters (GUIDE section 6):
    q_a 7168*1536 + its norm 1536, q_b 1536*128*192, kv_a 7168*576 + its norm 512, kv_b 512*128*256,
    o 128*128*7168 = 187,107,328."""
    pytest.importorskip("transformers")
    doc, v = _variant(cli, DSV3, "--preset", "deepseek-v3", "--seq", "64", "--batch", "1")
    want = {"q_a_proj": 704_643_072, "q_b_proj": 2_415_919_104, "kv_a_proj": 264_241_152,
            "kv_b_proj": 1_073_741_824, "qk": 100_663_296, "av": 67_108_864, "out_proj": 7_516_192_768}
    assert v["by_stage"] == want  # kv_b_proj whole (K and V come out of one matmul), nothing in other
    assert v["fvcore_flops"] == sum(want.values()) == 12_142_510_080
    assert v["effective"]["by_stage"] == {**want, "qk": 128 * 2080 * 192, "av": 128 * 2080 * 128}
    assert v["effective"]["fvcore_flops"] == 12_059_934_720
    assert v["params"] == 187_107_328
    closed = v["cross_checks"]["closed_form"]
    assert closed["by_stage"] == want and closed["agree"] is True
    assert closed["params"]["total"] == 187_107_328 and closed["params"]["agree"] is True
    assert v["cross_checks"]["agree"] is True and v["cross_checks"]["flop_counter"]["by_stage_macs"] == want
    assert doc["config"]["kind"] == "mla" and doc["config"]["form"] == "naive"
    assert (doc["config"]["kv_lora_rank"], doc["config"]["q_lora_rank"]) == (512, 1536)
    assert doc["reference"]["matches"] is True and "multi-head latent attention" in doc["reference"]["what"]


def test_deepseek_v3_attention_table(cli: Any) -> None:
    pytest.importorskip("transformers")
    r = cli("flops", "--module", DSV3, "--preset", "deepseek-v3", "--seq", "64", "--batch", "1")
    assert r.code == 0, r.err
    assert "kv up (W_UK,W_UV)" in r.out and "1,073,741,824" in r.out and "187,107,328 parameters" in r.out
    assert "MLA R=512 RQ=1536" in r.out and "other:" not in r.out


MLA_SMALL = ("--dim", "96", "--heads", "3", "--batch", "2", "--seq", "8", "--kv-lora-rank", "32",
             "--qk-nope-head-dim", "16", "--qk-rope-head-dim", "8", "--v-head-dim", "24", "--mask", "causal")


@pytest.mark.parametrize(("rq", "bias"), [(48, False), (0, False), (48, True)])
def test_deepseek_v3_attention_at_any_size(cli: Any, rq: int, bias: bool) -> None:
    """E/H = 32 (not 64), DN != DV, with and without the query LoRA, with attention_bias: every stage,
    the effective count and the parameters equal the MLA closed form of the spec."""
    pytest.importorskip("transformers")
    from attncli.kinds.mla import kind as mla
    from attncli.spec import AttnSpec

    args = [a for a in MLA_SMALL if a not in ("--mask", "causal")]
    r = cli("flops", "--module", DSV3, *args, "--q-lora-rank", str(rq), "--bias" if bias else "--no-bias",
            "--format", "json")
    assert r.code == 0, r.err
    (v,) = r.json()["variants"]
    spec = AttnSpec(dim=96, heads=3, batch=2, seq=8, kv_lora_rank=32, q_lora_rank=rq, qk_nope_head_dim=16,
                    qk_rope_head_dim=8, v_head_dim=24, mla_form="naive", bias=bias, mask="causal",
                    impl="mla").validate()
    assert v["by_stage"] == mla.closed_form(spec)
    assert ("q_proj" in v["by_stage"]) is (rq == 0)
    assert v["effective"]["by_stage"] == mla.effective(spec, mla.closed_form(spec))[0]
    assert v["params"] == mla.params(spec)["total"]
    assert v["cross_checks"]["agree"] is True and v["cross_checks"]["closed_form"]["params"]["agree"] is True


@pytest.mark.parametrize(("ref", "extra", "flag"), [
    (DSV3, ("--dim", "64", "--heads", "4", "--kv-heads", "2"), "--kv-heads"),
    (DSV3, ("--dim", "64", "--heads", "4", "--head-dim", "8"), "--head-dim"),
    (DSV3, (*MLA_SMALL[:-2], "--mla-form", "absorbed"), "--mla-form"),
    ("transformers.models.llama.modeling_llama:LlamaAttention", MLA_SMALL[:-2], "--kv-lora-rank"),
])
def test_what_an_mla_class_cannot_take_exits_2(cli: Any, ref: str, extra: tuple[str, ...], flag: str) -> None:
    pytest.importorskip("transformers")
    r = cli("flops", "--module", ref, *extra)
    assert r.code == 2 and r.err.startswith(f"attncli: error: {flag}:") and r.err.count("\n") == 1, r.err


def test_a_hugging_face_class_prints_nothing_on_stderr() -> None:
    """The real console script: no FutureWarning from transformers (nor anything else) on stderr."""
    pytest.importorskip("transformers")
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "attncli", "flops", "--module",
                        "transformers.models.llama.modeling_llama:LlamaAttention", *SMALL, "--format", "json"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0 and r.stderr == "", r.stderr


# ------------------------------------------------------------------ a module that is not attention; a file by its path
@pytest.mark.parametrize("ref", ["torch.nn:Linear", "torch.nn:Identity"])
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_module_without_attention_exits_2(cli: Any, ref: str, fmt: str) -> None:
    """nn.Linear(dim, heads) runs and has a matmul, nn.Identity none, but neither a QK^T nor a
    weights x V: no attention estimate, one line, exit 2."""
    r = cli("flops", "--module", ref, "--seq", "8", "--batch", "1", "--format", fmt)
    assert r.code == 2 and r.out == ""
    assert r.err == f"attncli: error: --module: no attention found in {ref} (no QK^T or weights x V was traced)\n"


ATTN_FILE = '''
import torch
from torch import nn

from attn_helpers import heads_of  # a neighbour file: the file's own folder is importable while it loads


class FileAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = heads_of(self.qkv(x), self.heads)
        out = ((q @ k.transpose(-2, -1)).softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


def build(dim, heads):
    return FileAttention(dim, heads)
'''

HELPERS = '''
def heads_of(qkv, heads):
    b, n, c3 = qkv.shape
    t = qkv.reshape(b, n, 3, heads, c3 // 3 // heads).permute(2, 0, 3, 1, 4)
    return t[0], t[1], t[2]
'''


@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_a_module_file_by_its_path(cli: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    import sys

    folder = tmp_path / "my models"
    folder.mkdir()
    (folder / "attn.py").write_text(ATTN_FILE)
    (folder / "attn_helpers.py").write_text(HELPERS)
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    path = "./my models/attn.py" if how == "relative" else str(folder / "attn.py")
    r = cli("flops", "--module", f"{path}:build", "--batch", str(B), "--seq", str(L), "--format", "json")
    assert r.code == 0, r.err
    (v,) = r.json()["variants"]
    assert v["fvcore_flops"] == CLOSED and v["cross_checks"]["agree"] is True
    assert v["params"] == 3 * E * E + E * E + E
    assert sys.path == before and "attn" not in sys.modules  # registered under a name of its own
    sys.modules.pop("attn_helpers", None)
    r = cli("shapes", "--module", f"{path}:build", "--format", "json")
    assert r.code == 0, r.err
    sys.modules.pop("attn_helpers", None)


@pytest.mark.parametrize(("ref", "needle"), [
    ("./no_such_file.py:build", "no file './no_such_file.py'"),
    ("./tests:build_tiny", "looks like a path"),
    (".usermods:build_tiny", "a relative module name"),
])
@pytest.mark.parametrize("command", ["flops", "shapes"])
def test_a_bad_path_says_what_to_write(cli: Any, command: str, ref: str, needle: str) -> None:
    r = cli(command, "--module", ref)
    assert r.code == 2 and r.err.startswith("attncli: error: --module: ") and r.err.count("\n") == 1, r.err
    assert needle in r.err and "FILE.py:FACTORY" in r.err and "Traceback" not in r.err


# ------------------------------------------------------------------ Phi-3's fused qkv_proj, Gemma 3's layer-type rotary
PHI3 = "transformers.models.phi3.modeling_phi3:Phi3Attention"
GEMMA3 = "transformers.models.gemma3.modeling_gemma3:Gemma3Attention"
MODELS = Path(__file__).resolve().parents[2] / "attncli" / "data" / "models"


def test_phi3_qkv_proj_is_split_by_its_slices(cli: Any) -> None:
    """qkv_proj is Linear(E, (H + 2G) d): q H*d = 64, k and v G*d = 32 each, not all of it to v."""
    pytest.importorskip("transformers")
    doc, v = _variant(cli, PHI3, *SMALL, "--kv-heads", "2")
    want = _closed(2, 16, 64, 4, 2, 16)
    assert v["by_stage"] == want and doc["reference"]["matches"] is True
    assert v["cross_checks"]["flop_counter"]["by_stage_macs"] == want
    assert v["stage_sources"]["q_proj"] == v["stage_sources"]["v_proj"] == ["attn.qkv_proj: aten::linear"]
    assert v["cross_checks"]["agree"] is True


@pytest.mark.parametrize(("ref", "config", "seq", "sizes", "window", "norms"), [
    # Phi-3-mini-4k: E 3072, H = G = 32, d 96, sliding_window 2047 (> L: every causal pair)
    (PHI3, "phi-3-mini-4k.json", 64, (3072, 32, 32, 96), 2047, 0),
    # Gemma-3-27B layer 0: E 5376, H 32, G 16, d 128, sliding 1024 (< L = 2048), qk-norm 2 x 128 weights
    (GEMMA3, "gemma-3-27b.json", 2048, (5376, 32, 16, 128), 1024, 2 * 128),
])
def test_published_sizes_through_the_real_class(cli: Any, ref: str, config: str, seq: int,
                                                sizes: tuple[int, int, int, int], window: int, norms: int) -> None:
    """Layer 0 at the model's published sizes, B 1, against the closed form per stage, the effective
    count (a query at p sees min(W, p + 1) keys) and the parameters (no biases; Gemma's q_norm, k_norm)."""
    pytest.importorskip("transformers")
    e, h, g, d = sizes
    doc, v = _variant(cli, ref, "--config", str(MODELS / config), "--seq", str(seq), "--batch", "1")
    want = _closed(1, seq, e, h, g, d)
    assert v["by_stage"] == want and v["cross_checks"]["agree"] is True
    assert doc["config"]["window"] == window and doc["config"]["mask"] == "causal"
    visible = sum(min(window, p + 1) for p in range(seq))
    assert v["effective"]["visible_pairs"] == visible
    assert v["effective"]["by_stage"] == {**want, "qk": h * d * visible, "av": h * d * visible}
    assert v["params"] == e * h * d + 2 * e * g * d + h * d * e + norms
