import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import results
from helpers.claims import CLAIM_FIELDS, Claim, claims_table
from helpers.results import (
    RUN_FIELDS,
    CorruptResultError,
    MissingResultError,
    ResultStore,
    RunOutput,
    StaleResultError,
    atomic_write_bytes,
    atomic_write_text,
    output_root,
    write_json,
)

# ---------------------------------------------------------------- atomic writes

def test_atomic_write_creates_folders_and_writes(tmp_path):
    path = atomic_write_text(tmp_path / "a" / "b" / "x.txt", "hello")
    assert path.read_text() == "hello"


def test_atomic_write_survives_a_failure_mid_write(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    path.write_text("old content")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new content that never lands")
    assert path.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left behind


def test_atomic_write_survives_an_interrupt(tmp_path, monkeypatch):
    path = tmp_path / "x.bin"

    def interrupted_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, b"data")
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_atomic_write_rejects_non_bytes(tmp_path):
    with pytest.raises(TypeError, match="data must be bytes"):
        atomic_write_bytes(tmp_path / "x", "text")
    with pytest.raises(TypeError, match="text must be str"):
        atomic_write_text(tmp_path / "x", b"bytes")


def test_write_json_converts_tensors_arrays_and_non_finite(tmp_path):
    path = write_json(tmp_path / "x.json", {"t": torch.tensor([1.0, 2.0]), "a": np.arange(3), "n": np.int64(4),
                                            "nan": float("nan"), "inf": float("inf")})
    assert json.loads(path.read_text()) == {"t": [1.0, 2.0], "a": [0, 1, 2], "n": 4, "nan": None, "inf": "inf"}


# ---------------------------------------------------------------- provenance

def store_in(tmp_path, schema=1):
    return ResultStore("demo", module="helpers.demo", schema=schema, root=tmp_path)


def test_run_json_has_every_provenance_field(tmp_path):
    store = store_in(tmp_path)
    store.write_run(mode="full", device="cpu", seeds=[0, 1], seconds=12.345, extra={"note": "x"})
    run = json.loads((tmp_path / "demo" / "run.json").read_text())
    assert set(RUN_FIELDS) <= set(run)
    assert run["mode"] == "full" and run["seeds"] == [0, 1] and run["seconds"] == 12.35
    assert run["schema"] == 1 and run["chapter"] == "demo" and run["torch_version"] == torch.__version__
    assert run["extra"] == {"note": "x"}
    assert store.read_run()["device"] == "cpu"


@pytest.fixture(autouse=True)
def _no_named_commit(monkeypatch):
    """These tests read git itself: a commit named for a copy (BOOK_GIT_COMMIT, as on a GPU machine) would win."""
    monkeypatch.delenv("BOOK_GIT_COMMIT", raising=False)


def test_run_json_records_the_git_commit(tmp_path):
    expected = subprocess.run(["git", "rev-parse", "HEAD"], cwd=results.repo_root(), capture_output=True, text=True)
    commit, dirty = results.git_commit()
    if expected.returncode == 0:
        assert commit == expected.stdout.strip() and isinstance(dirty, bool)
    else:
        assert commit == "unknown"


def test_dirty_flag_ignores_results_but_not_code(tmp_path):
    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    (repo / "code.py").write_text("x = 1\n")
    (repo / "results" / "metrics.json").write_text("{}\n")
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, capture_output=True, text=True, check=True)
    try:
        git("init", "-q")
        git("add", ".")
        git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "init")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available")
    assert results.git_commit(repo)[1] is False
    (repo / "results" / "metrics.json").write_text('{"new": 1}\n')  # a run rewrote its outputs
    assert results.git_commit(repo)[1] is False
    (repo / "code.py").write_text("x = 2\n")  # the code changed
    assert results.git_commit(repo)[1] is True


