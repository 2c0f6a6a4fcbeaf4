"""Checking a reader's answer to a notebook exercise, without ever stopping the notebook.

Each exercise in the study notebooks ends with an answer variable left as ``None`` and a cell that checks it::

    answer_1 = None  # your answer: the fraction of frontal faces MTCNN found, e.g. 0.9
    check_answer(answer_1, expected=rate_frontal, tolerance=0.02, name="Exercise 1",
                 hint="look at the row of the table whose yaw_bin is 0-15 and occluder none")

:func:`check_answer` prints one line: ``not answered yet`` (the answer is still None: the notebook runs
headless, in nbval and papermill, without raising), ``right`` or ``wrong`` plus the hint. It returns True,
False or None so a reader's own code can branch on it.

What counts as the same answer:

* numbers (and numeric arrays) — within ``tolerance`` (absolute) or ``rel`` (relative); exact when neither;
* strings — equal after stripping and lower-casing (``"Fear"`` = ``" fear"``);
* a set of allowed answers — ``expected`` given as a ``set``/``frozenset`` (any member is right, with the
  rules above); a list or tuple is compared element by element (order matters);
* anything else — ``expected(answer)`` when ``expected`` is callable (a predicate), else ``==``.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Number
from typing import Any

import numpy as np

NOT_ANSWERED = "not answered yet"


def _is_number(x: Any) -> bool:
    return isinstance(x, Number) and not isinstance(x, bool) or isinstance(x, np.number)


def answers_match(answer: Any, expected: Any, tolerance: float | None = None, rel: float | None = None) -> bool:
    """Whether ``answer`` counts as ``expected`` under the rules in the module docstring."""
    if callable(expected) and not isinstance(expected, type):
        return bool(expected(answer))
    if isinstance(expected, (set, frozenset)):
        return any(answers_match(answer, e, tolerance, rel) for e in expected)
    if isinstance(expected, str):
        return isinstance(answer, str) and answer.strip().lower() == expected.strip().lower()
    if _is_number(expected) or isinstance(expected, np.ndarray):
        try:
            a = np.asarray(answer, dtype=np.float64)
            e = np.asarray(expected, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        if a.shape != e.shape:
            return False
        return bool(np.allclose(a, e, atol=tolerance or 0.0, rtol=rel or 0.0, equal_nan=True))
    if isinstance(expected, (list, tuple)):
        if not isinstance(answer, (list, tuple, np.ndarray)) or len(answer) != len(expected):
            return False
        return all(answers_match(a, e, tolerance, rel) for a, e in zip(answer, expected))
    return bool(answer == expected)


def check_answer(
    answer: Any,
    expected: Any | Callable[[Any], bool],
    *,
    name: str = "Exercise",
    tolerance: float | None = None,
    rel: float | None = None,
    hint: str = "",
    explanation: str = "",
) -> bool | None:
    """Print whether ``answer`` is right; never raises for a wrong or missing answer.

    ``answer`` None → prints ``"<name>: not answered yet"`` and returns None. Otherwise prints ``right``
    (with ``explanation``, if given: why it is right) or ``wrong`` (with ``hint``) and returns True/False.
    ``expected`` follows :func:`answers_match`; ``tolerance``/``rel`` are the absolute/relative slack for
    numbers.
    """
    if answer is None:
        print(f"{name}: {NOT_ANSWERED} (replace the None above with your answer and run this cell again)")
        return None
    try:
        ok = answers_match(answer, expected, tolerance, rel)
    except Exception as err:  # a reader's odd answer must not stop the notebook
        print(f"{name}: could not compare {answer!r} with the expected answer ({type(err).__name__}: {err})")
        return False
    if ok:
        print(f"{name}: right." + (f" {explanation}" if explanation else ""))
    else:
        print(f"{name}: wrong ({answer!r})." + (f" Hint: {hint}" if hint else ""))
    return ok


__all__ = ["NOT_ANSWERED", "answers_match", "check_answer"]
