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
DEFAULT_TIMEOUT = 10.0
"""Seconds one request to the Hub may take (``ATTNCLI_HUB_TIMEOUT`` overrides it)."""

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")
_COMMIT = re.compile(r"[0-9a-f]{40}")


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


def _bounded(fn: Callable[[], T], limit: float, fail: Callable[[str], SpecError]) -> T:
    """``fn()`` in a daemon thread, given up after ``limit`` seconds (a server that accepts and never
    answers, retries inside the client): its exception is raised here, a timeout is ``fail(...)``."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:  # NOTE: handed to the caller's thread, which maps it
            box.append((False, exc))

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
    hash or the client is offline, else after one HEAD without retries and the client's download."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache

    def fail(text: str) -> SpecError:
        return SpecError(flag, text)

    if _COMMIT.fullmatch(revision) or _offline():
        cached = try_to_load_from_cache(repo, filename, revision=revision)
        if isinstance(cached, str):
            return cached, _commit_of(cached)
        if cached is not None:  # NOTE: the client cached that the file is absent at this commit
            raise Missing(flag, f"{repo} has no {filename}")
    try:
        if not _offline():  # NOTE: the client's own HEAD retries a 5xx or a timeout for minutes
            from huggingface_hub import errors

            url = hf_hub_url(repo, filename, revision=revision, endpoint=constants.ENDPOINT)
            # NOTE: a missing file: the client's download below asks again and caches its absence at the commit
            with contextlib.suppress(errors.RemoteEntryNotFoundError):
                _bounded(lambda: get_hf_file_metadata(url, timeout=limit), limit * 1.5, fail)
        path = _bounded(lambda: hf_hub_download(repo, filename, revision=revision, etag_timeout=limit),
                        limit * 1.5, fail)
    except SpecError:
        raise
    except Exception as exc:  # NOTE: every error of the client is one line
        from huggingface_hub import errors

        kind = Missing if isinstance(exc, errors.RemoteEntryNotFoundError) else SpecError
        raise kind(flag, _explain(exc, repo, filename)) from None
    return str(path), _commit_of(str(path))


def _commit_of(path: str) -> str:
    """The commit of a cached file: its snapshot folder's name (``.../snapshots/<commit>/file``)."""
    parts = Path(path).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else "unknown"


def _gguf_only(repo: str, revision: str, limit: float) -> bool:
    """Whether the repository's top folder holds .gguf files and no config.json (a llama.cpp upload)."""
    from huggingface_hub import HfApi

    def fail(text: str) -> SpecError:
        return SpecError("MODEL", text)

    try:
        names = _bounded(lambda: [f.path for f in HfApi().list_repo_tree(repo, revision=revision)], limit, fail)
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
        return int(doc["weights_bytes"]), str(doc["weights_source"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if _offline():
        return None, None
    from huggingface_hub import HfApi

    def fail(text: str) -> SpecError:
        return SpecError(flag, text)

    try:
        meta = _bounded(lambda: HfApi().parse_safetensors_file_metadata(
            repo, "model.safetensors", revision=commit, timeout=limit), limit * 2, fail)
        total = sum(int(t.data_offsets[1]) - int(t.data_offsets[0]) for t in meta.tensors.values())
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
    rev = revision or at or "main"
    limit = timeout()
    from huggingface_hub.utils.tqdm import disable_progress_bars

    disable_progress_bars()  # NOTE: a bar on a terminal's stderr would break "an error is one line"
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
