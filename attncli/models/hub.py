"""A model by its Hugging Face Hub name: ``attncli model Qwen/Qwen3-8B``, ``--config org/name``.

:func:`fetch` reads what attncli needs of a Hub repository and nothing more, through
``huggingface_hub`` (its cache, ``HF_TOKEN``/``hf auth login``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``):

- ``config.json``, into the client's cache; attncli's config reader then reads the cached file
  as it reads any ``--config`` (a multimodal model's ``text_config`` included);
- the weights' size: ``metadata.total_size`` of ``model.safetensors.index.json`` (cached beside
  the config), else the tensors of the one ``model.safetensors`` summed from its header (two
  ranged reads, no weights downloaded; the sum is kept in ``$HF_HOME/attncli/``).

A second run with a full commit hash as the revision, or with ``HF_HUB_OFFLINE=1``, reads the
cache and makes no request. Each request gives up after :func:`timeout` seconds
(``ATTNCLI_HUB_TIMEOUT``, default 10), the whole look-up after three times that, and never
retries. Every failure is one :class:`SpecError` naming the flag (``--config``) or ``MODEL``.
``huggingface_hub`` is imported inside the functions (``--help`` stays fast). Nothing here
imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from attncli.spec import SpecError

T = TypeVar("T")

TIMEOUT_ENV = "ATTNCLI_HUB_TIMEOUT"
LOOKUP_TIMES = 3
"""The whole look-up of a name (config, weights' size) gives up after this many times :func:`timeout`."""
DEFAULT_TIMEOUT = 10.0
"""Seconds one request to the Hub may take (``ATTNCLI_HUB_TIMEOUT`` overrides it)."""

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REVISION = re.compile(r"[A-Za-z0-9_][\w.+-]*(?:/[\w.+-]+)*")
"""A branch, tag or commit as git allows one in a URL and the client's cache (``refs/<revision>``):
no ``..``, no empty, absolute or trailing component, no space, backslash or control character."""
MAX_REVISION = 255
MAX_FILE_BYTES = 4 * 1024 * 1024
"""The largest config.json or safetensors index read (attncli.models.configs.MAX_CONFIG_BYTES): a larger
one is refused from the server's announced size, before it is downloaded."""


class Missing(SpecError):
    """The repository has no such file (a config-less repository, a model without a safetensors index)."""


LOGIN = "log in with `hf auth login` or set HF_TOKEN"


@dataclass(frozen=True)
class HubSnapshot:
    """What :func:`fetch` found: the cached folder holding ``config.json``, the commit, the weights."""

    repo: str
    commit: str
    folder: Path
    weights_bytes: int | None = None
    weights_source: str | None = None

    @property
    def origin(self) -> str:
        """``hub:org/name@commit``: where every value read from this snapshot came from."""
        return f"hub:{self.repo}@{self.commit}"


_SNAPSHOTS: dict[str, HubSnapshot] = {}
"""The snapshots fetched in this run, by their folder: read_model and the titles name the repository."""


def snapshot_of(path: Path | str) -> HubSnapshot | None:
    """The Hub snapshot ``path`` (a fetched folder, or its config.json) belongs to, if any."""
    p = Path(path)
    return _SNAPSHOTS.get(str(p)) or (_SNAPSHOTS.get(str(p.parent)) if p.name == "config.json" else None)


def split_name(text: str) -> tuple[str, str | None] | None:
    """``(org/name, revision or None)`` when ``text`` is a Hub repository id (``org/name`` or
    ``org/name@revision``), else None."""
    name, _, revision = text.strip().partition("@")
    if not _REPO_ID.fullmatch(name) or ".." in name or name.endswith((".json", ".")):
        return None
    return name, (revision or None)


def looks_like_hub_id(path: Path | str) -> bool:
    """Whether ``path`` names no local file or folder and reads as ``org/name``: a Hub repository."""
    text = str(path)
    try:
        if Path(text).exists():
            return False
    except (OSError, ValueError):
        return False
    return split_name(text) is not None


def check_revision(revision: str, flag: str) -> str:
    """``revision`` when it is a branch, tag or commit name the client may put in a URL and in its cache
    folder; else one line naming ``flag`` (``../x`` would name a file outside the cache's ``refs/``)."""
    if (len(revision) > MAX_REVISION or not _REVISION.fullmatch(revision) or ".." in revision
            or revision.endswith((".", ".lock"))):
        raise SpecError(flag, f"{revision[:60]!r} is not a branch, tag or commit name")
    return revision


def timeout() -> float:
    """Seconds one request may take: ``ATTNCLI_HUB_TIMEOUT``, else :data:`DEFAULT_TIMEOUT`."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_TIMEOUT
    except ValueError:
        raise SpecError(TIMEOUT_ENV, f"{raw!r} is not a number of seconds") from None
    if not 0 < value <= 600:
        raise SpecError(TIMEOUT_ENV, f"{raw!r}: give between 0 and 600 seconds")
    return value


_DEADLINE: list[float] = []
"""When the whole look-up of :func:`fetch` gives up (``time.monotonic()``), while it runs."""


def _left(limit: float) -> float:
    """``limit``, or less: what is left of the whole look-up's time."""
    import time

    return min(limit, _DEADLINE[-1] - time.monotonic()) if _DEADLINE else limit


def _bounded(fn: Callable[[], T], limit: float, fail: Callable[[str], SpecError]) -> T:
    """``fn()`` in a daemon thread, given up after ``limit`` seconds (a server that accepts and never
    answers, retries inside the client): its exception is raised here, a timeout is ``fail(...)``."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:  # NOTE: handed to the caller's thread, which maps it
            box.append((False, exc))

    if limit <= 0:
        raise fail(f"no answer from {_endpoint()} within {LOOKUP_TIMES * timeout():g} s in all (set {TIMEOUT_ENV} "
                   "to wait longer, or HF_HUB_OFFLINE=1 to use the cache)")
    worker = threading.Thread(target=run, name="attncli-hub", daemon=True)
    worker.start()
    worker.join(limit)
    if not box:
        raise fail(f"no answer from {_endpoint()} within {timeout():g} s (set {TIMEOUT_ENV} to wait longer, "
                   "or HF_HUB_OFFLINE=1 to use the cache)")
    ok, value = box[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def _explain(exc: BaseException, repo: str, filename: str) -> str:
    """One line for an error of the client."""
    from huggingface_hub import errors

    if isinstance(exc, errors.GatedRepoError):
        return f"{repo} is gated: accept its terms on the Hub, then {LOGIN}"
    if isinstance(exc, errors.RepositoryNotFoundError):
        return f"no model {repo} on {_endpoint()}, nor a local file of that name (or it is private: {LOGIN})"
    if isinstance(exc, errors.RevisionNotFoundError):
        return f"{repo} has no revision by that name"
    if isinstance(exc, errors.OfflineModeIsEnabled | errors.LocalEntryNotFoundError) and _offline():
        return f"{filename} of {repo} is not in the cache and HF_HUB_OFFLINE is set (run once online)"
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return f"{repo} has no {filename}"
    if isinstance(exc, errors.HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status in (401, 403):
            return f"{repo}: access refused (HTTP {status}): {LOGIN}"
        return f"{_endpoint()} answered HTTP {status} for {filename} of {repo}; try again later"
    cause = exc.__cause__ or exc
    if isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__:
        return f"no answer from {_endpoint()} within {timeout():g} s for {filename} of {repo} (set {TIMEOUT_ENV})"
    if isinstance(exc, errors.LocalEntryNotFoundError | OSError) or "Connect" in type(cause).__name__:
        return (f"cannot reach {_endpoint()} for {filename} of {repo}, and it is not in the cache "
                f"({type(exc.__cause__ or exc).__name__})")
    return f"{filename} of {repo}: {type(exc).__name__}: {exc}"


def _download(repo: str, revision: str, filename: str, flag: str, limit: float) -> tuple[str, str]:
    """(the cached path of ``filename``, the commit): from the cache when the revision is a commit
    hash or the client is offline, else after one HEAD without retries and the client's download
    (refused before it when the HEAD announces more than :data:`MAX_FILE_BYTES`)."""
    def fail(text: str) -> SpecError:
        return SpecError(flag, text)

    if _COMMIT.fullmatch(revision) or _offline():
        cached = _from_cache(repo, revision, filename)
        if isinstance(cached, str):
            return cached, _commit_of(cached)
        if cached is not None:  # NOTE: the client cached that the file is absent at this commit
            raise Missing(flag, f"{repo} has no {filename}")
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url

    _quiet()
    try:
        if not _offline():  # NOTE: the client's own HEAD retries a 5xx or a timeout for minutes
            from huggingface_hub import errors

            url = hf_hub_url(repo, filename, revision=revision, endpoint=constants.ENDPOINT)
            # NOTE: a missing file: the client's download below asks again and caches its absence at the commit
            with contextlib.suppress(errors.RemoteEntryNotFoundError):
                meta = _bounded(lambda: get_hf_file_metadata(url, timeout=limit), _left(limit * 1.5), fail)
                if meta.size is not None and meta.size > MAX_FILE_BYTES:
                    raise SpecError(flag, f"{filename} of {repo} is {meta.size:,} bytes: more than the "
                                          f"{MAX_FILE_BYTES:,} a config file may hold (not downloaded)")
        path = _bounded(lambda: hf_hub_download(repo, filename, revision=revision, etag_timeout=limit),
                        _left(limit * 1.5), fail)
    except SpecError:
        raise
    except Exception as exc:  # NOTE: every error of the client is one line
        from huggingface_hub import errors

        kind = Missing if isinstance(exc, errors.RemoteEntryNotFoundError) else SpecError
        raise kind(flag, _explain(exc, repo, filename)) from None
    return str(path), _commit_of(str(path))


_NO_EXIST = object()
"""The client's cache says the file is absent at that commit."""


def _from_cache(repo: str, revision: str, filename: str) -> str | object | None:
    """``filename`` of ``repo`` at ``revision`` in the client's cache, read as ``try_to_load_from_cache``
    (huggingface_hub/file_download.py) reads its layout (``models--org--name/refs/<revision>`` holding the
    commit, ``snapshots/<commit>/<file>``, ``.no_exist/<commit>/<file>``): the path, :data:`_NO_EXIST`, or
    None. NOTE: without importing the client's download module and its HTTP stack (about 0.3 s), so that
    a cached name costs what a local folder costs; a ref that holds no commit hash is not followed."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))
    if not folder.is_dir():
        return None
    commit = revision
    ref = folder / "refs" / revision
    if ref.is_file():
        try:
            commit = ref.read_text(encoding="ascii").strip()
        except (OSError, ValueError):
            return None
    if not _COMMIT.fullmatch(commit):
        return None
    if (folder / ".no_exist" / commit / filename).is_file():
        return _NO_EXIST
    path = folder / "snapshots" / commit / filename
    return str(path) if path.is_file() else None


def _quiet() -> None:
    """The client draws no progress bar and logs no warning (each would be a line on stderr beside
    attncli's one line: "Trying to resume download..." after a body cut short)."""
    from huggingface_hub.utils.logging import set_verbosity_error
    from huggingface_hub.utils.tqdm import disable_progress_bars

    disable_progress_bars()
    set_verbosity_error()  # type: ignore[no-untyped-call]


def _commit_of(path: str) -> str:
    """The commit of a cached file: its snapshot folder's name (``.../snapshots/<commit>/file``)."""
    parts = Path(path).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else "unknown"


def _gguf_only(repo: str, revision: str, limit: float) -> bool:
    """Whether the repository's top folder holds .gguf files and no config.json (a llama.cpp upload)."""
    from huggingface_hub import HfApi

    _quiet()

    def fail(text: str) -> SpecError:
        return SpecError("MODEL", text)

    try:
        names = _bounded(lambda: [f.path for f in HfApi().list_repo_tree(repo, revision=revision)], _left(limit),
                         fail)
    except Exception:  # NOTE: only a better message is at stake
        return False
    return any(str(n).lower().endswith(".gguf") for n in names)


def _weights(repo: str, commit: str, flag: str, limit: float) -> tuple[int | None, str | None]:
    """The weights' bytes and where they were read; (None, None) when the Hub does not say."""
    try:
        _download(repo, commit, "model.safetensors.index.json", flag, limit)
    except Missing:
        pass
    except SpecError:
        return None, None  # NOTE: the config was read; the size is only a convenience
    else:
        return None, None  # NOTE: read_model reads the index beside the config, naming the snapshot
    store = _weights_file(repo, commit)
    try:
        doc = json.loads(store.read_text(encoding="utf-8"))
        stored = doc["weights_bytes"]
        if type(stored) is int and 0 <= stored <= MAX_WEIGHTS_BYTES:  # NOTE: else counted again from the header
            return stored, str(doc["weights_source"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if _offline():
        return None, None
    from huggingface_hub import HfApi

    _quiet()

    def fail(text: str) -> SpecError:
        return SpecError(flag, text)

    try:
        meta = _bounded(lambda: HfApi().parse_safetensors_file_metadata(
            repo, "model.safetensors", revision=commit, timeout=limit), _left(limit * 2), fail)
        total = _tensor_bytes([t.data_offsets for t in meta.tensors.values()])
    except Exception:  # NOTE: no single safetensors file (or no access to it): the size stays unknown
        return None, None
    source = f"hub:{repo}@{commit}: model.safetensors header (tensor bytes)"
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_suffix(".tmp")
        tmp.write_text(json.dumps({"weights_bytes": total, "weights_source": source}), encoding="utf-8")
        tmp.replace(store)
    except OSError:
        pass
    return total, source


MAX_WEIGHTS_BYTES = 2**62
"""The largest weights' size believed from a safetensors header (as the engine's byte flags)."""


def _tensor_bytes(offsets: list[Any]) -> int:
    """The bytes of a safetensors file's tensors from their ``data_offsets`` (begin, end); a ValueError
    for offsets that are no pair of integers 0 <= begin <= end, or a sum past :data:`MAX_WEIGHTS_BYTES`."""
    total = 0
    for pair in offsets:
        begin, end = pair
        if type(begin) is not int or type(end) is not int or not 0 <= begin <= end:
            raise ValueError(f"data_offsets {pair!r}")
        total += end - begin
    if total > MAX_WEIGHTS_BYTES:
        raise ValueError(f"{total} bytes")
    return total


def _weights_file(repo: str, commit: str) -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "attncli" / "weights" / repo.replace("/", "--") / f"{commit}.json"


def fetch(name: str, revision: str | None = None, flag: str = "--config", with_weights: bool = False) -> HubSnapshot:
    """The snapshot of Hub repository ``name`` (``org/name`` or ``org/name@revision``) at ``revision``
    (default ``main``): ``config.json`` in the client's cache and, ``with_weights``, the weights' size."""
    split = split_name(name)
    if split is None:
        raise SpecError(flag, f"{name!r} is not a Hub repository id (org/name)")
    repo, at = split
    if at is not None and revision is not None and at != revision:
        raise SpecError("--revision", f"{revision!r} and {name!r} name two revisions: give one")
    if revision is not None:
        check_revision(revision, "--revision")
    elif at is not None:
        check_revision(at, flag)
    rev = revision or at or "main"
    limit = timeout()
    import time

    _DEADLINE.append(time.monotonic() + LOOKUP_TIMES * limit)
    try:
        return _fetch(repo, rev, flag, with_weights, limit)
    finally:
        _DEADLINE.pop()


def _fetch(repo: str, rev: str, flag: str, with_weights: bool, limit: float) -> HubSnapshot:
    try:
        path, commit = _download(repo, rev, "config.json", flag, limit)
    except SpecError as exc:
        if isinstance(exc, Missing) and not _offline() and _gguf_only(repo, rev, limit):
            raise SpecError(flag, f"{repo} holds only GGUF files (no config.json): give the original "
                                  "model's repository, or its config.json with --config") from None
        raise
    folder = Path(path).parent
    weights = _weights(repo, commit, flag, limit) if with_weights else (None, None)
    snap = HubSnapshot(repo, commit, folder, *weights)
    _SNAPSHOTS[str(folder)] = snap
    return snap


def resolve_config(config: Path | None, revision: str | None = None, flag: str = "--config",
                   with_weights: bool = False) -> Path | None:
    """``--config`` as the file to read: a Hub id (``org/name`` naming nothing local) is fetched and
    becomes its cached folder; anything else is returned as given."""
    if config is None or not looks_like_hub_id(config):
        if revision is not None and config is not None:
            raise SpecError("--revision", "is for a Hub repository (org/name), not a local file")
        return config
    return fetch(str(config), revision, flag, with_weights).folder
