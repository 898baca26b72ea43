"""``attncli model --engine vllm``: vLLM's KV cache as a rich table or Markdown, the answer first.

One line answers (blocks, a request's blocks, max concurrency, the "GPU KV cache size" tokens);
one row per KV-cache group; padding and the hybrid alignment in words. ``verbose`` adds how each
knob moves the answer and the notes. Exact integers are in the JSON (``engine``).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Group as RichGroup
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from attncli.kinds.cache import CHUNKED, FULL, MAMBA, MLA, SLIDING
from attncli.render.common import commas, human_bytes, md_table
from attncli.render.layout import Trimmed, md_document, plain_table
from attncli.serving.vllm import VERSION, EnginePlan, gib, knobs

_SHORT = {FULL: "full", MLA: "MLA", SLIDING: "sliding", CHUNKED: "chunked", MAMBA: "Mamba"}


def _version() -> str:
    return "vLLM " + ".".join(VERSION.split(".")[:2])


def _memory(n: int) -> str:
    return f"{gib(n):.1f} GiB" if n >= 2**30 else human_bytes(n)


def answer(p: EnginePlan) -> str:
    """The answer as one line (the issue's form)."""
    s, q = p.settings, p.point
    head = (f"{_version()}, {_memory(s.kv_cache_memory)} of KV: {p.num_blocks:,} blocks of "
            f"{p.layout.block_size} tokens; ")
    by_kind: dict[str, int] = {}
    for g in p.groups:
        by_kind[_SHORT[g.spec.cache]] = by_kind.get(_SHORT[g.spec.cache], 0) + g.blocks_per_request
    parts = " + ".join(f"{k} {n:,}" for k, n in sorted(by_kind.items(), key=lambda kv: -kv[1]))
    split = f" ({parts})" if len(by_kind) > 1 else ""
    if not q.fits:
        longest = (f"the longest max_model_len that fits is {q.max_model_len_fit:,} tokens" if q.max_model_len_fit
                   else "not even one token fits")
        usable = (f"{p.num_blocks - 1:,} usable beside the null block" if p.num_blocks > 1
                  else "no block beside the null block: vLLM's 'No available memory for the cache blocks'")
        return (head + f"one {q.max_model_len:,}-token request needs {q.blocks_per_request:,} blocks{split} and "
                f"does not fit ({usable}); {longest}")
    return head + (f"one {q.max_model_len:,}-token request takes {q.blocks_per_request:,} blocks{split}; max "
                   f"concurrency {q.max_concurrency:.2f}x; GPU KV cache size {q.kv_cache_tokens:,} tokens")


def _groups(p: EnginePlan) -> Table:
    t = plain_table()
    for name, right in (("group", False), ("spec", False), ("layers", True), ("page", True), ("blocks/req", True)):
        t.add_column(name, justify="right" if right else "left", no_wrap=True)
    for i, g in enumerate(p.groups):
        page = human_bytes(g.page_size_bytes) + (" (padded)" if g.padded_from else "")
        t.add_row(str(i), g.spec.label(), str(len(g.layers)), page, commas(g.blocks_per_request))
    return t


def _words(p: EnginePlan) -> list[str]:
    lay = p.layout
    n = max(len(g.layers) for g in p.groups)
    out = [f"a block: {human_bytes(lay.bytes_per_block)} ({n} layers' pages); {len(p.groups)} "
           f"group{'s' if len(p.groups) > 1 else ''}, "
           + (f"{lay.padding_layers} padding layers" if lay.padding_layers else "no padding")]
    return out + list(p.notes[1:])


def _sweep(p: EnginePlan) -> Table:
    t = plain_table(f"at each --max-model-len ({gib(p.settings.kv_cache_memory):.1f} GiB of KV)")
    for name in ("max_model_len", "blocks/req", "concurrency", "KV tokens", "fits"):
        t.add_column(name, justify="left" if name == "fits" else "right", no_wrap=True)
    for q in p.sweep:
        t.add_row(commas(q.max_model_len), commas(q.blocks_per_request), f"{q.max_concurrency:.2f}x",
                  commas(q.kv_cache_tokens), "yes" if q.fits else f"no: {q.max_model_len_fit:,}")
    return t


def _knob_value(p: EnginePlan, value: str, block: int) -> str:
    return value if block == p.layout.block_size else f"{value} (block {block})"


def _knobs(p: EnginePlan) -> Table:
    t = plain_table("each knob alone (the rest as above)")
    for name in ("flag", "value", "blocks/req", "concurrency", "KV tokens"):
        t.add_column(name, justify="left" if name in ("flag", "value") else "right", no_wrap=True)
    q = p.point
    t.add_row("(as above)", "", commas(q.blocks_per_request), f"{q.max_concurrency:.2f}x", commas(q.kv_cache_tokens))
    for k in knobs(p):
        t.add_row(k.flag, _knob_value(p, k.value, k.block_size), commas(k.blocks_per_request),
                  f"{k.max_concurrency:.2f}x", commas(k.kv_cache_tokens))
    return t


def table(p: EnginePlan, name: str, verbose: bool = False) -> RenderableType:
    """The answer, a row per group, padding and alignment in words; with a range of ``--max-model-len``
    the table at each length, and the groups and notes under ``verbose`` (one 80x24 screen)."""
    parts: list[RenderableType] = [Text(f"attncli model: {name} as {_version()} sizes its KV cache", style="bold"),
                                   Text(answer(p)), Text("")]
    words = _words(p)
    if p.sweep and not verbose:
        parts += [Text(words[0]), _sweep(p), Text(p.notes[0], style="dim")]
        if len(words) > 1:
            more = len(words) - 1
            parts.append(Text(f"{more} more note{'s' if more > 1 else ''} and a row per group: --verbose",
                              style="dim"))
        return Trimmed(RichGroup(*parts))
    parts += [_groups(p), *(Text(line) for line in words)]
    if p.sweep:
        parts.append(_sweep(p))
    parts.append(Text(p.notes[0], style="dim"))
    if verbose:
        parts += [Text(""), _knobs(p)]
    return Trimmed(RichGroup(*parts))


def markdown(p: EnginePlan, name: str, verbose: bool = False) -> str:
    rows = [(str(i), g.spec.label(), str(len(g.layers)), commas(g.page_size_bytes), commas(g.blocks_per_request))
            for i, g in enumerate(p.groups)]
    out = [f"### attncli model: {name} as {_version()} sizes its KV cache", "", answer(p), "",
           md_table(["group", "spec", "layers", "page bytes", "blocks / request"], rows, "llrrr"), ""]
    out += [f"- {line}" for line in (*_words(p), p.notes[0])]
    if p.sweep:
        out += ["", md_table(["max_model_len", "blocks / request", "concurrency", "KV tokens", "fits"],
                             [(commas(q.max_model_len), commas(q.blocks_per_request), f"{q.max_concurrency:.2f}x",
                               commas(q.kv_cache_tokens), "yes" if q.fits else f"no: {q.max_model_len_fit:,}")
                              for q in p.sweep], "rrrrl")]
    if verbose:
        out += ["", md_table(["flag", "value", "blocks / request", "concurrency", "KV tokens"],
                             [(k.flag, _knob_value(p, k.value, k.block_size), commas(k.blocks_per_request),
                               f"{k.max_concurrency:.2f}x", commas(k.kv_cache_tokens)) for k in knobs(p)], "llrrr")]
    return md_document("\n".join(out)) + "\n"


def plot(p: EnginePlan, name: str, path: Path) -> None:
    """Max concurrency against ``max_model_len`` (log-log) to ``path`` (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    xs = [q.max_model_len for q in p.sweep]
    ax.loglog(xs, [q.max_concurrency for q in p.sweep], marker="o")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("max_model_len (tokens)")
    ax.set_ylabel("max concurrency (requests)")
    ax.set_title(f"{name}: {_version()}, {gib(p.settings.kv_cache_memory):.1f} GiB of KV, "
                 f"blocks of {p.layout.block_size}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
