"""Results I/O: the contract between full runs, notebooks and checks.

A chapter's full run writes ``results/<chapter>/``:

- data files (JSON, ``.npz`` arrays, small ``.pt`` checkpoints), each written atomically;
- ``run.json`` — provenance written by the code: git commit, command, mode, device, torch
  version, seeds, wall-clock seconds, date, and the chapter's result ``schema`` version;
- ``claims.json`` — a list of ``{"id", "claim", "paper", "measured", "holds"}`` records
  (plus an optional ``"criterion"``), rendered in the chapter by :func:`claims_table`.

Reading a missing, corrupt or stale result raises a :class:`ResultError` whose message names the
command that recreates it.

Used in: every chapter's ``python -m helpers.<chapter>`` command and default-mode notebooks;
``book/getting_started.ipynb`` shows a round trip.
"""
from __future__ import annotations

import datetime as _dt
import html
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from .modes import check_mode

CLAIM_FIELDS = ("id", "claim", "paper", "measured", "holds")
RUN_FIELDS = (
    "chapter", "schema", "command", "mode", "git_commit", "git_dirty", "device", "torch_version",
    "python_version", "seeds", "seconds", "date",
)


_UMASK = os.umask(0)
os.umask(_UMASK)


class ResultError(RuntimeError):
    """A result could not be read; the message says which command recreates it."""


class MissingResultError(ResultError, FileNotFoundError):
    """The result file does not exist."""


class CorruptResultError(ResultError):
    """The result file exists but cannot be parsed."""


class StaleResultError(ResultError):
    """The result was written by another schema version of the chapter's code."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def repo_root() -> Path:
    """The repository root (the folder holding ``helpers/``)."""
    return Path(__file__).resolve().parents[1]


def output_root(mode: str) -> Path:
    """Where a run in ``mode`` writes: ``results/`` for full runs, ``.scratch/<mode>/`` otherwise.

    Only full runs may replace the committed results; smoke and default runs of the same command
    write to an ignored scratch folder so that CI never touches ``results/``. The environment
    variable ``BOOK_RESULTS`` overrides the full-mode root.
    """
    mode = check_mode(mode)
    if mode == "full":
        return Path(os.environ.get("BOOK_RESULTS", repo_root() / "results"))
    return repo_root() / ".scratch" / mode


# --------------------------------------------------------------------------------------------
# atomic writes


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temp file in the same folder, fsync, rename.

    If anything fails mid-write, ``path`` keeps its previous content (or stays absent) and the
    temp file is removed.
    """
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
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str; got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode("utf-8"))


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (tensors and arrays become lists, NaN becomes null)."""
    text = json.dumps(_to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` ``obj`` (a state dict, a dict of tensors) atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


# --------------------------------------------------------------------------------------------
# provenance


def git_commit(root: Path | None = None) -> tuple[str, bool | None]:
    """The current commit hash and whether the working tree has uncommitted changes.

    Changes under ``results/`` do not count: a full run rewrites its own results before it
    writes ``run.json``, and those are its outputs, not the code that made them. Untracked
    files do not count either. Returns ``("unknown", None)`` outside a git checkout or without git.
    """
    root = repo_root() if root is None else root
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"], cwd=root,
            capture_output=True,
            text=True, timeout=10, check=True,
        ).stdout.strip()
        return commit, bool(status)
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def provenance(
    *, chapter: str, schema: int, command: str, mode: str, device: str, seeds: Iterable[int],
    seconds: float, extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``run.json`` record for one run (see :data:`RUN_FIELDS`)."""
    mode = check_mode(mode)
    if not isinstance(seconds, (int, float)) or not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0; got {seconds!r}")
    commit, dirty = git_commit()
    record = {
        "chapter": chapter,
        "schema": int(schema),
        "command": command,
        "mode": mode,
        "git_commit": commit,
        "git_dirty": dirty,
        "device": device,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "seeds": [int(s) for s in seeds],
        "seconds": round(float(seconds), 2),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        record["extra"] = _to_jsonable(dict(extra))
    return record


# --------------------------------------------------------------------------------------------
# claims


@dataclass(frozen=True)
class Claim:
    """One measured claim: the paper's statement, what the paper reports, what we measured."""

    id: str
    claim: str
    paper: str
    measured: Any
    holds: bool
    criterion: str = ""

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"claim id must be a non-empty string; got {self.id!r}")
        if not isinstance(self.holds, (bool, np.bool_)):
            raise TypeError(f"claim {self.id!r}: holds must be a bool; got {type(self.holds).__name__}")

    def to_dict(self) -> dict[str, Any]:
        record = {"id": self.id, "claim": self.claim, "paper": self.paper,
                  "measured": _to_jsonable(self.measured), "holds": bool(self.holds)}
        if self.criterion:
            record["criterion"] = self.criterion
        return record


