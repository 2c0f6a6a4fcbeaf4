"""ferlib.study.exercises: the notebooks' answer checker prints and returns, never raises."""

from __future__ import annotations

import numpy as np

from ferlib.study.exercises import NOT_ANSWERED, answers_match, check_answer


def test_unanswered_prints_and_returns_none(capsys):
    assert check_answer(None, 0.5, name="Exercise 1") is None
    out = capsys.readouterr().out
    assert out.startswith("Exercise 1: " + NOT_ANSWERED)


def test_numbers_within_tolerance(capsys):
    assert check_answer(0.61, 0.62, tolerance=0.02, name="E") is True
    assert capsys.readouterr().out.startswith("E: right.")
    assert check_answer(0.70, 0.62, tolerance=0.02, name="E", hint="look at the first row") is False
    assert capsys.readouterr().out == "E: wrong (0.7). Hint: look at the first row\n"
    assert answers_match(105, 100, rel=0.06) is True
    assert answers_match(107, 100, rel=0.06) is False
    assert answers_match(3, 3) is True and answers_match(3.01, 3) is False
    assert answers_match([1.0, 2.0], np.array([1.0, 2.05]), tolerance=0.1) is True
    assert answers_match([1.0], np.array([1.0, 2.0])) is False  # wrong shape
    assert answers_match("a lot", 3) is False  # not a number


def test_strings_sets_sequences_and_predicates():
    assert answers_match(" Fear", "fear") is True
    assert answers_match("surprise", "fear") is False
    assert answers_match(3, "3") is False
    assert answers_match("eyes", {"eyes", "eye region"}) is True
    assert answers_match("mouth", {"eyes", "eye region"}) is False
    assert answers_match(["a", 1.0], ("A", 1.05), tolerance=0.1) is True
    assert answers_match(["a", 1.0], ("b", 1.0)) is False
    assert answers_match(7, lambda a: a % 2 == 1) is True
    assert answers_match(8, lambda a: a % 2 == 1) is False


def test_a_predicate_that_raises_is_reported_not_raised(capsys):
    assert check_answer("x", lambda a: a + 1 > 0, name="E") is False
    assert "could not compare 'x'" in capsys.readouterr().out
