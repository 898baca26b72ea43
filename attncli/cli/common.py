"""What every command shares: the spec options, ``--format``/``--output``, and error handling.

:func:`spec_command` adds the options of :class:`attncli.spec.AttnSpec` to a command's
signature (with per-command defaults), builds and validates the spec, and turns a
:class:`~attncli.spec.SpecError` into a one-line message and exit code 2. Nothing here
imports torch, fvcore or rich, so ``attncli --help`` stays fast.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from attncli.choices import (
    DTYPE_BYTES,
    FORMATS,
    IMPLS,
    MASKS,
    MLA_FORMS,
    MODERN_IMPLS,
    SELF_ATTENTION_ONLY,
    SETTING_FLAGS,
    SWEEPABLE,
)
from attncli.cli.helptext import complete_gpus
from attncli.cli.inputs import TOKEN_FLAGS, dtype_parser, expand_tokens, token_parser
from attncli.cli.layerflags import (
    ConfigOption,
    IgnoreFieldOption,
    LayerOption,
    PresetOption,
    explicit_names,
    layer_values,
)
from attncli.cli.runtime import import_torch
from attncli.io.interrupts import INTERRUPTED, InterruptReported
from attncli.io.paths import check_run_files
from attncli.registry import STANDARD, entry, title
from attncli.spec import AttnSpec, SpecError


def _enum(name: str, choices: Iterable[str]) -> Any:
    """A ``str`` Enum of ``choices`` for typer (member names are the choices, ``-`` -> ``_``)."""
    return Enum(name, {c.replace("-", "_"): c for c in choices}, type=str)


Format = _enum("Format", FORMATS)
Impl = _enum("Impl", IMPLS)
Dtype = _enum("Dtype", DTYPE_BYTES)
Mask = _enum("Mask", MASKS)
MlaForm = _enum("MlaForm", MLA_FORMS)

# NOTE: the enums are built from attncli.choices at run time, which mypy cannot follow; to it
# the option is Any (typer reads the real Enum from the annotation).
if TYPE_CHECKING:
    DtypeOption = Any
else:
    DtypeOption = Annotated[Dtype, typer.Option(
        "--dtype", metavar="DTYPE", rich_help_panel="Run", parser=dtype_parser(Dtype),
        help="Element type for the memory estimate: float32, tf32, bfloat16, float16 or float8 (or fp32, bf16, "
             "fp16, fp8; counts do not depend on it).")]


GpuOption = Annotated[str | None, typer.Option(
    "--gpu", metavar="NAME", rich_help_panel="Run", autocompletion=complete_gpus,
    help="Add a roofline estimate on this accelerator (an upper bound on speed; names: attncli gpus).")]



def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``attncli: error: message`` on one line to stderr and exit.

    Line breaks inside the message (a path with a newline, a multi-line exception text) are
    escaped as ``\\n`` so the message stays one line.
    """
    print("attncli: error: " + one_line(message), file=sys.stderr)
    if code == INTERRUPTED:
        raise InterruptReported  # NOTE: not typer.Exit(130), which is also how typer says Ctrl-C
    raise typer.Exit(code)


def one_line(text: str) -> str:
    """``text`` with line separators and other control characters (an ESC that would colour the
    terminal, a CR that would overwrite the line) escaped: one plain line of stderr."""
    return "".join(repr(c)[1:-1] if c in "\x85\u2028\u2029" or (c < " " and c != "\t") or c == "\x7f" else c
                   for c in text)


RANGES: dict[str, str] = {
    "dim": "(256,512,1024) or a range (128:8192:x2, 256:2048:+256)",
    "heads": "(4,8,16) or a range (1:64:x2)",
    "batch": "(1,8,32) or a range (1:256:x2)",
    "seq": "(128,256) or a range (128:8192:x2, 128:1024:+128)",
    "kv_heads": "(1,2,8) or a range (1:8:x2)",
    "d_head": "(64,128) or a range (32:256:x2)",
    "window": "(512,4096) or a range (256:8192:x2)",
    "cache": "(0,4096) or a range (1024:131072:x2)",
}
"""Per sweepable setting, the examples of its help's list and range (each a valid sweep of it)."""

LAYER, MHA, MLA, CONFIG, MODULE, RUN, CHECKS, OUTPUT = ("Layer", "MHA module", "MLA", "Model / config", "Module",
                                                        "Run", "Checks (CI)", "Output")
