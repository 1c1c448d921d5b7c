"""Claims: what a chapter's claims table is made of.

A :class:`Claim` is one verdict: the paper's statement (``kind="paper"``) or the book's own
experiment (``kind="extension"``), what the paper reports, what a run measured, the pass mark in
words (``criterion``) and whether it holds. Each chapter's ``helpers.<chapter>.claims`` module
makes them from a run's metrics; :class:`ClaimsTable` renders them (HTML in a notebook, Markdown
in text). A full run stores them in ``claims.json`` (:mod:`helpers.results`).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

CLAIM_FIELDS = ("id", "kind", "claim", "paper", "measured", "holds", "criterion")
OPTIONAL_FIELDS = ("why",)  # absent in records written before it existed
CLAIM_KINDS = ("paper", "extension")


class MalformedClaimError(ValueError):
    """A claim record lacks fields or is not a JSON object."""


def _jsonable(obj: Any) -> Any:
    from .results import jsonable as convert
    return convert(obj)


@dataclass(frozen=True)
class Claim:
    """One verdict of a chapter's claims table.

    ``kind`` is ``"paper"`` (``claim`` is the paper's statement, ``paper`` what the paper reports)
    or ``"extension"`` (the book's own experiment; ``paper`` then says what it relates to).
    ``criterion`` is the pass mark in words, decided before the run; ``measured`` what this run
    measured; ``holds`` whether the measurement meets the criterion.
    ``why``: for a claim that does not hold, one line computed from the measurement that says where
    it misses its pass mark (the table shows it; empty when it holds).
    """

    id: str
    claim: str
    paper: str
    measured: Any
    holds: bool
    criterion: str
    kind: str = "paper"
    why: str = ""

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"claim id must be a non-empty string; got {self.id!r}")
        if not isinstance(self.holds, (bool, np.bool_)):
            raise TypeError(f"claim {self.id!r}: holds must be a bool; got {type(self.holds).__name__}")
        if self.kind not in CLAIM_KINDS:
            raise ValueError(f"claim {self.id!r}: kind must be one of {CLAIM_KINDS}; got {self.kind!r}")
        if not isinstance(self.criterion, str) or not self.criterion.strip():
            raise ValueError(f"claim {self.id!r}: criterion must say the pass mark in words; got {self.criterion!r}")
        if not isinstance(self.why, str):
            raise TypeError(f"claim {self.id!r}: why must be a string; got {type(self.why).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "claim": self.claim, "paper": self.paper,
                "measured": _jsonable(self.measured), "holds": bool(self.holds), "criterion": self.criterion,
                "why": "" if self.holds else self.why}

    @classmethod
    def from_dict(cls, record: Any, where: str = "claims") -> "Claim":
        if not isinstance(record, Mapping):
            raise MalformedClaimError(f"{where}: each claim must be a JSON object; got {type(record).__name__}")
        missing = [k for k in CLAIM_FIELDS if k not in record]
        if missing:
            raise MalformedClaimError(f"{where}: claim {record.get('id', '?')!r} lacks fields {missing}")
        return cls(**{k: record[k] for k in CLAIM_FIELDS + OPTIONAL_FIELDS if k in record})


def _cell(value: Any) -> str:
    """A measured value as short text: floats to 4 significant digits, dicts as ``k: v`` lists."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    return str(value)


MEASURED_MAX_CHARS = 160  # a table cell shows this much of a measured value; claims.json keeps it all


def _short(value: Any, limit: int = MEASURED_MAX_CHARS) -> str:
    """:func:`_cell`, cut at ``limit`` characters (at a comma where possible) with "…"."""
    text = _cell(value)
    if len(text) <= limit:
        return text
    cut = text.rfind(", ", 0, limit)
    return text[:cut if cut > limit // 2 else limit] + " …"


class ClaimsTable:
    """A chapter's claims; shows as an HTML table in notebooks and as Markdown in text.

    The verdict comes first (so it stays on screen on a phone), each measured value is cut to
    :data:`MEASURED_MAX_CHARS` characters (the full record stays in ``claims.json``), and a
    line above the table counts the claims that hold.
    """

    HEADER = ("holds?", "claim", "kind", "measured here", "criterion", "paper / relates to")

    def __init__(self, claims: Iterable[Claim | Mapping[str, Any]], source: str = ""):
        self.claims = [c if isinstance(c, Claim) else Claim.from_dict(c) for c in claims]
        self.source = source

    def __len__(self) -> int:
        return len(self.claims)

    def __getitem__(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(f"no claim with id {claim_id!r}; ids are {[c.id for c in self.claims]}")

    def summary(self) -> str:
        """``"N of M claims hold."`` (``"The claim holds."`` / ``"The claim does not hold."`` for one)."""
        held = sum(bool(c.holds) for c in self.claims)
        if len(self.claims) == 1:
            return "The claim holds." if held else "The claim does not hold."
        return f"{held} of {len(self.claims)} claims hold."

    @staticmethod
    def why_not(c: Claim) -> str:
        """The line under a claim that does not hold: its own ``why``, or else its measurement
        against the criterion."""
        if c.holds:
            return ""
        return c.why or f"measured {_short(c.measured, 80)}; the pass mark is: {c.criterion}"

    def rows(self) -> list[tuple[str, ...]]:
        return [("✅ yes" if c.holds else "❌ no", f"{c.id}: {c.claim}", c.kind, _short(c.measured), c.criterion,
                 str(c.paper)) for c in self.claims]

    def _repr_markdown_(self) -> str:
        def esc(s: str) -> str:
            return s.replace("|", "\\|").replace("\n", " ")
        lines = [f"**{self.summary()}**", "", "| " + " | ".join(self.HEADER) + " |", "|" + "---|" * len(self.HEADER)]
        rows = []
        for c, row in zip(self.claims, self.rows()):
            why = self.why_not(c)
            claim = row[1] + (f" — *why not:* {why}" if why else "")
            rows.append((row[0], claim) + row[2:])
        return "\n".join(lines + ["| " + " | ".join(esc(x) for x in row) + " |" for row in rows])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in self.HEADER)
        body = []
        for c, row in zip(self.claims, self.rows()):
            cells = [html.escape(x) for x in row]
            why = self.why_not(c)
            if why:
                cells[1] += f'<br><em class="claim-why">why not: {html.escape(why)}</em>'
            # data-label: the column's name, shown beside each cell where the rows stack (narrow screens)
            body.append("<tr>" + "".join(f'<td data-label="{h}">{x}</td>' for h, x in zip(self.HEADER, cells))
                        + "</tr>")
        caption = f"<caption>{html.escape(self.source)}</caption>" if self.source else ""
        return (f"<p><strong>{html.escape(self.summary())}</strong></p>"
                f'<div class="claims-table-wrap"><table class="claims-table">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table></div>")

    def __str__(self) -> str:
        return self._repr_markdown_()


def claims_table(claims: Iterable[Claim | Mapping[str, Any]], source: str = "") -> ClaimsTable:
    """Render claims (records or :class:`Claim`) as a table."""
    return ClaimsTable(claims, source)
