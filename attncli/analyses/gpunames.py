"""GPU names as people say them: ``--gpu h100`` is the H100 SXM, ``a100`` the 80 GB SXM.

The aliases live in one place, ``attncli/data/gpus.json``'s ``aliases`` (name -> the entry meant, or
a list of entries when the name is ambiguous: ``a100-80gb`` is an SXM or a PCIe board). An
entry's own name always wins; an unknown name gets the close matches among names and aliases
(:func:`attncli.names.find_name`). Nothing here imports torch.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from attncli.spec import SpecError


@functools.cache
def aliases(names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """gpus.json's aliases -> the entries they mean, checked once against the entries ``names``:
    every entry named exists, and no alias is an entry's own name."""
    raw = json.loads(resources.files("attncli").joinpath("data/gpus.json").read_text(encoding="utf-8"))
    out: dict[str, tuple[str, ...]] = {}
    for alias, meant in raw.get("aliases", {}).items():
        if alias == "_":  # NOTE: the table's own comment
            continue
        targets = (meant,) if isinstance(meant, str) else tuple(meant)
        if alias in names or not targets or not set(targets) <= set(names):
            raise ValueError(f"gpus.json: alias {alias!r} -> {meant!r} must name existing entries, and no entry")
        out[alias] = targets
    return out


def resolve(name: str, names: list[str], flag: str = "--gpu") -> str:
    """The entry of ``names`` that ``name`` means: an entry's name (any case), or an alias; an
    ambiguous alias is one line with its choices, an unknown name one with the close matches."""
    from attncli.names import find_name

    table = aliases(tuple(names))
    key = find_name(name, [*names, *table], flag, "GPU", "attncli gpus")
    if key in names:
        return key
    meant = table[key]
    if len(meant) > 1:
        raise SpecError(flag, f"{name!r} is ambiguous: give {' or '.join(meant)} (attncli gpus)")
    return meant[0]