def test_git_commit_outside_a_repository(tmp_path, monkeypatch):
    monkeypatch.delenv("BOOK_GIT_COMMIT", raising=False)
    assert results.git_commit(tmp_path) == ("unknown", None)
    monkeypatch.setenv("BOOK_GIT_COMMIT", "74584c4")            # a copy without .git names its commit
    assert results.git_commit(tmp_path) == ("74584c4", None)
    with pytest.warns(UserWarning, match="is not the checkout's HEAD"):   # and wins over a .git not its own
        assert results.git_commit() == ("74584c4", None)
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                          cwd=results.repo_root()).stdout.strip()
    monkeypatch.setenv("BOOK_GIT_COMMIT", head[:10])            # the checkout's own commit: git says more
    assert results.git_commit()[0] == head
    for bad in ("", "main", "74584c4; rm", "G" * 40):
        monkeypatch.setenv("BOOK_GIT_COMMIT", bad)
        with pytest.raises(ValueError, match="BOOK_GIT_COMMIT must be a commit hash"):
            results.git_commit(tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="fast"), "mode must be one of"),
    (dict(seconds=-1.0), "seconds must be a finite number >= 0"),
    (dict(seconds=float("nan")), "seconds must be a finite number >= 0"),
])
def test_provenance_bad_input(tmp_path, kwargs, match):
    args = dict(mode="full", device="cpu", seeds=[0], seconds=1.0) | kwargs
    with pytest.raises(ValueError, match=match):
        store_in(tmp_path).write_run(**args)


def test_output_root_keeps_smoke_and_default_runs_out_of_results(monkeypatch):
    monkeypatch.delenv("BOOK_RESULTS", raising=False)
    assert output_root("full") == results.repo_root() / "results"
    assert output_root("smoke") == results.repo_root() / ".scratch" / "smoke"
    assert output_root("default") == results.repo_root() / ".scratch" / "default"
    with pytest.raises(ValueError, match="mode must be one of"):
        output_root("huge")


# ---------------------------------------------------------------- reading and its errors

def test_round_trip_json_arrays_torch(tmp_path):
    store = store_in(tmp_path)
    store.write_run(mode="full", device="cpu", seeds=[0], seconds=1.0)
    store.save_json("m.json", {"loss": [1.0, 0.5]})
    store.save_arrays("a.npz", {"x": np.arange(6).reshape(2, 3), "t": torch.ones(2)})
    store.save_torch("w.pt", {"w": torch.eye(2)})
    assert store.load_json("m.json") == {"loss": [1.0, 0.5]}
    arrays = store.load_arrays("a.npz")
    assert np.array_equal(arrays["x"], np.arange(6).reshape(2, 3)) and np.array_equal(arrays["t"], np.ones(2))
    assert torch.equal(store.load_torch("w.pt")["w"], torch.eye(2))


def test_missing_result_names_the_command(tmp_path):
    store = store_in(tmp_path)
    with pytest.raises(MissingResultError, match=r"run\.json does not exist.*python -m helpers\.demo --mode full"):
        store.load_json("m.json")
    store.write_run(mode="full", device="cpu", seeds=[0], seconds=1.0)
    with pytest.raises(MissingResultError, match=r"m\.json does not exist.*python -m helpers\.demo --mode full"):
        store.load_json("m.json")


def test_missing_result_is_also_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        store_in(tmp_path).read_run()


@pytest.mark.parametrize("name, loader, content", [
    ("m.json", "load_json", b"{not json"),
    ("a.npz", "load_arrays", b"not an npz file"),
    ("w.pt", "load_torch", b"not a torch file"),
])
def test_corrupt_result_names_the_command(tmp_path, name, loader, content):
    store = store_in(tmp_path)
    store.write_run(mode="full", device="cpu", seeds=[0], seconds=1.0)
    (tmp_path / "demo" / name).write_bytes(content)
    with pytest.raises(CorruptResultError, match=r"is corrupt.*python -m helpers\.demo --mode full"):
        getattr(store, loader)(name)


def test_run_json_without_fields_is_corrupt(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "run.json").write_text('{"schema": 1}')
    with pytest.raises(CorruptResultError, match="lacks fields"):
        store_in(tmp_path).read_run()


def test_stale_result_names_both_versions_and_the_command(tmp_path):
    store_in(tmp_path, schema=1).write_run(mode="full", device="cpu", seeds=[0], seconds=1.0)
    store_in(tmp_path, schema=1).save_json("m.json", {"a": 1})
    with pytest.raises(StaleResultError, match=r"schema version 1.*reads version 2.*helpers\.demo --mode full"):
        store_in(tmp_path, schema=2).load_json("m.json")


def test_committed_results_hint_offers_git_restore(tmp_path):
    store = ResultStore("demo", module="helpers.demo", schema=1)  # under the repository's results/
    with pytest.raises(MissingResultError, match=r"git checkout -- results/demo"):
        store.read_run()
    scratch = store_in(tmp_path)
    with pytest.raises(MissingResultError) as err:
        scratch.read_run()
    assert "git checkout" not in str(err.value)