ENGINE = "Serving engine"
"""The option panels of the commands (attncli.cli.helptext.PANELS orders them)."""


def _spec_parameters(d: dict[str, Any], sweep: bool = False) -> list[inspect.Parameter]:
    """The spec options as keyword-only parameters with ``Annotated`` typer options.

    With ``sweep``, --dim, --heads, --batch and --seq (and the other sweepable settings) take a
    value or a range (strings).
    """
    rows: list[tuple[str, Any, Any, tuple[str, ...], str, str, str | None]] = [
        ("dim", int, d["dim"], ("--dim",), "Embedding size E (embed_dim).", LAYER, "N"),
        ("heads", int, d["heads"], ("--heads",), "Number of heads H (num_heads); must divide --dim.", LAYER, "N"),
        ("seq", int, d["seq"], ("--seq",), "Query length L.", LAYER, "N"),
        ("batch", int | None, None, ("--batch",), f"Batch size B (default: {d['batch']}; 1 with --unbatched).",
         LAYER, "N"),
        ("kv_heads", int | None, None, ("--kv-heads",),
         "Key/value heads G (default: --heads; 1 = multi-query); must divide --heads.", LAYER, "N"),
        ("d_head", int | None, None, ("--head-dim",),
         "Size d of one head (default: --dim / --heads); H*d need not equal --dim.", LAYER, "N"),
        ("mask", Mask, Mask(d.get("mask", "none")), ("--mask",),
         "none, causal (L x S, bottom-right: query i sees keys up to S-L+i) or padding (the last S/4 keys).",
         LAYER, "MASK"),
        ("window", int | None, None, ("--window",),
         "Causal sliding window W: a query sees itself and the W-1 keys before it.", LAYER, "N"),
        ("chunk", int | None, None, ("--chunk",),
         "Chunked attention C (Llama 4): a query at p sees keys floor(p/C)*C..p, its own chunk up to itself.",
         LAYER, "N"),
        ("cache", int, 0, ("--cache",),
         "N past tokens in the KV cache: the --seq tokens are new and attend to N + L keys.", LAYER, "N"),
        ("kv_seq", int | None, None, ("--kv-seq",), "Key/value length S (default: --seq).", LAYER, "N"),
        ("kdim", int | None, None, ("--kdim",), "Key feature size (default: --dim).", LAYER, "N"),
        ("vdim", int | None, None, ("--vdim",), "Value feature size (default: --dim).", LAYER, "N"),
        ("bias", bool, True, ("--bias/--no-bias",), "Biases in the input and output projections.", LAYER, None),
        ("impl", Impl | None, None, ("--impl",),
         "Implementation: " + ", ".join(IMPLS) + f" (default: {d['impl']}; split when it cannot run the layer).",
         LAYER, "IMPL"),
        ("add_bias_kv", bool, False, ("--add-bias-kv",), "Append a learned bias key and value (S+1).", MHA, None),
        ("add_zero_attn", bool, False, ("--add-zero-attn",), "Append a zero key and value (S+1 more).", MHA, None),
        ("dropout", float, 0.0, ("--dropout",), "Dropout on the attention weights (training only).", MHA, "P"),
        ("batch_first", bool, True, ("--batch-first/--no-batch-first",),
         "Input layout (B, L, E); --no-batch-first gives (L, B, E), MHA's default.", MHA, None),
        ("unbatched", bool, False, ("--unbatched",), "Unbatched input (L, E).", MHA, None),
        ("need_weights", bool, True, ("--need-weights/--no-need-weights",),
         "Return attention weights (off: MHA takes its fused SDPA path).", MHA, None),
        ("average_weights", bool, True, ("--average-weights/--per-head-weights",),
         "Average the returned weights over heads, or return them per head.", MHA, None),
        ("kv_lora_rank", int | None, None, ("--kv-lora-rank",),
         "Width R of the compressed K/V latent; selects multi-head latent attention (DeepSeek-V3: 512).",
         MLA, "N"),
        ("q_lora_rank", int | None, None, ("--q-lora-rank",),
         "Query LoRA rank RQ (default or 0: a direct q_proj, as DeepSeek-V2-Lite).", MLA, "N"),
        ("qk_nope_head_dim", int | None, None, ("--qk-nope-head-dim",),
         "Query/key head part without RoPE, DN (default 128).", MLA, "N"),
        ("qk_rope_head_dim", int | None, None, ("--qk-rope-head-dim",),
         "RoPE part DR of a query/key head, one key shared by all heads (default 64).", MLA, "N"),
        ("v_head_dim", int | None, None, ("--v-head-dim",), "Value head size DV (default 128).", MLA, "N"),
        ("mla_form", MlaForm, MlaForm("auto"), ("--mla-form",),
         "naive (expand K/V from the latent), absorbed (attend over the latent) or auto "
         "(absorbed for a decode step --seq 1 --cache N, else naive).", MLA, "FORM"),
        ("seed", int, 0, ("--seed",), "Random seed for weights and inputs.", RUN, "N"),
    ]
    params = [inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigOption),
              inspect.Parameter("preset", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=PresetOption),
              inspect.Parameter("layer", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=LayerOption),
              inspect.Parameter("ignore_field", inspect.Parameter.KEYWORD_ONLY, default=None,
                                annotation=IgnoreFieldOption)]
    for name, typ, default, decls, help_, panel, metavar in rows:
        if sweep and name in SWEEPABLE:
            # NOTE: a help that names its default already (--batch, --kv-heads, ...) keeps it once.
            said = "(default" in help_ or name not in d
            typ, default, metavar = str | None, None, "VALUES"
            help_ = (help_ if said else help_.rstrip(".") + f" (default: {d[name]}).") + \
                f" A value, a list {RANGES[name]}."
        parse = token_parser(decls[0]) if name in TOKEN_FLAGS and typ != str | None else None
        params.append(inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=default,
            annotation=Annotated[typ, typer.Option(*decls, help=help_, rich_help_panel=panel, metavar=metavar,
                                                   parser=parse)]))
    return params


