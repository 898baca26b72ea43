"""The values a command line types, parsed before anything is counted.

- :func:`token_count` and :func:`expand_tokens`: token counts (``--seq``, ``--kv-seq``, ``--cache``,
  ``--window``, ``--chunk``) take binary ``k``/``M``/``G`` suffixes, as context lengths are named:
  128k = 131,072, 1M = 1,048,576; a fraction or anything else is one line naming the flag.
- :func:`dtype_name`: every dtype flag takes ``fp16``, ``bf16``, ``FP8``, ``torch.float16``, ... and
  gives the one name the outputs show (``float16``).

The files a run reads and writes are checked by :mod:`attncli.io.paths`. Nothing here imports torch or rich.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

from attncli.choices import dtype_name
from attncli.spec import SpecError

# ---------------------------------------------------------------------------- token counts
TOKEN_SUFFIXES: dict[str, int] = {"k": 1024, "m": 1024**2, "g": 1024**3}
"""Binary multipliers of a token count, as context lengths are named (128k = 131,072, 1M = 1,048,576)."""

TOKEN_FLAGS: dict[str, str] = {"seq": "--seq", "kv_seq": "--kv-seq", "cache": "--cache", "window": "--window",
                               "chunk": "--chunk"}
"""The token-count settings (spec field names) and their flags: they take the suffixes."""

_SUFFIXED = re.compile(r"(?<![\w.])(\d+)([kKmMgG])(?![\w.])")
_FRACTION = re.compile(r"\d*\.\d+\s*[kKmMgG]?|\d+\.\s*[kKmMgG]")
TOKEN_FORMS = "N, Nk (N x 1024) or NM (N x 1024**2): 128k = 131072"


def expand_tokens(text: str, flag: str) -> str:
    """``text`` (a value, a list or a range) with every suffixed count written out:
    ``"1k:128k:x2"`` -> ``"1024:131072:x2"``. A fraction (``1.5k``, ``0.5M``) is refused naming ``flag``:
    a count of tokens is whole."""
    fraction = _FRACTION.search(text)
    if fraction:
        part = fraction.group(0).strip()
        where = "" if part == text.strip() else f"{text.strip()!r}: "
        raise SpecError(flag, f"{where}{part!r} is not a whole number of tokens (give {TOKEN_FORMS})")
    return _SUFFIXED.sub(lambda m: str(int(m.group(1)) * TOKEN_SUFFIXES[m.group(2).lower()]), text)


def token_count(text: str | int, flag: str) -> int:
    """One token count: ``"131072"``, ``"128k"`` or ``"1M"`` -> int; anything else is refused
    (SpecError naming ``flag``)."""
    if isinstance(text, int):
        return text
    expanded = expand_tokens(str(text), flag).strip()
    if not re.fullmatch(r"[+-]?\d+", expanded):
        raise SpecError(flag, f"{str(text).strip()!r} is not a token count (give {TOKEN_FORMS})")
    return int(expanded)


def token_parser(flag: str) -> Callable[[str | int], int]:
    """A typer ``parser`` for a token-count option: its message reads ``--seq: ...`` (a
    ValueError, which typer reports naming the option)."""
    def parse(text: str | int) -> int:
        try:
            return token_count(text, flag)
        except SpecError as exc:
            raise ValueError(exc.message) from None
    return parse


# ---------------------------------------------------------------------------- dtypes
def dtype_parser(choices: Iterable[str] | type[Enum]) -> Callable[[Any], Any]:
    """A typer ``parser`` for a dtype option: ``fp16``, ``BF16``, ``torch.float16`` become the name
    the outputs show (:func:`attncli.choices.dtype_name`), as the Enum member when ``choices`` is an
    Enum; anything else is ``--dtype: 'x' is not one of ...``."""
    enum = choices if isinstance(choices, type) and issubclass(choices, Enum) else None
    names = [str(m.value) for m in enum] if enum is not None else list(choices)

    def parse(text: Any) -> Any:
        if isinstance(text, Enum):
            return text
        name = dtype_name(str(text))
        if name not in names:
            raise ValueError(f"{str(text)!r} is not one of {', '.join(names)}")
        return enum(name) if enum is not None else name
    return parse
