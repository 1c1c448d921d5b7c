"""Results I/O: the contract between full runs, notebooks and checks.

A chapter's full run writes ``results/<chapter>/`` through a :class:`ResultStore`:

- data files (``metrics.json``, ``.npz`` arrays, small ``.pt`` checkpoints), each written atomically;
- ``claims.json`` — the chapter's :class:`~helpers.claims.Claim` records, made by
  ``helpers.<chapter>.claims`` from the run's metrics;
- ``run.json`` — provenance written by the code (:data:`RUN_FIELDS`), last, so a run.json always
  describes complete files.

A run's files are written into a staging folder beside ``<chapter>/`` and swapped in whole
(:meth:`ResultStore.save_run`), so a run killed while writing leaves the previous results intact.

Reading a missing, corrupt or stale (other ``schema``) result raises a :class:`ResultError` whose
message names the command that recreates it.

Used in: every chapter's ``python -m helpers.<chapter>`` command and default-mode notebooks.
"""
from __future__ import annotations

import copy
import datetime as _dt
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

from .claims import Claim, ClaimsTable, MalformedClaimError
from .modes import check_mode

RUN_FIELDS = ("chapter", "schema", "command", "mode", "git_commit", "git_dirty", "device", "torch_version",
              "python_version", "seeds", "seconds", "date")

_UMASK = os.umask(0)
os.umask(_UMASK)


class ResultError(RuntimeError):
    """A result could not be read; the message says which command recreates it."""


class MissingResultError(ResultError, FileNotFoundError):
    """The result file does not exist."""


class CorruptResultError(ResultError, ValueError):
    """The result file exists but cannot be parsed."""


class StaleResultError(ResultError):
    """The result was written by another schema version of the chapter's code."""


def repo_root() -> Path:
    """The repository root (the folder holding ``helpers/``)."""
    return Path(__file__).resolve().parents[1]


def output_root(mode: str) -> Path:
    """Where a run in ``mode`` writes: ``results/`` (or ``$BOOK_RESULTS``) for full runs, else
    ``.scratch/<mode>/`` — so smoke and default runs never touch the committed results."""
    if check_mode(mode) == "full":
        return Path(os.environ.get("BOOK_RESULTS", repo_root() / "results"))
    return repo_root() / ".scratch" / mode


# -------------------------------------------------------------------------------- writing

def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename): on any
    failure ``path`` keeps its previous content (or stays absent) and no temp file is left."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes; got {type(data).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are ordinary shared files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str; got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode("utf-8"))