SPEC_FIELDS = ("dim", "heads", "batch", "seq", "kv_seq", "kdim", "vdim", "bias", "add_bias_kv",
               "add_zero_attn", "dropout", "batch_first", "unbatched", "need_weights",
               "average_weights", "mask", "kv_heads", "d_head", "window", "chunk", "cache", "kv_lora_rank",
               "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "mla_form", "impl", "seed")

FORMAT_PARAMS = [
    inspect.Parameter("format", inspect.Parameter.KEYWORD_ONLY, default=Format.table,
                      annotation=Annotated[Format, typer.Option(
                          "--format", "-f", metavar="FORMAT", rich_help_panel=OUTPUT,
                          help="table (for people), json (for scripts) or markdown.")]),
    inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=Annotated[Path | None, typer.Option(
                          "--output", "-o", metavar="FILE", rich_help_panel=OUTPUT,
                          help="Write the report to this file instead of stdout.", dir_okay=False)]),
]


# NOTE: ``--format/-f`` and ``--output/-o`` for a command without the layer flags (``attncli model``);
# to mypy they are Any, as the enums built at run time are.
if TYPE_CHECKING:
    FormatOption = Any
    OutputOption = Any
else:
    FormatOption = FORMAT_PARAMS[0].annotation
    OutputOption = FORMAT_PARAMS[1].annotation


def spec_from(values: dict[str, Any], *, default_batch: int, default_impl: str = "torch") -> AttnSpec:
    """Build and validate the spec from option values (enums to their strings).

    Without ``--impl`` the command's default implementation is used, unless it cannot run the
    layer (MHA and grouped-query heads, a head size, a window or a cache; fused and
    cross-attention): then ``split``, which runs every layer (the help says so, and the
    document's ``config.impl`` names the implementation that ran).
    """
    kw = {k: (v.value if isinstance(v, Enum) else v) for k, v in values.items()}
    if kw["batch"] is None:
        kw["batch"] = 1 if kw["unbatched"] else default_batch
    kind = AttnSpec(**{**kw, "impl": "split"}).kind  # NOTE: the kind follows from the settings alone
    own = entry(kind).impl
    if own is not None:
        if kw.get("impl") is not None:
            raise SpecError("--impl", f"{title(kind)} runs attncli's own layer of that kind; drop --impl")
        return AttnSpec(**{**kw, "impl": own}).validate()
    if kw.get("impl") is not None:
        return AttnSpec(**kw).validate()
    spec = AttnSpec(**{**kw, "impl": "split"}).validate()
    chosen = default_impl
    if default_impl not in MODERN_IMPLS and spec.is_modern:
        chosen = "split"
    if default_impl in SELF_ATTENTION_ONLY and not spec.is_self_attention:
        chosen = "split"
    if spec.own_geometry and chosen not in ("split", "sdpa"):
        chosen = "split"  # NOTE: a value head of its own size, K = V or a shared cache: split and sdpa run them
    return spec.with_(impl=chosen)