def test_missing_result_message_with_a_relative_root(monkeypatch):
    monkeypatch.chdir(results.repo_root())
    store = ResultStore("demo", module="helpers.demo", schema=1, root="results")  # relative to the working folder
    with pytest.raises(MissingResultError, match=r"results/demo/run\.json does not exist\. Recreate it with "
                                                 r"`python -m helpers\.demo --mode full`, or restore the committed "
                                                 r"version with `git checkout -- results/demo`"):
        store.read_run()


@pytest.mark.parametrize("kwargs, match", [
    (dict(chapter=""), "chapter must be a folder name"),
    (dict(chapter="a/b"), "chapter must be a folder name"),
    (dict(schema=0), "schema must be an int >= 1"),
    (dict(module=None), "give exactly one of module"),
    (dict(command="run it"), "give exactly one of module"),
])
def test_store_bad_input(kwargs, match):
    args = dict(chapter="demo", module="helpers.demo", schema=1) | kwargs
    with pytest.raises(ValueError, match=match):
        ResultStore(args.pop("chapter"), **args)


def test_save_arrays_requires_npz_suffix(tmp_path):
    with pytest.raises(ValueError, match="must end with '.npz'"):
        store_in(tmp_path).save_arrays("a.npy", {"x": np.zeros(1)})


# ---------------------------------------------------------------- claims

def claim(i="c1", holds=True):
    return Claim(id=i, claim="the thing happens", paper="Fig. 2: yes", measured={"acc": 0.991}, holds=holds,
                 criterion="acc > 0.95")


def test_claims_round_trip_and_render(tmp_path):
    store = store_in(tmp_path)
    store.write_run(mode="full", device="cpu", seeds=[0], seconds=1.0)
    store.write_claims([claim("c1", True), dict(id="c2", kind="extension", claim="x", paper="y", measured=3,
                                                holds=False, criterion="x > 4")])
    records = json.loads((tmp_path / "demo" / "claims.json").read_text())
    assert all(set(CLAIM_FIELDS) <= set(r) for r in records)
    assert [r["kind"] for r in records] == ["paper", "extension"]
    table = store.load_claims()
    assert len(table) == 2 and table["c1"].holds and not table["c2"].holds and table["c2"].kind == "extension"
    html, md = table._repr_html_(), table._repr_markdown_()
    assert "0.991" in html and "acc &gt; 0.95" in html and "✅ yes" in html and "❌ no" in html
    assert md.count("\n") == 5 and ("| ❌ no | c2: x — *why not:* measured 3; the pass mark is: x > 4 "
                                    "| extension | 3 | x > 4 | y |") in md
    assert md.startswith("**1 of 2 claims hold.**") and "1 of 2 claims hold." in html
    with pytest.raises(KeyError, match="no claim with id 'c3'"):
        table["c3"]


def test_claims_need_every_field_and_unique_ids(tmp_path):
    store = store_in(tmp_path)
    with pytest.raises(CorruptResultError, match=r"lacks fields \['holds'\]"):
        store.write_claims([dict(id="c", kind="paper", claim="x", paper="y", measured=1, criterion="x")])
    with pytest.raises(CorruptResultError, match=r"lacks fields \['kind', 'criterion'\]"):
        store.write_claims([dict(id="c", claim="x", paper="y", measured=1, holds=True)])
    with pytest.raises(ValueError, match="claim ids must be unique"):
        store.write_claims([claim("c"), claim("c")])
    with pytest.raises(TypeError, match="holds must be a bool"):
        Claim(id="c", claim="x", paper="y", measured=1, holds="yes", criterion="x")
    with pytest.raises(ValueError, match="claim id must be a non-empty string"):
        Claim(id="", claim="x", paper="y", measured=1, holds=True, criterion="x")
    with pytest.raises(ValueError, match="kind must be one of"):
        Claim(id="c", claim="x", paper="y", measured=1, holds=True, criterion="x", kind="ours")
    with pytest.raises(ValueError, match="criterion must say the pass mark"):
        Claim(id="c", claim="x", paper="y", measured=1, holds=True, criterion=" ")


def test_corrupt_claims_file(tmp_path):
    store = store_in(tmp_path)
    store.write_run(mode="full", device="cpu", seeds=[0], seconds=1.0)
    (tmp_path / "demo" / "claims.json").write_text('{"id": "not a list"}')
    with pytest.raises(CorruptResultError, match="must hold a JSON list"):
        store.load_claims()
    (tmp_path / "demo" / "claims.json").write_text('[{"id": "c"}]')
    with pytest.raises(CorruptResultError, match="lacks fields"):
        store.load_claims()


