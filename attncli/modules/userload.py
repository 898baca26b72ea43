"""Load, build and run the attention module a ``--module pkg.mod:factory`` reference names.

The reference names a module and an attribute: a factory function or a class, called as
``factory(dim, heads)``, or a Hugging Face attention class (its constructor takes a model
config), built by :func:`attncli.modules.hf.build_hf_attention` from the layer settings and called the
way its model calls it. A plain module is called as :func:`attncli.modules.calling.plan_call` reads its
``forward``: required positional parameters only (``module(x)`` or ``module(q, k, v)``,
``--call`` overrides), in the layout its ``batch_first`` says.

Everything here runs the user's code, so call it inside :func:`attncli.modules.fence.fenced`; anything
that code raises (``SystemExit`` included) becomes one :class:`~attncli.spec.SpecError` line
here. Modules are built on the meta device (any size, nothing allocated); one that cannot run
there (``.item()``, data-dependent shapes) runs on real CPU tensors when the memory model says
the size fits (:func:`prepare_and_run`). :mod:`attncli.modules.usermodule` shapes and counts what this
module prepares, and re-exports its names. Nothing here imports torch at module level.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any

from attncli.choices import NOT_FOR_MODULES
from attncli.modules.calling import CallPlan, call_args, output_layout, plan_call
from attncli.modules.fence import FLAG, one_line
from attncli.registry import MLA_FIELDS, entry
from attncli.spec import AttnSpec, SpecError

if TYPE_CHECKING:
    from attncli.modules.hfcall import HfLayer

__all__ = ["INSTALL_HINTS", "Prepared", "build_user", "load_factory", "prepare", "prepare_and_run", "refuse_flags",
           "run_user"]


# ---------------------------------------------------------------------------- loading
INSTALL_HINTS: dict[str, str] = {
    "transformers": " (install it: pip install 'attncli[hf]')",
    "timm": " (install it: pip install timm, which needs a torchvision built for your torch)",
}
"""What to install when a --module reference needs a package that is missing."""


def is_file_reference(mod_name: str) -> bool:
    """Whether the part before ``:`` names a file (``./attn.py``, ``path/to/attn.py``) rather than a module."""
    return mod_name.endswith(".py") or "/" in mod_name or os.sep in mod_name


def _import_file(mod_name: str) -> ModuleType:
    """Load ``path/to/file.py`` by its path (importlib's ``spec_from_file_location``).

    Its directory is appended to ``sys.path`` while it loads (so it can import its neighbours,
    never ahead of installed packages), and it is registered in ``sys.modules`` under a name of
    its own (``attncli_module_<stem>_<hash of the path>``), so it shadows no module.
    """
    import hashlib
    import importlib.util

    path = Path(mod_name).expanduser()
    if path.suffix != ".py":
        raise SpecError(FLAG, f"{mod_name!r} looks like a path: name a Python file, PATH/TO/FILE.py:FACTORY, "
                              "or a module on sys.path, PKG.MOD:FACTORY")
    if not path.is_file():
        raise SpecError(FLAG, f"no file {mod_name!r} (from {os.getcwd()}): write PATH/TO/FILE.py:FACTORY with "
                              "the path of an existing Python file, or PKG.MOD:FACTORY")
    path = path.resolve()
    name = f"attncli_module_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SpecError(FLAG, f"cannot load {mod_name!r} as a Python file: write PATH/TO/FILE.py:FACTORY")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.append(folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def load_factory(ref: str) -> Callable[..., Any]:
    """Import ``pkg.mod:attr`` (the current directory appended to sys.path), or load
    ``path/to/file.py:attr`` by its path, and return ``attr``.

    Call it inside :func:`~attncli.modules.fence.fenced`: importing runs the user's module.
    """
    mod_name, sep, attr = ref.rpartition(":")
    if not sep or not mod_name or not attr:
        raise SpecError(FLAG, f"expected MODULE:FACTORY (e.g. mypkg.attn:build or ./attn.py:build), got {ref!r}")
    from_file = is_file_reference(mod_name)
    cwd = os.getcwd()
    added = not from_file and "" not in sys.path and cwd not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        module = _import_file(mod_name) if from_file else importlib.import_module(mod_name)
    except SpecError:
        raise
    except (Exception, SystemExit) as exc:  # NOTE: user code can raise anything on import
        missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
        hint = INSTALL_HINTS.get((missing or "").partition(".")[0], "")
        if not hint and not from_file and isinstance(exc, TypeError | ValueError) and mod_name.startswith("."):
            hint = " (a relative module name: write PKG.MOD:FACTORY, or PATH/TO/FILE.py:FACTORY for a file)"
        raise SpecError(FLAG, f"cannot import {mod_name!r}: {type(exc).__name__}: {one_line(exc)}{hint}") from exc
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SpecError(FLAG, f"{mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError(FLAG, f"{ref!r} is not a class or function")
    return obj


def build_user(ref: str, spec: AttnSpec, device: str = "meta", factory: Any = None) -> Any:
    """``factory(spec.dim, spec.heads)`` built on ``device``, in eval mode."""
    import torch

    factory = load_factory(ref) if factory is None else factory
    try:
        with torch.device(device):
            module = factory(spec.dim, spec.heads)
    except (Exception, SystemExit) as exc:  # NOTE: user code can raise anything
        raise SpecError(FLAG, f"{ref}({spec.dim}, {spec.heads}) failed: {type(exc).__name__}: "
                              f"{one_line(exc)}") from exc
    if not isinstance(module, torch.nn.Module):
        raise SpecError(FLAG, f"{ref}({spec.dim}, {spec.heads}) returned {type(module).__name__}, "
                              "not a torch.nn.Module")
    return module.eval()


def run_user(module: Any, args: tuple[Any, ...], ref: str, kwargs: dict[str, Any] | None = None) -> Any:
    """One forward pass; the output tensor (the first item of a tuple)."""
    import torch

    try:
        with torch.no_grad():
            out = module(*args, **(kwargs or {}))
    except (Exception, SystemExit) as exc:  # NOTE: user code can raise anything
        shapes = ", ".join(str(tuple(a.shape)) for a in args)
        raise SpecError(FLAG, f"{ref} cannot run on inputs {shapes}: {type(exc).__name__}: "
                              f"{one_line(exc)}") from exc
    if out is None or (isinstance(out, tuple | list) and not out):
        raise SpecError(FLAG, f"{ref} returned {out!r}, no tensor: attncli needs the attention output")
    if isinstance(out, tuple | list):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise SpecError(FLAG, f"{ref} returned {type(out).__name__}, not a tensor")
    return out


# ---------------------------------------------------------------------------- preparing
@dataclass(frozen=True)
class Prepared:
    """A user's layer ready to run: the module to call, its inputs, and what it really is.

    ``spec`` is the layer as built (a Hugging Face class's sizes, mask and window), used for
    the closed form, the effective count and memory; ``plan`` says how a plain module is called
    (``None`` for a Hugging Face class, which is called as its model calls it).
    """

    module: Any
    args: tuple[Any, ...]
    spec: AttnSpec
    plan: CallPlan | None
    hf: HfLayer | None
    device: str
    notes: tuple[str, ...] = ()


def refuse_flags(ref: str, typed: set[str] | frozenset[str], spec: AttnSpec | None = None) -> None:
    """Exit 2 for typed flags a module cannot take (they would be recorded in config and ignored)."""
    for name, flag in NOT_FOR_MODULES.items():
        if name in typed and name != "mask":  # NOTE: --mask states a module's mask: prepare_and_run reads it
            if "/" in flag:  # an on/off pair: name the one typed
                on, off = flag.split("/")
                flag = on if spec is None or getattr(spec, name) else off
            raise SpecError(flag, f"does not apply to --module {ref} (the module builds its own layer)")


def _hf_settings(spec: AttnSpec, typed: set[str] | frozenset[str]) -> SimpleNamespace:
    """The settings handed to a Hugging Face class; the bias only when the user or a config chose it."""
    sources = dict(spec.sources)
    bias_chosen = "bias" in typed or sources.get("bias", "default") != "default"
    mla = {f: getattr(spec, f) for f in MLA_FIELDS}  # NOTE: None but on an MLA layer (a kind's own settings)
    return SimpleNamespace(dim=spec.dim, heads=spec.heads, kv_heads=spec.n_kv_heads,
                           head_dim=spec.head_dim if spec.runs_on_impls else None, d_head=spec.d_head,
                           window=spec.window, bias=spec.bias if bias_chosen else None, cache=spec.cache,
                           mla_form=spec.mla_form, model_config=spec.model_config, layer=spec.layer, **mla)


def _refuse_kind(ref: str, spec: AttnSpec) -> None:
    """Exit 2 for a kind of layer a Hugging Face class is not built as here: standard attention and
    multi-head latent attention from flags; from a model's config also its gated full attention."""
    from attncli.registry import kind_of

    how = kind_of(spec).HF_CLASS
    if how == "built" or (how == "config" and spec.model_config is not None):
        return
    if spec.model_config is not None and how in ("counted", "own"):
        from attncli.registry import title

        where = f"layer {spec.layer or 0} of the model"
        flag = "--layer" if how == "counted" else "--module"
        raise SpecError(flag, f"{where} is {title(spec.kind)}: attncli counts it with its own layer of that kind "
                              f"(checked against transformers' class in its tests); drop --module {ref}")
    from attncli.registry import KIND_FIELDS, title

    flag = next(("--" + f.replace("_", "-") for f, (kinds, unset) in KIND_FIELDS.items()
                 if spec.kind in kinds and getattr(spec, f) not in unset), "--module")
    raise SpecError(flag, f"{ref}: a Hugging Face class is built here as standard attention or multi-head latent "
                          f"attention, not as {title(spec.kind)}")


def _built_spec(spec: AttnSpec, layer: HfLayer) -> AttnSpec:
    """The layer as the class built it: its sizes, mask and window, and its kind (MLA from the config's sizes)."""
    s = layer.sizes
    common: dict[str, Any] = {"dim": s.dim, "heads": s.heads, "mask": "causal" if s.causal else "none",
                              "kv_seq": None, "kdim": None, "vdim": None}
    where: dict[str, Any] = {"layer": layer.layer_idx, "layer_type": layer.layer_type} if spec.layer is not None else {}
    bias = spec.bias if s.bias is None else s.bias
    if s.mla is None:
        built = replace(spec, kv_heads=s.kv_heads, d_head=s.head_dim, window=s.window, chunk=s.chunk, bias=bias,
                        attn_output_gate=bool(s.gated), **where, **common)
    else:  # NOTE: transformers' DeepseekV3Attention expands every latent through kv_b_proj: the naive form.
        latent: dict[str, Any] = dict(s.mla)
        built = replace(spec, kv_heads=None, d_head=None, window=None, chunk=None, mla_form="naive", bias=bias,
                        **latent, **where, **common)
    return built.with_(impl=entry(built.kind).impl or "split")  # NOTE: a kind's own layer, else the split one


def prepare(ref: str, spec: AttnSpec, device: str, call: str | None = None,
            typed: set[str] | frozenset[str] = frozenset(), factory: Any = None) -> Prepared:
    """Import and build ``ref`` on ``device`` and make its inputs (inside :func:`~attncli.modules.fence.fenced`)."""
    from attncli.layer.modules import make_inputs
    from attncli.modules import hf

    refuse_flags(ref, typed, spec)
    factory = load_factory(ref) if factory is None else factory
    if hf.is_hf_attention(factory):
        if call is not None:
            raise SpecError("--call", f"{ref} is a Hugging Face class: attncli calls it as its model does")
        if not spec.is_self_attention:
            raise SpecError("--kv-seq" if spec.s != spec.seq else "--kdim",
                            f"{ref} is called as its model calls it, on one hidden-state tensor (self-attention)")
        _refuse_kind(ref, spec)
        layer = hf.build_hf_attention(factory, _hf_settings(spec, typed), device)
        if "mask" in typed:
            raise SpecError("--mask", f"{ref} applies the mask its model makes for this layer "
                                      f"({layer.mask_fn.__name__}): drop --mask")
        built = _built_spec(spec, layer)
        if built.runs_on_impls:
            x = make_inputs(built.with_(mask="none"), device).query
        else:
            x = layer.call_args(built.batch, built.seq, device, seed=built.seed)[0][0]
        return Prepared(layer.wrapper(), (x,), built, None, layer, device, layer.notes)
    if "bias" in typed:
        flag = "--bias" if spec.bias else "--no-bias"
        raise SpecError(flag, f"{ref} is built as FACTORY(dim, heads), which cannot take {flag} "
                              "(a Hugging Face class can: its config gets attention_bias)")
    for flag, used in (("--kv-heads", spec.n_kv_heads != spec.heads),
                       ("--head-dim", spec.d_head is not None and spec.d_head * spec.heads != spec.dim),
                       ("--window", spec.window is not None)):
        if used:
            key = {"--kv-heads": "kv_heads", "--head-dim": "head_dim", "--window": "window"}[flag]
            origin = dict(spec.sources).get(key)
            why = f" ({key} {spec.to_dict()[key]} from {origin})" if origin and origin != "command line" else ""
            raise SpecError(flag, f"{ref} is built as FACTORY(dim, heads), which cannot take {flag}{why}")
    module = build_user(ref, spec, device, factory)
    plan = plan_call(module, call, spec.batch_first)
    if plan.style == "x" and not spec.is_self_attention:
        flag = "--kv-seq" if spec.s != spec.seq else ("--kdim" if spec.k_dim != spec.dim else "--vdim")
        raise SpecError(flag, f"{ref} is called as module(x) ({plan.reason}): one input, self-attention; "
                              "pass --call qkv to feed separate query, key and value")
    inputs = make_inputs(spec.with_(mask="none", impl="split"), device)
    args = call_args(plan, inputs.query, inputs.key, inputs.value)
    built = spec.with_(mask="none", impl="split")
    return Prepared(module, args, built, plan, None, device, plan.notes)


def _run(p: Prepared, ref: str, stated: str | None = None) -> tuple[Prepared, Any]:
    """Run once; a plain module's own mask is read from its SDPA calls (:mod:`attncli.modules.sdpamask`)."""
    from dataclasses import replace

    from attncli.modules.sdpamask import read_mask, watching_sdpa

    if p.hf is not None:
        return p, run_user(p.module, p.args, ref)
    with watching_sdpa() as calls:
        out = run_user(p.module, p.args, ref)
    mask, line = read_mask(ref, calls, stated)
    p = replace(p, spec=p.spec.with_(mask=mask), notes=(*p.notes, line))
    return p, output_layout(p.plan, out) if p.plan is not None else None


def prepare_and_run(ref: str, spec: AttnSpec, call: str | None, typed: set[str] | frozenset[str],
                    dtype: str = "float32") -> tuple[Prepared, Any]:
    """Build on meta and run; when meta cannot run the module, on real CPU tensors if they fit."""
    factory = load_factory(ref)
    stated = spec.mask if "mask" in typed else None
    p = prepare(ref, spec, "meta", call, typed, factory)
    try:
        return _run(p, ref, stated)
    except SpecError as exc:
        if exc.flag == "--mask":
            raise
        meta_error = exc.message
    from attncli.analyses.bench import available_memory, check_fits

    available, source = available_memory("cpu")
    try:
        check_fits(p.spec, dtype, "cpu", available, source)
    except SpecError as refusal:
        raise SpecError(FLAG, f"{meta_error}; on real tensors instead: {refusal.message}") from None
    p = prepare(ref, spec, "cpu", call, typed, factory)
    p, out = _run(p, ref, stated)
    note = (f"the meta device could not run {ref} ({meta_error}); it was built and run on real CPU tensors "
            "(the memory model said they fit)")
    return Prepared(p.module, p.args, p.spec, p.plan, p.hf, "cpu", (*p.notes, note)), out
