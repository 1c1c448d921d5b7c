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


GPU_TALLY = re.compile(rf"\b({NUMBER})\s+of\s+the\s+GPU\s+run's\s+({NUMBER})\s+claims?\s+holds?", re.IGNORECASE)


def test_every_tally_of_chapter_3_s_gpu_run_is_its_committed_claims_table():
    """Chapter 3's run (``results/transient_ridge/``) is its GPU configuration's; where a page names it
    "the GPU run" beside the CPU configuration's, its tally reads "N of the GPU run's M claims hold"."""
    want = _tally("transient_ridge")
    texts = {"book/intro.md": _intro_paragraph("transient_ridge"), "README.md": (ROOT / "README.md").read_text()}
    pages = sorted((ROOT / "book" / "transient_ridge").glob("*.md"))
    texts.update({str(p.relative_to(ROOT)): p.read_text() for p in pages})
    found = {where: [tuple(map(_count, m)) for m in GPU_TALLY.findall(text)] for where, text in texts.items()}
    assert found["book/transient_ridge/06_two_scales.nb.md"], "page 6 gives no tally of the GPU run"
    wrong = {where: t for where, ts in found.items() for t in ts if t != want}
    assert not wrong, f"the GPU run's claims table has {want[0]} of {want[1]} holding; the prose says {wrong}"
    assert GPU_TALLY.findall("5 of the GPU\nrun's 18 claims hold") == [("5", "18")]
    # and the CPU configuration's run (results/transient_ridge_cpu/), wherever it is tallied: "N of the CPU run's M"
    cpu = _tally("transient_ridge_cpu")
    said = {where: [tuple(map(_count, m)) for m in re.findall(rf"\b({NUMBER}) of the CPU run's ({NUMBER})\b", text)]
            for where, text in texts.items()}
    assert said["book/transient_ridge/06_two_scales.nb.md"], "page 6 gives no tally of the CPU run"
    assert all(t == cpu for ts in said.values() for t in ts), (said, cpu)


def test_the_tally_pattern_reads_the_book_s_phrasings():
    text = "12 of its 15 claims hold; 1 of the\nchapter's 9 claims holds; 7 of the 19\nclaims hold; One of nine claims"
    assert [tuple(map(_count, m)) for m in TALLY.findall(text)] == [(12, 15), (1, 9), (7, 19)]
    assert [tuple(map(_count, m)) for m in TALLY.findall("One of the chapter's nine claims holds")] == [(1, 9)]


# ---------------------------------------------------------------------------------------------
# the verdicts in brief: the numbers the overviews and the introduction quote, recomputed from the
# committed claims tables, so that a new full run cannot leave them stale


def _claims(chapter: str) -> dict:
    return {c["id"]: c for c in json.loads((ROOT / "results" / chapter / "claims.json").read_text())}


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _tree_cot() -> list[tuple[str, str]]:
    c = _claims("tree_cot")
    main = {s["seed"]: s for s in c["theory_forward_heads_specialise"]["measured"]["per seed"]}
    long = {s["seed"]: s for s in c["heads_split_with_longer_training"]["measured"]["per seed"]}
    from helpers.tree_cot.analysis import role_assignment  # the unrounded strengths (claims.json rounds to 3 places)
    runs = json.loads((ROOT / "results" / "tree_cot" / "metrics.json").read_text())["theory"]["forward_broken"]["runs"]
    strength = [role_assignment(r["log"]["roles"][-1])["strength"] for r in runs]
    assert [round(x, 3) for x in strength] == [s["strength"] for s in main.values()]
    ov = "book/tree_cot/overview.md"
    return [(ov, f"({min(strength):.2f} to {max(strength):.2f}) after 4000 steps"),
            (ov, f"split cleanly ({long[4]['end']:.2f}, {long[5]['end']:.2f},"),
            (ov, f"({long[3]['at step 4000']:.2f} at 4000 steps, {long[3]['end']:.2f} at the end)"),
            (ov, f"({long[1]['peak']:.2f} at its peak, {long[1]['end']:.2f} at the end)"),
            (ov, f"({long[2]['at step 4000']:.2f} → {long[2]['end']:.2f})")]