def test_claims_table_cuts_long_measured_values_and_counts_verdicts():
    from helpers.claims import MEASURED_MAX_CHARS
    long = {f"M = {m}": 0.123456 * m for m in range(60)}
    table = claims_table([claim("a", True), dict(claim("b", False).to_dict(), measured=long)])
    cell = table.rows()[1][3]
    assert cell.endswith(" …") and len(cell) <= MEASURED_MAX_CHARS + 2 and cell.startswith("M = 0: 0, M = 1: 0.1235")
    assert table.rows()[0][0] == "✅ yes" and table.rows()[1][0] == "❌ no"
    assert table.summary() == "1 of 2 claims hold."
    assert claims_table([claim("a", False)]).summary() == "The claim does not hold."


def test_claims_table_from_records():
    table = claims_table([claim().to_dict()], source="demo")
    assert "<caption>demo</caption>" in table._repr_html_()
    assert str(table) == table._repr_markdown_()


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    import stat
    path = atomic_write_text(tmp_path / "x.txt", "x")
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~results._UMASK and mode & 0o044  # readable by group and others


def test_save_run_writes_everything_and_claims_can_be_rederived(tmp_path):
    store = store_in(tmp_path)
    run = RunOutput(metrics={"acc": 0.97}, seeds=[0, 1], device="cpu", seconds=2.0,
                    files={"a.npz": {"x": np.arange(3)}, "w.pt": {"w": torch.ones(2)}}, git=("abc", False))
    store.save_run(run, [claim("c1", True)], mode="full")
    assert store.read_run()["git_commit"] == "abc" and store.read_run()["seeds"] == [0, 1]
    assert store.load_json("metrics.json") == {"acc": 0.97} and "x" in store.load_arrays("a.npz")

    def evaluate(metrics):   # a stricter pass mark, judged again from the stored metrics alone
        return [Claim("c1", "the thing happens", "Fig. 2", metrics["acc"], metrics["acc"] > 0.99, "acc > 0.99")]
    store.rederive_claims(evaluate)
    assert not store.load_claims()["c1"].holds
    run_json = store.read_run()
    assert run_json["git_commit"] == "abc" and set(run_json["claims_rederived"]) == {"git_commit", "git_dirty", "date"}


def test_cli_runs_saves_and_rederives(tmp_path, monkeypatch, capsys):
    from helpers.cli import run_main
    monkeypatch.setenv("BOOK_RESULTS", str(tmp_path))
    calls = []

    def full_run(mode, progress=True):
        calls.append(mode)
        return RunOutput(metrics={"acc": 0.97}, seeds=[0], device="cpu", seconds=0.1)

    def evaluate(metrics):
        return [claim("c1", metrics["acc"] > 0.95)]

    def store(root=None):
        return ResultStore("demo", module="helpers.demo", schema=1, root=root)

    assert run_main("helpers.demo", "Demo.", full_run=full_run, evaluate=evaluate, store=store,
                    argv=["--mode", "full"]) == 0
    assert calls == ["full"] and store(tmp_path).load_claims()["c1"].holds
    assert run_main("helpers.demo", "Demo.", full_run=full_run, evaluate=evaluate, store=store,
                    argv=["--claims-only"]) == 0
    assert calls == ["full"] and "claims_rederived" in store(tmp_path).read_run()
    assert "1/1 claims hold" in capsys.readouterr().out


def test_a_failed_claim_says_why_in_every_rendering():
    failed = Claim(id="f", claim="x", paper="y", measured={"ratio": 6.6}, holds=False, criterion="ratio >= 100",
                   why="only 6.6× below, not 100×")
    held = Claim(id="h", claim="x", paper="y", measured=1, holds=True, criterion="c", why="stale reason")
    table = claims_table([failed, held])
    assert "why not: only 6.6× below, not 100×" in table._repr_html_()
    assert "*why not:* only 6.6× below" in table._repr_markdown_()
    assert "stale reason" not in table._repr_html_() and "stale reason" not in str(table)  # a claim that holds has none
    assert failed.to_dict()["why"] == "only 6.6× below, not 100×" and held.to_dict()["why"] == ""
    # without a reason of its own, the line is the measurement against the pass mark
    bare = Claim(id="b", claim="x", paper="y", measured={"ratio": 6.6}, holds=False, criterion="ratio >= 100")
    assert claims_table([bare]).why_not(bare) == "measured ratio: 6.6; the pass mark is: ratio >= 100"
    # records written before the field existed still load
    old = {k: v for k, v in failed.to_dict().items() if k != "why"}
    assert Claim.from_dict(old).why == ""
    with pytest.raises(TypeError, match="why must be a string"):
        Claim(id="c", claim="x", paper="y", measured=1, holds=False, criterion="c", why=None)


