"""The prose says what the claims tables say: every "N of M claims hold" in a chapter's pages,
its overview and its paragraph of the introduction is the count of the committed claims.json."""
from __future__ import annotations

import json
import re

import pytest

from helpers.results import repo_root

ROOT = repo_root()
CHAPTERS = {"tree_cot": "**Chapter 1", "multistep_gd": "**Chapter 2", "transient_ridge": "**Chapter 3",
            "one_lens": "**Closing"}
NUMBER = r"\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
TALLY = re.compile(rf"\b({NUMBER})\s+of\s+(?:its|the\s+chapter's|the)\s+({NUMBER})\s+claims?\s+holds?",
                   re.IGNORECASE)
WORDS = {w: i for i, w in enumerate(NUMBER.split("|")[1:], start=1)}


def _count(text: str) -> int:
    return int(text) if text.isdigit() else WORDS[text.lower()]


def _tally(chapter: str) -> tuple[int, int]:
    claims = json.loads((ROOT / "results" / chapter / "claims.json").read_text())
    return sum(bool(c["holds"]) for c in claims), len(claims)


def _intro_paragraph(chapter: str) -> str:
    text = (ROOT / "book" / "intro.md").read_text()
    start = text.index(CHAPTERS[chapter])
    ends = [i for i in (text.find(m, start + 1) for m in CHAPTERS.values()) if i > start]
    return text[start:min(ends, default=len(text))]


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_every_tally_in_the_prose_is_the_committed_claims_table(chapter):
    if not (ROOT / "results" / chapter / "claims.json").is_file():
        pytest.skip("no committed results")
    texts = {f"book/intro.md ({CHAPTERS[chapter]})": _intro_paragraph(chapter)}
    for path in sorted((ROOT / "book" / chapter).glob("*.md")):   # the overview and the pages' .nb.md
        texts[str(path.relative_to(ROOT))] = path.read_text()
    found = {where: [tuple(map(_count, m)) for m in TALLY.findall(text)] for where, text in texts.items()}
    assert found[f"book/intro.md ({CHAPTERS[chapter]})"], "the introduction's paragraph gives no tally"
    assert found[f"book/{chapter}/overview.md"], "the overview gives no tally"
    want = _tally(chapter)
    wrong = {where: t for where, ts in found.items() for t in ts if t != want}
    assert not wrong, f"the committed claims table has {want[0]} of {want[1]} holding; the prose says {wrong}"


def test_the_tally_pattern_reads_the_book_s_phrasings():
    text = "12 of its 15 claims hold; 1 of the\nchapter's 9 claims holds; 7 of the 19\nclaims hold; One of nine claims"
    assert [tuple(map(_count, m)) for m in TALLY.findall(text)] == [(12, 15), (1, 9), (7, 19)]
    assert [tuple(map(_count, m)) for m in TALLY.findall("One of the chapter's nine claims holds")] == [(1, 9)]
