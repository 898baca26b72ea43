"""``attncli model``: every attention layer of a whole model from its config.json, at any context."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from attncli.cli import app
from attncli.cli.common import (
    CHECKS,
    CONFIG,
    OUTPUT,
    RUN,
    Dtype,
    Format,
    FormatOption,
    GpuOption,
    MlaForm,
    OutputOption,
    fail,
)
from attncli.cli.common import ENGINE as ENGINE_PANEL
from attncli.cli.engineflags import EngineFlags
from attncli.cli.engineflags import value as choice_value
from attncli.cli.helptext import AttnCommand, complete_model_presets, examples
from attncli.cli.inputs import dtype_parser, expand_tokens
from attncli.cli.layerflags import IgnoreFieldOption
from attncli.cli.runtime import counting, import_torch
from attncli.io.paths import check_run_files
from attncli.registry import takes
from attncli.spec import SpecError

# NOTE: enums built from attncli.choices at run time; to mypy the options are Any.
if TYPE_CHECKING:
    DtypeArg = Any
    KvDtypeArg = Any
    FormArg = Any
    EngineArg = Any
    KvCacheDtypeArg = Any
    MambaDtypeArg = Any
else:
    from attncli.cli.engineflags import Engine, KvCacheDtype, MambaSsmDtype

    EngineArg = Annotated[Engine | None, typer.Option(
        "--engine", metavar="NAME", rich_help_panel=ENGINE_PANEL,
        help="Size the KV cache as this serving engine does (vllm: vLLM 0.34's blocks, groups, padding and "
             "max concurrency).")]
    KvCacheDtypeArg = Annotated[KvCacheDtype | None, typer.Option(
        "--kv-cache-dtype", metavar="DTYPE", rich_help_panel=ENGINE_PANEL,
        help="auto (the model's dtype), bfloat16, float16, fp8, fp8_e4m3, fp8_e5m2, or fp8_ds_mla (MLA).")]
    MambaDtypeArg = Annotated[MambaSsmDtype | None, typer.Option(
        "--mamba-ssm-cache-dtype", metavar="DTYPE", rich_help_panel=ENGINE_PANEL,
        help="A linear layer's recurrent state: auto (the model's dtype), float32, bfloat16 or float16.")]
    DtypeArg = Annotated[Dtype | None, typer.Option(
        "--dtype", metavar="DTYPE", rich_help_panel=RUN, parser=dtype_parser(Dtype),
        help="Weights and activations: float32, tf32, bfloat16, float16 or float8, or fp32, bf16, fp16, fp8 "
             "(default: the config's torch_dtype, else bfloat16).")]
    KvDtypeArg = Annotated[Dtype | None, typer.Option(
        "--kv-dtype", metavar="DTYPE", rich_help_panel=RUN, parser=dtype_parser(Dtype),
        help="The KV cache's element type: float32, tf32, bfloat16, float16 or float8, or fp32, bf16, fp16, "
             "fp8 (default: --dtype).")]
    FormArg = Annotated[MlaForm, typer.Option(
        "--mla-form", metavar="FORM", rich_help_panel=RUN,
        help="MLA models: naive, absorbed or auto (absorbed for a decode step).")]
AUTO = MlaForm("auto")


@app.command(cls=AttnCommand, short_help="Count every attention layer of a model, its KV cache and time.",
             epilog=examples(
                 "attncli model Qwen/Qwen3-8B --gpu h100",
                 "attncli model --preset gpt-oss-20b --seq 131072",
                 "attncli model --preset mistral-7b --seq 1 --cache 1k:128k:x2 --gpu h100-sxm",
                 "attncli model --preset deepseek-v3 --tp 8 --max-kv-bytes 80e9"))
def model(
    name: Annotated[str | None, typer.Argument(
        metavar="MODEL", show_default=False, rich_help_panel=CONFIG,
        help="A packaged preset (attncli presets), a config.json or its folder, or a Hugging Face Hub model "
             "org/name: its config.json and weights' size through huggingface_hub (its cache, HF_TOKEN, "
             "HF_ENDPOINT, HF_HUB_OFFLINE); a request gives up after 10 s (ATTNCLI_HUB_TIMEOUT).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE", rich_help_panel=CONFIG,
        help="The model's Hugging Face config.json, its folder, or a Hub model (org/name).")] = None,
    revision: Annotated[str | None, typer.Option(
        "--revision", metavar="REV", rich_help_panel=CONFIG,
        help="With a Hub model: a branch, tag or commit (default main); a full commit hash is read from the "
             "cache with no request once fetched.")] = None,
    preset: Annotated[str | None, typer.Option(
        "--preset", metavar="NAME", rich_help_panel=CONFIG, autocompletion=complete_model_presets,
        help="A packaged model (its published config.json; names: attncli presets).")] = None,
    ignore_field: IgnoreFieldOption = None,
    seq: Annotated[str, typer.Option(
        "--seq", metavar="VALUES", rich_help_panel=RUN,
        help="New tokens L of the step: a prefill of L tokens. A range (1k:1M:x2, k = 1024) adds the cache at "
             "every context.")] = "4096",
    batch: Annotated[int, typer.Option("--batch", metavar="N", min=1, rich_help_panel=RUN, help="Sequences B.")] = 1,
    cache: Annotated[str, typer.Option(
        "--cache", metavar="VALUES", rich_help_panel=RUN,
        help="N tokens already cached: --seq 1 --cache N is one decode step at context N + 1. A range (1k:1M:x2) "
             "adds the cache at every context.")] = "0",
    plot: Annotated[Path | None, typer.Option(
        "--plot", metavar="FILE", dir_okay=False, rich_help_panel=OUTPUT,
        help="With a range: draw KV bytes and decode time against the context to this PNG "
             "(needs attncli[plot]).")] = None,
    dtype: DtypeArg = None,
    kv_dtype: KvDtypeArg = None,
    mla_form: FormArg = AUTO,
    tp: Annotated[int, typer.Option(
        "--tp", metavar="N", min=1, rich_help_panel=RUN,
        help="Tensor parallelism N: each device's heads, parameters and KV (as vLLM shards them).")] = 1,
    block_size: Annotated[int | None, typer.Option(
        "--block-size", metavar="N", min=1, rich_help_panel=RUN,
        help="Tokens per KV-cache page of a paged engine (default 16; with --engine vllm, vLLM 0.34's 64, a "
             "multiple of 16).")] = None,
    gpu: GpuOption = None,
    weights_memory: Annotated[str | None, typer.Option(
        "--weights-memory", metavar="BYTES", rich_help_panel=RUN,
        help="With --gpu: memory the weights take (16e9, 15GiB, 15G = 15 x 2**30 as --kv-cache-memory), for how "
             "many tokens of KV cache fit beside them (default: model.safetensors.index.json in the config folder).")
    ] = None,
    engine: EngineArg = None,
    kv_cache_memory: Annotated[str | None, typer.Option(
        "--kv-cache-memory", metavar="BYTES", rich_help_panel=ENGINE_PANEL,
        help="KV memory per device, as vLLM's --kv-cache-memory-bytes (40GiB, 40G = 2**30 each, 42.9GB, 4.29e10).")
    ] = None,
    gpu_memory_utilization: Annotated[float | None, typer.Option(
        "--gpu-memory-utilization", metavar="F", rich_help_panel=ENGINE_PANEL,
        help="With --gpu: vLLM's share of its memory, in (0, 1] (default 0.92, vLLM 0.34's).")] = None,
    max_model_len: Annotated[str | None, typer.Option(
        "--max-model-len", metavar="VALUES", rich_help_panel=ENGINE_PANEL,
        help="Tokens per request (default: the config's max_position_embeddings, else the context S); a range "
             "(8k:1M:x2) adds a table.")] = None,
    max_num_batched_tokens: Annotated[int | None, typer.Option(
        "--max-num-batched-tokens", metavar="N", rich_help_panel=ENGINE_PANEL,
        help="Tokens per scheduler step (default 8192, vLLM's for the server on an H100); two steps are in "
             "flight.")] = None,
    kv_cache_dtype: KvCacheDtypeArg = None,
    no_prefix_caching: Annotated[bool, typer.Option(
        "--no-prefix-caching", rich_help_panel=ENGINE_PANEL,
        help="As vLLM's --no-enable-prefix-caching: a Mamba/GDN group takes 1 block per request, not 2 or 3.")
    ] = False,
    mamba_ssm_cache_dtype: MambaDtypeArg = None,
    max_flops: Annotated[str | None, typer.Option(
        "--max-flops", metavar="N", rich_help_panel=CHECKS,
        help="Exit 1 when the model's dense attention MACs exceed N.")] = None,
    max_params: Annotated[str | None, typer.Option(
        "--max-params", metavar="N", rich_help_panel=CHECKS,
        help="Exit 1 when the attention layers hold more than N parameters.")] = None,
    max_kv_bytes: Annotated[str | None, typer.Option(
        "--max-kv-bytes", metavar="N", rich_help_panel=CHECKS,
        help="Exit 1 when the KV cache after the step exceeds N bytes.")] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", rich_help_panel=OUTPUT, help="Add every group's stages and the notes.")] = False,
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
) -> None:
    """Count every attention layer of a model: groups of equal layers, totals, KV cache, time.

    The schedule (full, sliding, chunked layers) comes from the config as transformers reads it;
    each distinct layer is traced once and cross-checked like attncli flops. The KV cache is what
    transformers keeps after the step (sliding layers W - 1 tokens) and what a paged engine
    allocates.
    """
    try:
        check_run_files(output, config=config, plot=plot)
        config, preset = _model_argument(name, config, preset, revision)
        check_run_files(output, config=config, plot=plot)  # NOTE: MODEL's file, or the fetched one
        seqs, caches = _values(seq, "--seq", 1), _values(cache, "--cache", 0)
        if len(seqs) > 1 and len(caches) > 1:
            raise SpecError("--cache", "give a range to --seq or to --cache, not both")
        swept = ("seq", seqs) if len(seqs) > 1 else ("cache", caches) if len(caches) > 1 else None
        flags = EngineFlags(choice_value(engine), kv_cache_memory, gpu_memory_utilization, max_model_len,
                            max_num_batched_tokens, choice_value(kv_cache_dtype), no_prefix_caching,
                            choice_value(mamba_ssm_cache_dtype))
        from attncli.cli.engineflags import check

        lengths = check(flags, block_size)
        if plot is not None and swept is None and not (lengths and len(lengths) > 1):
            raise SpecError("--plot", "draws the cache against the context: give --seq or --cache a range")
        if swept is not None and lengths is not None and len(lengths) > 1:
            raise SpecError("--max-model-len", "give a range to --max-model-len or to --seq/--cache, not both")
        _run(config, preset, seqs[0], batch, caches[0], None if dtype is None else dtype.value,
             None if kv_dtype is None else kv_dtype.value, mla_form.value, tp, block_size, gpu, weights_memory,
             (max_flops, max_params, max_kv_bytes), verbose, fmt.value, output, swept, plot, (flags, lengths),
             tuple(ignore_field or ()))
    except SpecError as exc:
        # NOTE: what the config reader says of --config is said of MODEL when the model came as MODEL
        text = f"MODEL: {exc.message}" if name is not None and exc.flag == "--config" else str(exc)
        fail(text, getattr(exc, "exit_code", 2))


def _model_argument(name: str | None, config: Path | None, preset: str | None,
                    revision: str | None) -> tuple[Path | None, str | None]:
    """(config, preset) from MODEL, ``--config`` and ``--preset``: MODEL is a packaged preset, a local
    config.json or folder, or a Hub model ``org/name`` (fetched into the client's cache here)."""
    from attncli.models.hub import looks_like_hub_id, resolve_config, split_name

    if name is not None and (config is not None or preset is not None):
        raise SpecError("MODEL", f"{name!r}: give the model once, as MODEL, --config or --preset")
    if name is None:
        if revision is not None and config is None:
            raise SpecError("--revision", "is for a Hub model (attncli model org/name --revision REV)")
        return resolve_config(config, revision, with_weights=True), preset
    from attncli.models.modelconfig import model_preset_names

    if name.strip().lower() in model_preset_names() and revision is None:
        return None, name
    if looks_like_hub_id(name):
        return resolve_config(Path(name), revision, "MODEL", with_weights=True), None
    if revision is not None:
        raise SpecError("--revision", "is for a Hub model (org/name)")
    path = Path(name)
    try:
        exists = path.exists()
    except (OSError, ValueError):
        exists = False
    if exists:
        return path, None
    if split_name(name) is None and "/" not in name and not name.endswith(".json"):
        from attncli.names import find_name

        find_name(name, model_preset_names(), "MODEL", "model",
                  "attncli presets, a config.json, or a Hub model org/name")
    raise SpecError("MODEL", f"{name!r}: no such file, preset or Hub model id (org/name)")


def _values(text: str, flag: str, minimum: int) -> list[int]:
    """A value or a range, as ``attncli sweep`` takes them, with k = 1024, M = 1024**2, G = 1024**3 (1k:1M:x2)."""
    from attncli.analyses.sweep import parse_values

    return parse_values(expand_tokens(text, flag), flag, minimum=minimum)


def _run(config: Path | None, preset: str | None, seq: int, batch: int, cache: int, dtype: str | None,
         kv_dtype: str | None, mla_form: str, tp: int, block_size: int | None, gpu: str | None,
         weights_memory: str | None, budgets: tuple[str | None, str | None, str | None], verbose: bool, fmt: str,
         output: Path | None, swept: tuple[str, list[int]] | None, plot: Path | None,
         engine: tuple[EngineFlags, list[int] | None] = (EngineFlags(), None), ignore: tuple[str, ...] = ()) -> None:
    from attncli.analyses.checks import budget, parse_count
    from attncli.cli.layerflags import check_ignored, spec_keywords
    from attncli.models.modelconfig import load_model_preset, read_model

    if (config is None) == (preset is None):
        raise SpecError("--config", "give the model as MODEL (a preset, config.json or Hub org/name), "
                                    "--config CONFIG.JSON or --preset NAME (one of them)")
    limits = [(flag, parse_count(text, flag)) for flag, text in
              zip(("--max-flops", "--max-params", "--max-kv-bytes"), budgets, strict=True) if text is not None]
    from attncli.serving.inputs import parse_bytes

    # NOTE: bytes as --kv-cache-memory reads them (40G and 40GiB are 40 x 2**30, 40GB is 40e9)
    weights = None if weights_memory is None else parse_bytes(weights_memory, "--weights-memory")
    m = read_model(config, ignore) if config is not None else load_model_preset(str(preset), ignore)
    check_ignored(ignore, m.layer.ignored_fields)
    from attncli.models.values import refuse_unknown_mask

    refuse_unknown_mask(m.layer.sources.get("causal", ""), m.layer.family, False)
    values = {**spec_keywords(m.layer), "ignored_fields": m.layer.ignored_fields}
    for name in (*m.layer.attention_fields, *m.layer.linear_fields):
        values.pop(name, None)
    from attncli.analyses.model import model_specs

    base, linear = model_specs(values, m.layer.attention_fields, m.layer.linear_fields,
                               {"batch": batch, "seq": seq, "cache": cache}, mla_form)
    if mla_form != "auto" and not takes(base.kind, "mla_form"):
        raise SpecError("--mla-form", f"{m.name} is not a multi-head latent attention model")
    notes = list(m.notes)
    # NOTE: "layer 0 is described" is what flops --config says; the model counts every layer.
    notes += [f"config.json: {n}" for n in m.layer.note_lines if "is described" not in n]
    past = m.max_positions is not None and base.s > m.max_positions
    if past:
        notes.append(f"context S = {base.s:,} is past max_position_embeddings {m.max_positions:,}")
    chosen_dtype, dtype_source = (dtype, "command line") if dtype is not None else (m.dtype, m.dtype_source)
    weights_bytes, weights_source = ((weights, "--weights-memory") if weights is not None
                                     else (m.weights_bytes, m.weights_source))
    from attncli.render import emit
    from attncli.render.common import status

    import_torch()
    if plot is not None:
        from attncli.cli.sweep import check_plot

        check_plot(plot, output)
    with counting(), status(f"attncli model: counting {m.name}", fmt):
        from dataclasses import replace

        from attncli.analyses.growth import growth
        from attncli.analyses.model import DEFAULT_BLOCK_SIZE, count_model

        report = count_model(m.name, m.source, base, m.schedule, dtype=chosen_dtype, dtype_source=dtype_source,
                             kv_dtype=kv_dtype, block_size=block_size or DEFAULT_BLOCK_SIZE, tp=tp, gpu=gpu,
                             weights_bytes=weights_bytes,
                             weights_source=weights_source, notes=tuple(notes), linear=linear)
        if swept is not None:
            report = replace(report, growth=growth(report, *swept), growth_setting=swept[0])
    if past:  # NOTE: after the count, so a refused size stays the one line on stderr
        print(f"attncli: warning: context S = {base.s:,} is past the model's max_position_embeddings "
              f"({m.max_positions:,}); counted all the same", file=sys.stderr)
    plan = None
    if engine[0].engine is not None:
        from attncli.cli.engineflags import engine_plan
        from attncli.models.kindconfig import ssm_dtype

        where = "text_config." if m.layer.sources.get("dim", "").startswith("config.json:text_config.") else ""
        plan = engine_plan(engine[0], engine[1], report, m.max_positions, block_size,
                           None if report.gpu is None else (report.gpu.memory_bytes, report.gpu.label),
                           ssm_dtype(m.config or {}, m.layer.family, where))
    totals = report.totals()
    checks = []
    for flag, limit in limits:
        key, what = {"--max-flops": ("fvcore_flops", "dense attention MACs of every layer"),
                     "--max-params": ("params", "attention parameters of every layer"),
                     "--max-kv-bytes": ("kv_cache_bytes", "KV cache after the step, as transformers keeps it")}[flag]
        checks.append(budget(flag[2:], int(totals[key]), limit, what))
    doc = {**report.to_json(), "checks": [c.to_json() for c in checks]}
    if plan is not None:
        doc["engine"] = plan.to_json()
    if plot is not None:
        from attncli.cli.sweep import write_plot

        if plan is not None and plan.sweep:
            write_plot(lambda: _engine_view().plot(plan, report.name, plot), plot)
        else:
            write_plot(lambda: _view().plot(report, plot), plot)
    if plan is not None:
        emit(fmt, doc, lambda: _engine_view().table(plan, report.name, verbose),
             lambda: _engine_view().markdown(plan, report.name, verbose), output)
    else:
        emit(fmt, doc, lambda: _view().table(report, verbose), lambda: _view().markdown(report, verbose), output)
    for problem in report.problems:
        print(f"attncli: CROSS-CHECK DISAGREES: {problem}", file=sys.stderr)
    for c in checks:
        if not c.passed:
            print(f"attncli: CHECK FAILED: {c.message}", file=sys.stderr)
    if any(not c.passed for c in checks):
        raise typer.Exit(1)


def _engine_view() -> types.ModuleType:
    """The serving engine's renderer (imports rich)."""
    from attncli.render import engine

    return engine


def _view() -> types.ModuleType:
    """The model renderer, imported when a table, Markdown or a plot is drawn: it imports rich,
    which a ``--format json`` run never needs."""
    from attncli.render import model

    return model