SWEEP_DEFAULTS: dict[str, int | None] = {"kv_heads": None, "d_head": None, "window": None, "cache": 0}
"""The defaults of the sweepable settings that every command shares (the others are per command)."""


def split_sweep(values: dict[str, Any], d: dict[str, Any],
                none_typed: bool | None = None) -> tuple[str | None, list[int]]:
    """Parse the sweepable options in place (first value each); return the ranged one.

    At most one setting may take several values; SpecError names the second. Options not
    given take their default from ``d``; with none given (``none_typed``: none typed, when a
    config or preset filled some), ``d["sweep_default"]`` is swept.
    """
    from attncli.analyses.sweep import parse_values

    swept: tuple[str | None, list[int]] = (None, [])
    if none_typed is None:
        none_typed = all(values[name] is None for name in SWEEPABLE)
    if none_typed and "sweep_default" in d and values[d["sweep_default"][0]] is None:
        name, text = d["sweep_default"]
        values[name] = text
    for name in SWEEPABLE:
        if values[name] is None:
            if name != "batch":  # batch keeps None: it depends on --unbatched
                values[name] = d.get(name, SWEEP_DEFAULTS.get(name))
            continue
        flag = SETTING_FLAGS[name]
        text = expand_tokens(str(values[name]), flag) if name in TOKEN_FLAGS else str(values[name])
        parsed = parse_values(text, flag, minimum=0 if name == "cache" else 1)
        if len(parsed) > 1:
            if swept[0] is not None:
                raise SpecError(flag, f"sweep one setting at a time ({SETTING_FLAGS[swept[0]]} is already a range)")
            swept = (name, parsed)
        values[name] = parsed[0]
    return swept


def provenance(spec: AttnSpec, layer_sources: dict[str, str], typed: set[str]) -> dict[str, str]:
    """Where every setting of ``spec.to_dict()`` came from: the config or preset (``layer_sources``),
    ``command line`` (``typed``) or ``default``."""
    keyword = {"head_dim": "d_head"}
    out = {}
    selected = entry(spec.kind).selected_when
    derived = {"kind": f"derived: {', '.join(selected)}" if selected else "default",
               "form": "derived: --mla-form auto, --seq and --cache"}
    for key in spec.to_dict():
        if key in ("sources", "notes"):
            continue
        if key in derived and not (key == "form" and spec.mla_form != "auto"):
            out[key] = derived[key]
            continue
        name = keyword.get(key, key)
        out[key] = "command line" if name in typed else layer_sources.get(key, "default")
    return out


def _with_origin(exc: SpecError, layer_sources: dict[str, str], typed: set[str],
                 values: dict[str, Any]) -> SpecError:
    """``exc`` saying where its flag's value came from when --config or --preset set it, not the
    user: ``--kv-heads 8 must divide --heads 30`` after ``--preset llama-3-8b --heads 30``."""
    field = {flag: name for name, flag in SETTING_FLAGS.items()}.get(exc.flag)
    key = {"d_head": "head_dim"}.get(field or "", field or "")
    origin = layer_sources.get(key)
    if field is None or field in typed or origin is None or origin == "command line":
        return exc
    told = ", ".join(SETTING_FLAGS.get(n, "--" + n.replace("_", "-")) for n in sorted(typed) if n in SETTING_FLAGS)
    also = f"; you typed {told}" if told else ""
    return SpecError(exc.flag, f"{exc.message} ({exc.flag} {values.get(field)} comes from {origin}{also}: "
                               f"pass {exc.flag} too, or change what you typed)")


KIND_COMMANDS = "flops, shapes, sweep, report, bench and model"
"""The commands that take every kind (``spec_command(kinds=ALL_KINDS)``), for the refusal of the others."""