def test_claims_table_labels_each_cell_for_narrow_screens():
    html_text = claims_table([claim("a", True)])._repr_html_()
    for header in claims_table([]).HEADER:
        assert f'data-label="{header}"' in html_text
    assert 'class="claims-table"' in html_text


def _demo_cli(tmp_path, monkeypatch):
    from helpers.cli import run_main
    monkeypatch.setenv("BOOK_RESULTS", str(tmp_path))

    def full_run(mode, progress=True):
        return RunOutput(metrics={"acc": 0.97}, seeds=[0], device="cpu", seconds=0.1, files={"a.npz": {"x": [1]}})

    def store(root=None):
        return ResultStore("demo", module="helpers.demo", schema=2, root=root)

    def main(*argv):
        return run_main("helpers.demo", "Demo.", full_run=full_run, evaluate=lambda m: [claim("c1", True)],
                        store=store, argv=list(argv))
    return main, store


def _one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m helpers.demo: error: "), err
    return err


def test_cli_rejects_an_unknown_mode_on_one_line(tmp_path, monkeypatch, capsys):
    main, _ = _demo_cli(tmp_path, monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        main("--mode", "fast")
    assert exit_.value.code == 2
    assert "invalid choice: 'fast'" in _one_line_error(capsys)


def test_cli_rejects_an_unwritable_output_folder(tmp_path, monkeypatch, capsys):
    main, _ = _demo_cli(tmp_path, monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main("--mode", "full", "--out", str(blocker / "results")) == 2
    assert "cannot write results to" in _one_line_error(capsys)
    assert not (blocker.parent / "results").exists()


def test_cli_rejects_another_chapters_folder_and_another_schema(tmp_path, monkeypatch, capsys):
    main, store = _demo_cli(tmp_path, monkeypatch)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "run.json").write_text(json.dumps({"chapter": "tree_cot", "schema": 2}))
    assert main("--mode", "full") == 2
    assert "holds the results of chapter 'tree_cot'" in _one_line_error(capsys)
    assert main("--mode", "full") == 2 and (tmp_path / "demo" / "run.json").exists()  # untouched
    capsys.readouterr()
    old = ResultStore("demo", module="helpers.demo", schema=1, root=tmp_path)
    old.save_run(RunOutput(metrics={"acc": 0.9}, seeds=[0], device="cpu", seconds=0.1), [claim()], mode="full")
    assert main("--claims-only") == 2
    assert "schema version 1, but this code reads version 2" in _one_line_error(capsys)
    assert main("--mode", "full") == 0 and store(tmp_path).read_run()["schema"] == 2  # a full run replaces it


KILL_MID_WRITE = """
import os, signal, sys
from helpers.results import ResultStore, RunOutput
from helpers.claims import Claim
store = ResultStore("demo", module="helpers.demo", schema=1, root=sys.argv[1])
def die(self, claims):  # the process is killed after the arrays, before claims.json and run.json
    os.kill(os.getpid(), signal.SIGKILL)
ResultStore.write_claims = die
store.save_run(RunOutput(metrics={"acc": 0.5}, seeds=[1], device="cpu", seconds=9.0,
                         files={"b.npz": {"y": [2.0] * 100000}}), [], mode="full")
"""


def test_a_run_killed_while_writing_leaves_the_previous_results_intact(tmp_path):
    store = ResultStore("demo", module="helpers.demo", schema=1, root=tmp_path)
    store.save_run(RunOutput(metrics={"acc": 0.97}, seeds=[0], device="cpu", seconds=1.0, files={"a.npz": {"x": [1]}}),
                   [claim()], mode="full")
    before = {p.name: p.read_bytes() for p in store.dir.iterdir()}
    result = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, str(tmp_path)], capture_output=True)
    assert result.returncode == -9  # SIGKILL
    assert {p.name: p.read_bytes() for p in store.dir.iterdir()} == before
    assert store.load_json("metrics.json") == {"acc": 0.97} and store.load_claims()["c1"].holds
    assert list(tmp_path.glob(".demo.staging-*"))  # what the killed run left beside it...
    store.save_run(RunOutput(metrics={"acc": 0.98}, seeds=[0], device="cpu", seconds=1.0), [claim()], mode="full")
    assert not list(tmp_path.glob(".demo.*"))  # ...is cleared by the next run, which replaces the folder whole
    assert sorted(p.name for p in store.dir.iterdir()) == ["claims.json", "metrics.json", "run.json"]


