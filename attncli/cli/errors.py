"""Usage errors in attncli's own words: ``--impl: 'fast' is not one of torch, split, ...``.

typer validates option values with pydantic and click, whose messages read "Invalid value for
'--impl': Value error, 'fast' is not one of ..." or "Input should be a valid number, unable to
parse string as a number". :func:`usage_message` turns them into the one-line form every other
attncli error has: the flag, the value given and what it should be.
"""

from __future__ import annotations

import re
from typing import Any

_KINDS = {"float_parsing": "a number", "float_type": "a number", "int_parsing": "an integer",
          "int_type": "an integer", "int_from_float": "a whole number", "bool_parsing": "true or false",
          "greater_than_equal": None, "less_than_equal": None}


def _flag(exc: Any) -> str | None:
    param = getattr(exc, "param", None)
    opts = [o for o in getattr(param, "opts", []) or [] if o.startswith("--")]
    if opts:
        return str(max(opts, key=len))
    hint = getattr(exc, "param_hint", None)
    return hint if isinstance(hint, str) else None


def _pydantic_error(exc: Any) -> dict[str, Any] | None:
    cause = exc.__cause__ or exc.__context__
    errors = getattr(cause, "errors", None)
    if not callable(errors):
        return None
    try:
        found = errors()
    except Exception:  # NOTE: anything odd here falls back to typer's own message
        return None
    return found[0] if found and isinstance(found[0], dict) else None


_BOUNDS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "more than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


def usage_message(exc: Any, default: str) -> str:
    """attncli's wording of a typer/click usage error, or ``default`` when it is not a bad value."""
    message = str(getattr(exc, "message", "") or "")
    missing = re.fullmatch(r"Option '(-[\w-]+)' requires (?:an argument|\d+ arguments)\.", message)
    if missing:  # click's BadOptionUsage: `attncli flops --dim` with nothing after it
        return f"{missing.group(1)}: needs a value"
    extra = re.fullmatch(r"Got unexpected extra argument\(s\) \((.*)\)", message, re.S)
    if extra:  # `attncli flops 64`: name what was not expected, and what to write instead
        ctx = getattr(exc, "ctx", None)
        command = getattr(ctx, "command_path", None) or "attncli"
        return (f"unexpected argument(s) '{extra.group(1)}': {command} takes options only "
                "(a value goes after its flag, e.g. --seq 128)")
    unknown = re.fullmatch(r"No such option: (-\S+)", message)
    if unknown:
        close = sorted(getattr(exc, "possibilities", None) or ())
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return f"{unknown.group(1)}: no such option{hint}"
    flag = _flag(exc)
    if flag is None or not message:
        return default
    err = _pydantic_error(exc)
    if err is not None and err.get("type") in _KINDS and _KINDS[err["type"]] is not None:
        return f"{flag}: {err.get('input')!r} is not {_KINDS[err['type']]}"
    if err is not None and err.get("type") in _BOUNDS:
        key, words = _BOUNDS[err["type"]]
        bound = (err.get("ctx") or {}).get(key)
        if bound is not None:
            shown = f"{bound:g}" if isinstance(bound, int | float) else bound
            return f"{flag}: must be {words} {shown}, got {err.get('input')}"
    choice = re.fullmatch(r"(?:Value error, )?('.*?') is not one of (.*?)\.?", message)
    if choice:
        options = ", ".join(o.strip().strip("'") for o in choice.group(2).split(","))
        return f"{flag}: {choice.group(1)} is not one of {options}"
    message = re.sub(r"^(Value error|Assertion failed), ", "", message)
    return f"{flag}: {' '.join(message.split())}"
