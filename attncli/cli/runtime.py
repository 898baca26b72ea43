"""What every counting command does to the process while it counts, in one context manager.

:func:`counting` decorates ``attncli flops``, ``report`` and ``sweep`` (the commands that
trace on the meta device): ``@counting()`` under ``@spec_command``. It changes process-wide
state, which is why it lives in the CLI and never in the library functions
(:func:`attncli.analyses.flops.count_variant` and friends leave ``sys.modules`` and the garbage
collector alone), and it undoes every change on exit:

- **the cyclic GC is paused**: a count imports torch, fvcore and sympy (about a million
  long-lived objects) and the collector would rescan them again and again, a fifth to a
  quarter of the run; one count makes little cyclic garbage, so collection waits.
- **the ``torch._dynamo`` import shortcut** (:func:`without_dynamo_import`), on torch versions
  it was verified on only (:data:`VERIFIED_TORCH`); ``ATTNCLI_NO_IMPORT_SHORTCUT=1`` turns it
  off. ``benchmarks/bench_flops.py`` measures what it saves.

Around the count, with the same reasoning about the collector: :func:`import_torch` (the counting
commands' ``import torch``, the collector paused as well), and :func:`frozen_for_shutdown` (in the
console script only, after the run: the interpreter's shutdown does not scan what is left).
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

VERIFIED_TORCH: tuple[str, ...] = ("2.13.",)
"""torch versions (prefixes) whose ``torch._disable_dynamo`` the shortcut was verified against."""

SWITCH = "ATTNCLI_NO_IMPORT_SHORTCUT"
"""Set to anything non-empty to import the real ``torch._dynamo`` as torch does."""


def shortcut_applies(version: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether the import shortcut runs: a verified torch version and the switch not set."""
    return version.startswith(VERIFIED_TORCH) and not environ.get(SWITCH)


@contextmanager
def without_dynamo_import() -> Iterator[None]:
    """Answer ``torch._disable_dynamo``'s lazy ``import torch._dynamo`` without importing it.

    NOTE: the first meta-device op of a process runs Python meta kernels and decompositions
    (``torch._refs``) wrapped in ``torch._disable_dynamo``; on its first call that wrapper
    imports ``torch._dynamo`` (about 1.3 s here, and most of the cost of the first trace) just
    to mark the function "do not compile". While ``torch._dynamo`` has not been imported
    nothing in this process can be compiling, so the mark changes nothing: a placeholder module
    answers ``disable(fn)`` with ``fn``, and anything else it is asked loads the real module.
    On exit the placeholder and every mark it handed out (torch caches the mark on the function
    as ``__dynamo_disable``, a private detail, hence :data:`VERIFIED_TORCH`) are removed, so a
    later real ``torch._dynamo`` starts clean. (sympy, which the meta kernels import too,
    cannot be skipped: they really use it.)
    """
    import torch

    if "torch._dynamo" in sys.modules or not shortcut_applies(torch.__version__):
        yield
        return
    marked: list[Any] = []
    placeholder = types.ModuleType("torch._dynamo", "attncli placeholder, see attncli.cli.runtime")

    def disable(fn: Any = None, recursive: bool = True, **_: Any) -> Any:
        if fn is None:
            return functools.partial(disable, recursive=recursive)
        marked.append(fn)
        return fn

    def remove() -> None:
        if sys.modules.get("torch._dynamo") is placeholder:
            del sys.modules["torch._dynamo"]
        if torch.__dict__.get("_dynamo") is placeholder:
            delattr(torch, "_dynamo")

    def load_real(name: str) -> Any:
        remove()
        return getattr(importlib.import_module("torch._dynamo"), name)

    placeholder.disable = disable  # type: ignore[attr-defined]
    placeholder.__getattr__ = load_real  # type: ignore[method-assign,unused-ignore]
    sys.modules["torch._dynamo"] = placeholder
    torch._dynamo = placeholder
    try:
        yield
    finally:
        remove()
        for fn in marked:
            getattr(fn, "__dict__", {}).pop("__dynamo_disable", None)


def without_placeholder() -> None:
    """Drop the ``torch._dynamo`` placeholder now, if it is in place (the real module loads on demand).

    NOTE: ``--module`` imports the user's code, which may import ``torch._dynamo`` pieces or
    ``torch.distributed`` (transformers does) and meet the placeholder half-way through a circular
    import. The user's code gets the real module; :func:`without_dynamo_import` leaves a real
    module alone on exit.
    """
    mod = sys.modules.get("torch._dynamo")
    if mod is not None and (mod.__doc__ or "").startswith("attncli placeholder"):
        del sys.modules["torch._dynamo"]
        torch = sys.modules.get("torch")
        if torch is not None and torch.__dict__.get("_dynamo") is mod:
            delattr(torch, "_dynamo")


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused, and restored as it was after.

    NOTE: on the way out, what the block allocated and left alive (torch's, fvcore's and sympy's
    modules, functions and classes: most of a million objects) joins the oldest generation at once
    (``gc.freeze()`` then ``gc.unfreeze()``, two list moves), as if it had survived the collections the
    pause skipped. Left in the youngest generation, the next few collections after the pause would scan
    all of it, and soon again in the middle generation: more than the pause saved (0.2 s and more
    here). Nothing is frozen for good and nothing escapes collection: the oldest generation is
    collected as before. Skipped when something else holds frozen objects (``gc.freeze()`` is theirs).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def frozen_for_shutdown() -> None:
    """In the console script, once the run is over: every object ``gc.freeze()``-n, so the interpreter's
    shutdown does not scan them.

    NOTE: the shutdown collects every generation again and again while it clears the modules (not
    the permanent one ``gc.freeze()`` fills): with torch, fvcore and sympy loaded that took 0.4 to
    0.7 s here, after the report was written. The objects are still freed as the modules are cleared;
    a reference cycle left at exit is left to the operating system, as the memory of the process is.
    Only in the console script (:func:`attncli.io.interrupts.installed`): a program or a test that
    calls :func:`attncli.cli.main` keeps its collector as it was.
    """
    from attncli.io import interrupts

    if interrupts.installed():
        gc.freeze()


def import_torch() -> None:
    """``import torch`` for a command that counts: the collector paused (:func:`collector_paused`), and a
    Ctrl-C inside the import deferred to its end (:func:`attncli.io.interrupts.deferred_interrupts`).

    NOTE: the import makes about a million long-lived objects and little garbage; with the collector
    running it rescans them again and again, a sixth of the import here. The bare ``import torch``
    that ``benchmarks/bench_flops.py`` compares with runs it; that is part of what is measured.
    """
    from attncli.io.interrupts import deferred_interrupts

    with collector_paused(), deferred_interrupts():
        importlib.import_module("torch")


@contextmanager
def single_threaded() -> Iterator[None]:
    """torch's intra-op threads set to one, and restored as they were after.

    NOTE: for small real tensors only (the report's permutation test: batch 1, 8 tokens). On
    such sizes a second thread only waits at every op's barrier, and when the CPUs are shared
    it waits for a descheduled thread: the test took ten times the CPU time and wall time with
    two threads. The results are the same with one thread (checked on the default report's
    layers); the permutation test of ``attncli permute-test`` itself is left as it is.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def counting() -> Iterator[None]:
    """The process set up for counting (GC paused, dynamo import shortcut), restored after."""
    with collector_paused(), without_dynamo_import():
        yield
