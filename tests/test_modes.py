import pytest

from helpers.modes import ENV_VAR, MODES, by_mode, check_mode, get_mode, set_mode


def test_unset_or_empty_means_default(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert get_mode() == "default"
    monkeypatch.setenv(ENV_VAR, "  ")
    assert get_mode() == "default"


@pytest.mark.parametrize("raw, expected", [("smoke", "smoke"), ("FULL", "full"), (" Default ", "default")])
def test_valid_values_are_normalised(monkeypatch, raw, expected):
    monkeypatch.setenv(ENV_VAR, raw)
    assert get_mode() == expected


@pytest.mark.parametrize("bad", ["fast", "smok", "1", "full mode"])
def test_bad_environment_value_is_a_clear_error(monkeypatch, bad):
    monkeypatch.setenv(ENV_VAR, bad)
    with pytest.raises(ValueError) as err:
        get_mode()
    message = str(err.value)
    assert ENV_VAR in message and repr(bad) in message
    assert all(m in message for m in MODES)


def test_check_mode_rejects_non_strings():
    with pytest.raises(TypeError, match="mode must be a string"):
        check_mode(3)


def test_by_mode_picks_the_current_mode(monkeypatch):
    for mode, expected in [("smoke", 1), ("default", 2), ("full", 3)]:
        monkeypatch.setenv(ENV_VAR, mode)
        assert by_mode(smoke=1, default=2, full=3) == expected


def test_by_mode_explicit_mode_wins_and_is_checked(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert by_mode(smoke=1, default=2, full=3, mode="full") == 3
    with pytest.raises(ValueError, match="mode must be one of"):
        by_mode(smoke=1, default=2, full=3, mode="huge")


def test_by_mode_requires_all_three_sizes():
    with pytest.raises(TypeError):
        by_mode(smoke=1, default=2)  # type: ignore[call-arg]


def test_set_mode_sets_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert set_mode("Full") == "full"
    assert get_mode() == "full"
    with pytest.raises(ValueError):
        set_mode("turbo")


def test_show_progress_follows_mode_and_the_build_switch(monkeypatch):
    from helpers import show_progress
    monkeypatch.delenv("BOOK_PROGRESS", raising=False)
    monkeypatch.setenv("BOOK_MODE", "default")
    assert show_progress()
    monkeypatch.setenv("BOOK_MODE", "smoke")
    assert not show_progress()
    monkeypatch.setenv("BOOK_MODE", "default")
    monkeypatch.setenv("BOOK_PROGRESS", "0")   # what the book's build command sets
    assert not show_progress()
    monkeypatch.setenv("BOOK_PROGRESS", "1")
    assert show_progress()
    monkeypatch.setenv("BOOK_PROGRESS", "yes")
    with pytest.raises(ValueError, match="BOOK_PROGRESS must be 0, 1 or unset; got 'yes'"):
        show_progress()


def test_training_shows_no_bar_when_the_build_switch_is_off(monkeypatch, capsys):
    import torch

    from helpers import train
    monkeypatch.setenv("BOOK_MODE", "default")
    monkeypatch.setenv("BOOK_PROGRESS", "0")
    model = torch.nn.Linear(1, 1)
    train(model, lambda m, b: m(b).pow(2).mean(), lambda step: torch.ones(4, 1), steps=3,
          optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    captured = capsys.readouterr()
    assert "it/s" not in captured.err and "it/s" not in captured.out