def _claim_from_dict(record: Any, where: str) -> Claim:
    if not isinstance(record, Mapping):
        raise CorruptResultError(f"{where}: each claim must be a JSON object; got {type(record).__name__}")
    missing = [k for k in CLAIM_FIELDS if k not in record]
    if missing:
        raise CorruptResultError(f"{where}: claim {record.get('id', '?')!r} lacks fields {missing}")
    return Claim(id=record["id"], claim=record["claim"], paper=record["paper"], measured=record["measured"],
                 holds=bool(record["holds"]), criterion=record.get("criterion", ""))


class ClaimsTable:
    """The claims of a chapter, rendered as an HTML table in notebooks and as Markdown in text."""

    def __init__(self, claims: Iterable[Claim], source: str = ""):
        self.claims = list(claims)
        self.source = source

    def __len__(self) -> int:
        return len(self.claims)

    def __getitem__(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(f"no claim with id {claim_id!r}; ids are {[c.id for c in self.claims]}")

    @staticmethod
    def _measured(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, Mapping):
            return ", ".join(f"{k}: {ClaimsTable._measured(v)}" for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return ", ".join(ClaimsTable._measured(v) for v in value)
        return str(value)

    def _repr_markdown_(self) -> str:
        lines = ["| claim | paper | measured here | holds? |", "|---|---|---|---|"]
        for c in self.claims:
            cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
            crit = f" (criterion: {c.criterion})" if c.criterion else ""
            lines.append(f"| **{cell(c.id)}** {cell(c.claim)} | {cell(c.paper)} | "
                         f"{cell(self._measured(c.measured))}{cell(crit)} | {'✅ yes' if c.holds else '❌ no'} |")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = []
        for c in self.claims:
            crit = f"<br><small>criterion: {html.escape(c.criterion)}</small>" if c.criterion else ""
            verdict = "✅ yes" if c.holds else "❌ no"
            rows.append(
                f"<tr><td><b>{html.escape(c.id)}</b><br>{html.escape(str(c.claim))}</td>"
                f"<td>{html.escape(str(c.paper))}</td>"
                f"<td>{html.escape(self._measured(c.measured))}{crit}</td><td>{verdict}</td></tr>"
            )
        caption = f"<caption>{html.escape(self.source)}</caption>" if self.source else ""
        return ("<table>" + caption + "<thead><tr><th>claim</th><th>paper</th><th>measured here</th>"
                "<th>holds?</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")

    def __str__(self) -> str:
        return self._repr_markdown_()


# --------------------------------------------------------------------------------------------
# the store


class ResultStore:
    """The results folder of one chapter.

    Args:
        chapter: the chapter's folder name (``'tree_cot'``, ``'multistep_gd'``, ...).
        schema: the version of the results' layout; bump it when the layout changes so that
            old results are reported as stale instead of misread.
        module: the module whose ``--mode full`` run recreates the results, or
        command: how to recreate them, in words (give exactly one of the two).
        root: the folder holding the chapter folders (default: ``results/`` of the repository).
    """

    def __init__(self, chapter: str, *, schema: int, module: str | None = None, command: str | None = None,
                 root: str | os.PathLike | None = None):
        if not isinstance(chapter, str) or not chapter or "/" in chapter:
            raise ValueError(f"chapter must be a folder name like 'tree_cot'; got {chapter!r}")
        if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
            raise ValueError(f"schema must be an int >= 1; got {schema!r}")
        if (module is None) == (command is None):
            raise ValueError("give exactly one of module (a 'python -m' module) or command (how to recreate the results)")
        self.chapter = chapter
        self.module = module
        self.schema = schema
        self.command = command if command is not None else f"python -m {module} --mode full"
        self.root = Path(root) if root is not None else repo_root() / "results"
        self.dir = self.root / chapter

    def path(self, name: str) -> Path:
        return self.dir / name

    def _hint(self) -> str:
        hint = f"Recreate it with `{self.command}`"
        committed = repo_root() / "results"
        if self.dir.resolve().is_relative_to(committed.resolve()):
            hint += f", or restore the committed version with `git checkout -- {self.dir.relative_to(repo_root())}`"
        return hint + "."

    # -- writing
    def save_json(self, name: str, obj: Any) -> Path:
        return write_json(self.path(name), obj)

    def save_arrays(self, name: str, arrays: Mapping[str, Any]) -> Path:
        """Save named arrays (NumPy or torch) as one compressed ``.npz`` file, atomically."""
        if not name.endswith(".npz"):
            raise ValueError(f"name must end with '.npz'; got {name!r}")
        buffer = io.BytesIO()
        as_numpy = {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
                    for k, v in arrays.items()}
        np.savez_compressed(buffer, **as_numpy)
        return atomic_write_bytes(self.path(name), buffer.getvalue())

    def save_torch(self, name: str, obj: Any) -> Path:
        return save_torch(self.path(name), obj)

    def write_run(self, *, mode: str, device: str, seeds: Iterable[int], seconds: float,
                  command: str | None = None, extra: Mapping[str, Any] | None = None) -> Path:
        """Write ``run.json`` (provenance) for a run that just finished."""
        record = provenance(chapter=self.chapter, schema=self.schema, command=command or self._argv_command(),
                            mode=mode, device=device, seeds=seeds, seconds=seconds, extra=extra)
        return write_json(self.path("run.json"), record)

    @staticmethod
    def _argv_command() -> str:
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name:
            return " ".join(["python -m", spec.name.removesuffix(".__main__"), *sys.argv[1:]])
        return " ".join(["python", *sys.argv])

    def write_claims(self, claims: Iterable[Claim | Mapping[str, Any]]) -> Path:
        """Write ``claims.json``; every record needs the fields :data:`CLAIM_FIELDS`."""
        parsed = [c if isinstance(c, Claim) else _claim_from_dict(c, "write_claims") for c in claims]
        ids = [c.id for c in parsed]
        if len(set(ids)) != len(ids):
            raise ValueError(f"claim ids must be unique; got {ids}")
        return write_json(self.path("claims.json"), [c.to_dict() for c in parsed])

    # -- reading
    def _read_bytes(self, name: str) -> bytes:
        path = self.path(name)
        if not path.is_file():
            raise MissingResultError(f"Result {path} does not exist. {self._hint()}")
        return path.read_bytes()

    def _read_json_file(self, name: str) -> Any:
        data = self._read_bytes(name)
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptResultError(f"Result {self.path(name)} is corrupt ({_first_line(e)}). {self._hint()}") from None

    def read_run(self) -> dict[str, Any]:
        """``run.json``, checked for its fields and for this code's schema version."""
        run = self._read_json_file("run.json")
        if not isinstance(run, dict) or any(k not in run for k in RUN_FIELDS):
            missing = [k for k in RUN_FIELDS if not isinstance(run, dict) or k not in run]
            raise CorruptResultError(f"{self.path('run.json')} lacks fields {missing}. {self._hint()}")
        if run["schema"] != self.schema:
            raise StaleResultError(
                f"Results in {self.dir} were written by schema version {run['schema']}, but this code reads "
                f"version {self.schema}. {self._hint()}"
            )
        return run

    def load_json(self, name: str) -> Any:
        self.read_run()
        return self._read_json_file(name)

    def load_arrays(self, name: str) -> dict[str, np.ndarray]:
        self.read_run()
        data = self._read_bytes(name)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (ValueError, OSError, EOFError) as e:
            raise CorruptResultError(f"Result {self.path(name)} is corrupt ({_first_line(e)}). {self._hint()}") from None

    def load_torch(self, name: str) -> Any:
        self.read_run()
        data = self._read_bytes(name)
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for a damaged file
            raise CorruptResultError(f"Result {self.path(name)} is corrupt ({_first_line(e)}). {self._hint()}") from None

    def load_claims(self) -> ClaimsTable:
        """``claims.json`` as a :class:`ClaimsTable` (displays as a table in a notebook)."""
        self.read_run()
        records = self._read_json_file("claims.json")
        if not isinstance(records, list):
            raise CorruptResultError(f"{self.path('claims.json')} must hold a JSON list. {self._hint()}")
        where = str(self.path("claims.json"))
        return ClaimsTable([_claim_from_dict(r, where) for r in records], source=f"{self.chapter}: claims.json")

    def exists(self, name: str = "run.json") -> bool:
        return self.path(name).is_file()


def claims_table(claims: Iterable[Claim | Mapping[str, Any]], source: str = "") -> ClaimsTable:
    """Render claims (records or :class:`Claim`) as a table."""
    return ClaimsTable([c if isinstance(c, Claim) else _claim_from_dict(c, "claims_table") for c in claims], source)