def test_a_run_killed_between_the_two_renames_loses_nothing(tmp_path):
    store = ResultStore("demo", module="helpers.demo", schema=1, root=tmp_path)
    store.save_run(RunOutput(metrics={"acc": 0.97}, seeds=[0], device="cpu", seconds=1.0), [claim()], mode="full")
    # the state a kill leaves after the first rename: the old folder aside, the new one still staged
    os.replace(store.dir, tmp_path / ".demo.old-4242")
    (tmp_path / ".demo.staging-4242").mkdir()
    (tmp_path / ".demo.old-17").mkdir()            # an older leftover of the same kind
    assert store.load_json("metrics.json") == {"acc": 0.97}   # a reader gets the previous results back
    assert not list(tmp_path.glob(".demo.old-*"))
    store.save_run(RunOutput(metrics={"acc": 0.98}, seeds=[0], device="cpu", seconds=1.0), [claim()], mode="full")
    assert store.load_json("metrics.json") == {"acc": 0.98}
    assert not list(tmp_path.glob(".demo.*"))


def test_chapter_3_s_two_committed_runs():
    """``results/transient_ridge/``: the GPU configuration's run, complete, with the rest of its device
    calls' output in ``call/``; ``results/transient_ridge_cpu/``: the CPU configuration's, judged by
    the same claims."""
    from helpers.transient_ridge import claims, cpu_store, store
    gpu, cpu = store(), cpu_store()
    run = gpu.read_run()
    assert run["chapter"] == "transient_ridge" and run["mode"] == "full" and "H200" in run["device"]
    assert run["extra"]["complete"] and run["extra"]["curriculum_call"]["device"] == run["device"]
    assert gpu.load_json("metrics.json")["scale"] == "gpu" and cpu.load_json("metrics.json")["scale"] == "cpu"
    assert cpu.read_run()["chapter"] == "transient_ridge" and "CPU" in cpu.read_run()["device"]
    judged = claims.evaluate(cpu.load_json("metrics.json"))
    assert [c.to_dict() for c in judged] == cpu.load_json("claims.json"), (
        "results/transient_ridge_cpu/claims.json is stale: re-judge it with --claims-only --scale cpu")
    root = gpu.path("call")
    for name in ("device.json", "bench.json", "precision.json", "log.txt", "curriculum-log.txt",
                 "bench/compile-default.json"):
        assert (root / name).is_file(), name
    assert json.loads((root / "device.json").read_text())["device"] == run["device"]


@pytest.mark.parametrize("chapter", ["tree_cot", "multistep_gd", "transient_ridge", "one_lens"])
def test_committed_verdicts_are_what_the_current_claims_say(chapter):
    """The committed claims.json is what the chapter's current claims make of its committed metrics:
    a pass mark changed without ``--claims-only`` would leave stale verdicts in the book."""
    import importlib
    store = importlib.import_module(f"helpers.{chapter}.train").store()
    if not store.exists("metrics.json"):
        pytest.skip("no committed results")
    judged = importlib.import_module(f"helpers.{chapter}.claims").evaluate(store.load_json("metrics.json"))
    stored = store.load_json("claims.json")
    assert [c.to_dict() for c in judged] == stored, (
        f"results/{chapter}/claims.json is stale: run python -m helpers.{chapter} --claims-only")
    assert all(c.holds == (not c.why) for c in judged), "a claim's why must be set exactly when it fails"


def test_a_second_run_of_a_chapter_lives_in_a_folder_of_its_own(tmp_path):
    store = results.ResultStore("demo", schema=1, module="helpers.demo", root=tmp_path, folder="demo_gpu")
    assert store.dir == tmp_path / "demo_gpu"
    store.save_run(RunOutput(metrics={"acc": 1.0}, seeds=[0], device="cpu", seconds=1.0), [], mode="full")
    assert store.read_run()["chapter"] == "demo" and not (tmp_path / "demo").exists()
    for bad in ("", "a/b", 3):
        with pytest.raises(ValueError, match="folder must be a folder name"):
            results.ResultStore("demo", schema=1, module="helpers.demo", root=tmp_path, folder=bad)