MODEL_DTYPE_COMMANDS = frozenset({"flops", "report", "sweep"})
"""The commands whose ``--dtype`` defaults to the dtype a ``--config``/``--preset`` model is published in
(its memory and roofline are the model's); bench and permute-test run real tensors in what they are told."""


def _model_dtype(command: str, kwargs: dict[str, Any], config: Path | None, preset: str | None,
                 ignore: tuple[str, ...]) -> list[str]:
    """Set ``kwargs["dtype"]`` to the model's own dtype when the user typed no ``--dtype``; the note that says so."""
    from attncli.models.modellayer import model_dtype

    if command not in MODEL_DTYPE_COMMANDS or "dtype" not in kwargs or explicit_names(["dtype"]):
        return []
    found = model_dtype(config, preset, ignore)
    if found is None:
        return []
    kwargs["dtype"] = Dtype(found[0])
    return [f"dtype {found[0]}: the model's, from {found[1]} (--dtype overrides)"]


def spec_command(sweep: bool = False, kinds: tuple[str, ...] = (STANDARD,),
                 **defaults: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the spec options (with these defaults) plus --format/--output.

    The wrapped function receives ``spec`` (validated), ``fmt`` (a str) and ``output``
    alongside its own parameters. A layer of a kind not in ``kinds`` (:mod:`attncli.kinds`) is
    refused, naming the flag or config that selected it. A :class:`SpecError` from anywhere in the command exits 2
    with a one-line message naming the flag. With ``sweep``, --dim/--heads/--batch/--seq take
    ranges and the function also receives ``swept=(setting | None, values)``.
    """
    d = {"dim": 512, "heads": 8, "batch": 1, "seq": 10, "impl": "torch", **defaults}

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values()
               if p.name not in ("spec", "fmt", "output", "swept")]
        # NOTE: the layer flags first, so each help panel starts with them (Layer: --dim --heads --seq --batch).
        params = _spec_parameters(d, sweep) + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        params += FORMAT_PARAMS

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            values = {k: kwargs.pop(k) for k in SPEC_FIELDS}
            config, preset, layer = kwargs.pop("config"), kwargs.pop("preset"), kwargs.pop("layer")
            ignore = tuple(kwargs.pop("ignore_field") or ())
            fmt = kwargs.pop("format").value
            output = kwargs.pop("output")
            try:
                check_run_files(output, config=config, baseline=kwargs.get("baseline"), plot=kwargs.get("plot"),
                                module=kwargs.get("module"))
                from attncli.models.hub import resolve_config, snapshot_of

                config = resolve_config(config)
                typed = explicit_names(SPEC_FIELDS)
                none_typed = all(values[name] is None for name in SWEEPABLE)
                snap = None if config is None else snapshot_of(config)
                config_notes: list[str] = [] if snap is None else [f"config.json read from {snap.origin}"]
                values, layer_sources = layer_values(values, config, preset, typed, config_notes, layer, ignore)
                if sweep:
                    kwargs["swept"] = split_sweep(values, d, none_typed)
                try:
                    spec = spec_from(values, default_batch=d["batch"], default_impl=d["impl"])
                except SpecError as exc:
                    raise _with_origin(exc, layer_sources, typed, values) from None
                if spec.kind not in kinds:
                    flag = entry(spec.kind).selected_by
                    selected = entry(spec.kind).selected_when
                    origin = layer_sources.get(selected[0]) if selected else None
                    said = f" ({origin})" if origin and flag[2:].replace("-", "_") not in typed else ""
                    raise SpecError(flag, f"attncli {fn.__name__.replace('_', '-')} does not take a "
                                          f"{spec.kind.upper()} layer{said} yet ({KIND_COMMANDS} take it)")
                if config is not None or preset is not None:
                    config_notes += _model_dtype(fn.__name__, kwargs, config, preset, ignore)
                    spec = spec.with_(sources=tuple(provenance(spec, layer_sources, typed).items()),
                                      notes=tuple(config_notes))
                import_torch()  # NOTE: see there: the collector paused, a Ctrl-C deferred (inside the import it aborts)
                return fn(spec=spec, fmt=fmt, output=output, **kwargs)
            except SpecError as exc:
                fail(str(exc), getattr(exc, "exit_code", 2))

        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return wrapper

    return deco
