"""What the kinds of two forms answer alike (no torch): MLA's naive and absorbed, the linear kinds' recurrent
and chunked. Which setting picks a kind's form, and which form a decode step runs, are the registry's
(:attr:`attncli.registry.KindEntry.form`); each kind keeps its own words (its labels, its sizes, what its
forms cost) and passes them in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.numbers import human
from attncli.registry import entry

if TYPE_CHECKING:
    from attncli.kinds.base import Counted
    from attncli.spec import AttnSpec


def _forms(spec: AttnSpec) -> tuple[str, str, str]:
    """(the setting that picks the form, the decode step's form, the form otherwise) of ``spec``'s kind."""
    forms = entry(spec.kind).form
    if forms is None:
        raise ValueError(f"a layer of kind {spec.kind!r} has one form")
    return forms


def variant_specs(spec: AttnSpec) -> list[AttnSpec]:
    """The layer in the form it runs (its form setting's ``auto`` resolved), then in the other form."""
    setting, decode, otherwise = _forms(spec)
    run = spec.with_(**{setting: spec.form})
    return [run, run.with_(**{setting: decode if run.form == otherwise else otherwise})]


def form_title(spec: AttnSpec, chunk: int | None = None) -> str:
    """The form as a title names it: ``chunked form C=64 (auto)`` (``chunk``: the chunk C, named when the
    layer runs chunked; ``(auto)`` when its form setting left the form to the step)."""
    setting = _forms(spec)[0]
    c = f" C={chunk}" if chunk is not None and spec.form == "chunked" else ""
    return f"{spec.form} form{c}" + (" (auto)" if getattr(spec, setting) == "auto" else "")


def short_label(spec: AttnSpec) -> str:
    """A variant's name in narrow tables: its form, and whether it goes without W_O."""
    return f"{spec.form} form" + ("" if spec.out_proj else ", no W_O")


def other_form_note(forms: str) -> str:
    """The sentence under the variants table, ``forms`` saying what each of the kind's forms does."""
    return f"below it the same layer in the other form ({forms})"


def form_sentence(report: Counted, asked: str, held: str) -> str:
    """The conclusion's first sentence: which form runs and why (``asked``: the words when the form setting
    chose it; ``held``: what a decode step has from the tokens before, ``state`` or ``cache``), and what the
    other form would cost."""
    run, other = report.variants[0], report.variants[1]
    setting, decode, _ = _forms(report.spec)
    ratio = other.fvcore_flops / run.fvcore_flops if run.fvcore_flops else 0.0
    if getattr(report.spec, setting) != "auto":
        why = asked
    elif run.form == decode:
        why = f"auto: a decode step, L = 1 with a {held}"
    else:
        why = "auto: not a decode step"
    return (f"The {run.form} form runs ({why}); the {other.form} form would cost {human(other.fvcore_flops)} "
            f"MACs ({ratio:.3g}x).")
