"""Names the user types for things attncli knows (a preset, a GPU): case-insensitive, with the
close matches suggested when a name is unknown.

``--preset Llama-3-8B`` is ``llama-3-8b``; ``--preset lama-3-8b`` is one line:
``--preset: unknown preset 'lama-3-8b'; did you mean llama-3-8b? (all: attncli presets)``.
Nothing here imports torch or rich.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from attncli.spec import SpecError


def find_name(name: str, choices: Iterable[str], flag: str, what: str, listing: str) -> str:
    """The one of ``choices`` that ``name`` names, compared case-insensitively (``_`` as ``-``).

    An unknown name is a :class:`SpecError` naming ``flag``: ``unknown {what} 'x'; did you mean
    a? (also close: b; all: {listing})`` with :func:`difflib.get_close_matches`' matches, best
    first, else every choice.
    """
    known = list(choices)
    if flag == "--preset" and "/" in name.strip():  # NOTE: Qwen/Qwen3-8B is a Hub model, not a preset's misspelling
        raise SpecError(flag, f"{name.strip()!r} is a Hugging Face Hub model, not a preset: give it as "
                              f"--config {name.strip()} (or attncli model {name.strip()})")
    folded = {c.lower().replace("_", "-"): c for c in known}
    key = name.strip().lower().replace("_", "-")
    if key in folded:
        return folded[key]
    close = [folded[c] for c in difflib.get_close_matches(key, list(folded), n=3, cutoff=0.6)]
    if close:
        also = f"also close: {', '.join(close[1:])}; " if close[1:] else ""
        raise SpecError(flag, f"unknown {what} {name!r}; did you mean {close[0]}? ({also}all: {listing})")
    raise SpecError(flag, f"unknown {what} {name!r}; choose from {', '.join(known)}")