def jsonable(obj: Any) -> Any:
    """Tensors and arrays become lists, NumPy scalars Python numbers, NaN null, ±inf "inf"/"-inf"."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return jsonable((obj.detach().cpu() if isinstance(obj, torch.Tensor) else obj).tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return str(obj) if isinstance(obj, Path) else obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically (see :func:`jsonable` for the conversions)."""
    return atomic_write_text(path, json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` ``obj`` (a state dict, a dict of tensors) atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


# -------------------------------------------------------------------------------- provenance

def git_commit(root: Path | None = None) -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the checkout; ``("unknown", None)`` outside git. Changes under
    ``results/`` (a run's own outputs) and untracked files do not make the tree dirty.

    A copy of the code whose ``.git`` folder is missing or not its own (an archive, a copy sent to
    a GPU machine) names the commit it was copied from in the environment variable
    ``BOOK_GIT_COMMIT`` (7–40 hex digits), which then wins over git; whether that copy was
    changed is then unknown (``None``)."""
    named = os.environ.get("BOOK_GIT_COMMIT")
    if named is not None and not re.fullmatch(r"[0-9a-f]{7,40}", named):
        raise ValueError(f"BOOK_GIT_COMMIT must be a commit hash of 7 to 40 hex digits; got {named!r}")

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root or repo_root(), capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        head = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"))
    except (OSError, subprocess.SubprocessError):
        head, dirty = "unknown", None
    if named is None or head.startswith(named):                 # the checkout itself says more (dirty or not)
        return head, dirty
    if head != "unknown":
        warnings.warn(f"BOOK_GIT_COMMIT={named} is not the checkout's HEAD ({head[:12]}); recording {named}")
    return named, None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _argv_command() -> str:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        return " ".join(["python -m", spec.name.removesuffix(".__main__"), *sys.argv[1:]])
    return " ".join(["python", *sys.argv])


def provenance(*, chapter: str, schema: int, command: str, mode: str, device: str, seeds: Iterable[int],
               seconds: float, extra: Mapping[str, Any] | None = None,
               git: tuple[str, bool | None] | None = None) -> dict[str, Any]:
    """The ``run.json`` record of one run (fields :data:`RUN_FIELDS`, plus ``extra`` if given).

    ``git``: ``(commit, dirty)`` read when the run STARTED (default: read now) — the code that ran
    is the code at the start, whatever changes in the tree while a long run goes on."""
    mode = check_mode(mode)
    if not isinstance(seconds, (int, float)) or not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0; got {seconds!r}")
    commit, dirty = git_commit() if git is None else git
    record = dict(chapter=chapter, schema=int(schema), command=command, mode=mode, git_commit=commit,
                  git_dirty=dirty, device=device, torch_version=torch.__version__,
                  python_version=platform.python_version(), seeds=[int(s) for s in seeds],
                  seconds=round(float(seconds), 2), date=_now())
    if extra:
        record["extra"] = jsonable(dict(extra))
    return record


# -------------------------------------------------------------------------------- the store

@dataclass
class RunOutput:
    """What a chapter's full run returns: ``metrics`` (→ ``metrics.json``, everything its claims
    need), ``files`` (name → arrays dict for ``.npz``, any torch object for ``.pt``), the seeds,
    the device's name, the wall-clock seconds, ``git``: ``(commit, dirty)`` when it started
    (:func:`git_commit`; the command line fills it in), and ``extra``: anything more for
    ``run.json`` (e.g. how far a run that was cut short got)."""

    metrics: dict
    seeds: list[int]
    device: str
    seconds: float
    files: dict[str, Any] = field(default_factory=dict)
    git: tuple[str, bool | None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ResultStore:
    """The results folder of one chapter's run, ``<root>/<chapter>/`` (or ``<root>/<folder>/``).

    Args:
        chapter: the chapter's folder name (``'tree_cot'``, …).
        schema: version of the results' layout; bump it when the layout changes, so that old
            results are reported as stale instead of misread.
        module: the module whose ``--mode full`` run recreates the results, or
        command: how to recreate them, in words, with any command in backticks (exactly one of
            the two).
        root: the folder holding the chapter folders (default: the repository's ``results/``).
        folder: the folder's name when it is not the chapter's, for a second run of one chapter
            (e.g. ``'transient_ridge_cpu'``); its ``run.json`` still names ``chapter``.
    """

    def __init__(self, chapter: str, *, schema: int, module: str | None = None, command: str | None = None,
                 root: str | os.PathLike | None = None, folder: str | None = None):
        if not isinstance(chapter, str) or not chapter or "/" in chapter:
            raise ValueError(f"chapter must be a folder name like 'tree_cot'; got {chapter!r}")
        if folder is not None and (not isinstance(folder, str) or not folder or "/" in folder):
            raise ValueError(f"folder must be a folder name like 'transient_ridge_cpu' or None; got {folder!r}")
        if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
            raise ValueError(f"schema must be an int >= 1; got {schema!r}")
        if (module is None) == (command is None):
            raise ValueError("give exactly one of module (a 'python -m' module) "
                             "or command (how to recreate the results)")
        self.chapter, self.schema, self.module = chapter, schema, module
        self.command = command if command is not None else f"`python -m {module} --mode full`"
        self.root = Path(root) if root is not None else repo_root() / "results"
        self.dir = self.root / (folder or chapter)

    def path(self, name: str) -> Path:
        return self.dir / name

    def exists(self, name: str = "run.json") -> bool:
        return self.path(name).is_file()

    @staticmethod
    def shown(path) -> str:
        """``path`` as a reader should see it in a message: relative to the repository when inside it."""
        try:
            return str(Path(path).resolve().relative_to(repo_root().resolve()))
        except ValueError:
            return str(path)

    def _hint(self) -> str:
        hint = f"Recreate it with {self.command}"
        here, repo = self.dir.resolve(), repo_root().resolve()
        if here.is_relative_to(repo / "results"):
            hint += f", or restore the committed version with `git checkout -- {here.relative_to(repo)}`"
        return hint + "."

    # -- writing
    def save_json(self, name: str, obj: Any) -> Path:
        return write_json(self.path(name), obj)

    def save_arrays(self, name: str, arrays: Mapping[str, Any]) -> Path:
        """Save named arrays (NumPy or torch) as one compressed ``.npz`` file, atomically."""
        if not name.endswith(".npz"):
            raise ValueError(f"name must end with '.npz'; got {name!r}")
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
                                       for k, v in arrays.items()})
        return atomic_write_bytes(self.path(name), buffer.getvalue())

    def save_torch(self, name: str, obj: Any) -> Path:
        return save_torch(self.path(name), obj)

    def write_run(self, *, mode: str, device: str, seeds: Iterable[int], seconds: float,
                  command: str | None = None, extra: Mapping[str, Any] | None = None,
                  git: tuple[str, bool | None] | None = None) -> Path:
        """Write ``run.json`` (provenance) for a run that just finished (``git``: see :func:`provenance`)."""
        return write_json(self.path("run.json"), provenance(
            chapter=self.chapter, schema=self.schema, command=command or _argv_command(), mode=mode, device=device,
            seeds=seeds, seconds=seconds, extra=extra, git=git))

    def write_claims(self, claims: Iterable[Claim | Mapping[str, Any]]) -> Path:
        """Write ``claims.json``; every record needs the fields :data:`~helpers.claims.CLAIM_FIELDS`, ids unique."""
        parsed = self._claims(claims, "write_claims")
        ids = [c.id for c in parsed]
        if len(set(ids)) != len(ids):
            raise ValueError(f"claim ids must be unique; got {ids}")
        return write_json(self.path("claims.json"), [c.to_dict() for c in parsed])

    def save_run(self, run: RunOutput, claims: Iterable[Claim], *, mode: str) -> Path:
        """Write a full run's files, ``metrics.json``, ``claims.json`` and, last, ``run.json``.

        They are written into a staging folder beside the chapter's (``.<chapter>.staging-<pid>``),
        which then replaces the chapter's folder: a run killed while writing leaves the previous
        results whole (and at most a staging folder, removed by the next run). The swap is two
        renames, the old folder aside (``.<chapter>.old-<pid>``) and the new one in; a run killed
        between them leaves the old folder aside, and the next read or run puts it back
        (:meth:`recover`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.recover()
        for leftover in self.root.glob(f".{self.dir.name}.staging-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        staging = copy.copy(self)
        staging.dir = self.root / f".{self.dir.name}.staging-{os.getpid()}"
        staging.dir.mkdir()
        for name, obj in run.files.items():
            staging.save_arrays(name, obj) if name.endswith(".npz") else staging.save_torch(name, obj)
        staging.save_json("metrics.json", run.metrics)
        staging.write_claims(claims)
        staging.write_run(mode=mode, device=run.device, seeds=run.seeds, seconds=run.seconds, git=run.git,
                          extra=run.extra or None)
        old = self.root / f".{self.dir.name}.old-{os.getpid()}"
        if self.dir.exists():
            os.replace(self.dir, old)
        os.replace(staging.dir, self.dir)
        shutil.rmtree(old, ignore_errors=True)
        return self.path("run.json")

    def recover(self) -> None:
        """Finish a swap of :meth:`save_run` that was killed between its two renames: with the
        chapter's folder missing, the folder set aside (``.<chapter>.old-<pid>``) with the newest
        complete run (its ``run.json``) is put back; other such folders are removed."""
        if not self.root.is_dir():
            return
        aside = list(self.root.glob(f".{self.dir.name}.old-*"))
        complete = sorted((p for p in aside if (p / "run.json").is_file()),
                          key=lambda p: (p / "run.json").stat().st_mtime)
        if complete and not self.dir.exists():
            os.replace(complete[-1], self.dir)
            aside.remove(complete[-1])
        for leftover in aside:
            shutil.rmtree(leftover, ignore_errors=True)

    def check_writable(self) -> None:
        """Raise :class:`OSError` with a clear message unless results can be written under :attr:`root`."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-"):
                pass
        except OSError as e:
            raise OSError(f"cannot write results to {self.shown(self.root)}: {e.strerror or e}") from None

    def rederive_claims(self, evaluate: Callable[[dict], list[Claim]]) -> Path:
        """Re-judge the stored run: ``claims.json`` from ``evaluate(metrics.json)``, with no
        retraining; ``run.json`` records when and at which commit (``claims_rederived``)."""
        self.write_claims(evaluate(self.load_json("metrics.json")))
        run = self.read_run()
        commit, dirty = git_commit()
        run["claims_rederived"] = {"git_commit": commit, "git_dirty": dirty, "date": _now()}
        return write_json(self.path("run.json"), run)

    # -- reading
    def _load(self, name: str, parse: Callable[[bytes], Any], check_run: bool = True) -> Any:
        if check_run:
            self.read_run()
        path = self.path(name)
        if not path.is_file():
            raise MissingResultError(f"Result {self.shown(path)} does not exist. {self._hint()}")
        try:
            return parse(path.read_bytes())
        except Exception as e:  # json, numpy and torch raise several types for a damaged file
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise CorruptResultError(f"Result {self.shown(path)} is corrupt ({first}). {self._hint()}") from None

    def read_run(self) -> dict[str, Any]:
        """``run.json``, checked for its fields and for this code's schema version."""
        if not self.dir.exists():
            self.recover()
        run = self._load("run.json", json.loads, check_run=False)
        missing = [k for k in RUN_FIELDS if not isinstance(run, dict) or k not in run]
        if missing:
            raise CorruptResultError(f"{self.shown(self.path('run.json'))} lacks fields {missing}. {self._hint()}")
        if run["schema"] != self.schema:
            raise StaleResultError(f"Results in {self.shown(self.dir)} were written by schema version "
                                   f"{run['schema']}, but this code reads version {self.schema}. {self._hint()}")
        return run

    def load_json(self, name: str) -> Any:
        return self._load(name, json.loads)

    def load_arrays(self, name: str) -> dict[str, np.ndarray]:
        def parse(data: bytes) -> dict[str, np.ndarray]:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        return self._load(name, parse)

    def load_torch(self, name: str) -> Any:
        return self._load(name, lambda data: torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))

    def load_claims(self) -> ClaimsTable:
        """``claims.json`` as a :class:`ClaimsTable` (displays as a table in a notebook)."""
        records = self.load_json("claims.json")
        if not isinstance(records, list):
            raise CorruptResultError(f"{self.shown(self.path('claims.json'))} must hold a JSON list. {self._hint()}")
        return ClaimsTable(self._claims(records, str(self.path("claims.json"))), source=f"{self.chapter}: claims.json")

    def _claims(self, records: Iterable[Any], where: str) -> list[Claim]:
        try:
            return [c if isinstance(c, Claim) else Claim.from_dict(c, where) for c in records]
        except MalformedClaimError as e:
            raise CorruptResultError(f"{e}. {self._hint()}") from None