def _multistep_gd() -> list[tuple[str, str]]:
    c = _claims("multistep_gd")
    mean = c["cot_beats_no_cot_mean[d=10, n=20]"]["measured"]
    median = c["cot_beats_no_cot_median[d=10, n=20]"]["measured"]
    kappa = c["covariances_keep_cot_gain"]["measured"]
    gain = dict(zip(kappa["κ"], kappa["no-CoT/CoT mean ratio"]))
    ov, intro = "book/multistep_gd/overview.md", "book/intro.md"
    return [(ov, f"{mean['ratio of means']:.1f}× larger on the mean, {median['ratio of medians']:.1f}× on the median"),
            (ov, f"only {gain[5]:.1f}× and {gain[10]:.2f}× below"),
            (intro, f"after {median['first k with 100×']} steps on the median and "
                    f"{mean['first k with 100×']} on the mean")]


def _transient_ridge() -> list[tuple[str, str]]:
    c = _claims("transient_ridge")
    ends = c["task_diversity_threshold"]["measured"]["final Δ to (ridge, dMMSE_M) / Bayes gap (first seed)"]
    nearest = min(ends, key=lambda M: ends[M][0])
    inf = c["infinite_M_learns_ridge"]["measured"]["final Δ ridge / Δ(dMMSE_1, ridge) (each seed)"]
    kinds = c["transient_ridge"]["measured"]["transient per M (each seed)"]
    dips = c["transient_ridge"]["measured"]["(OOD minimum above ridge, later rise) / gap, smoothed"]
    partial = [M for M, k in kinds.items() if set(k) == {"partial dip"}]     # in every seed

    def span(xs) -> str:
        lo, hi = _pct(min(xs)), _pct(max(xs))
        return lo if lo == hi else f"{lo.rstrip('%')}–{hi}"

    low, rise = (span([d[i] for M in partial for d in dips[M]]) for i in (0, 1))
    where = f"$M = {partial[0]}$, {', '.join(partial[1:-1])} and {partial[-1]}"     # e.g. "$M = 16$, 24 and 32"
    ov, page, intro = "book/transient_ridge/overview.md", "book/transient_ridge/02_the_sweep.nb.md", "book/intro.md"
    return [(ov, f"At {where}, in every seed, the loss shows what the paper calls a partial dip: it falls part of "
                 f"the way (to {low} of the gap between ridge's loss and dMMSE$_M$'s) and then rises by {rise} of it"),
            (ov, f"$M = \\infty$ ends {span(inf)} of the gap from ridge"),
            (page, f"partial dips at {where}, in every seed"),
            (page, f"dips to {low} of the gap above ridge and then rises by {rise} of the gap"),
            (page, f"the nearest, $M = {nearest}$, ends {_pct(ends[nearest][0])} of the gap from it"),
            (page, f"It ends {span(inf)} of the Bayes gap from ridge"),
            (intro, f"($M = {nearest}$) ends {_pct(ends[nearest][0])} of the Bayes gap from it")]


QUOTES = {"tree_cot": _tree_cot, "multistep_gd": _multistep_gd, "transient_ridge": _transient_ridge}


@pytest.mark.parametrize("chapter", list(QUOTES))
def test_the_numbers_the_verdicts_quote_are_the_committed_ones(chapter):
    if not (ROOT / "results" / chapter / "claims.json").is_file():
        pytest.skip("no committed results")
    missing = []
    for path, quote in QUOTES[chapter]():
        text = " ".join((ROOT / path).read_text().split())      # line breaks read as spaces
        if quote not in text:
            missing.append(f"{path}: {quote!r}")
    assert not missing, "the prose no longer says what the committed run measured:\n" + "\n".join(missing)
