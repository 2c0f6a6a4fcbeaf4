"""The reliability suite (issue 12): every kind of bad input, built on the fly, with what ferlib must do.

Each test carries ``@pytest.mark.reliability("refused")`` (ferlib refuses it with a message that names what,
where and how to fix) or ``@pytest.mark.reliability("handled")`` (ferlib does the right thing). At the end of a
run the counts per kind are printed, so the note can quote them.
"""

from __future__ import annotations

from collections import Counter

import pytest

KINDS = ("refused", "handled")
_outcomes: Counter = Counter()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability(kind): a bad-input case; kind is 'refused' or 'handled'")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("reliability")
        if marker is not None and (not marker.args or marker.args[0] not in KINDS):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.reliability needs one of {KINDS}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("reliability")
    if marker is not None and report.when == "call":
        _outcomes[(marker.args[0], report.outcome)] += 1


def pytest_terminal_summary(terminalreporter) -> None:
    if not _outcomes:
        return
    parts = [f"{kind}: {_outcomes[(kind, 'passed')]} as required, {_outcomes[(kind, 'failed')]} not" for kind in KINDS]
    terminalreporter.write_line("reliability cases — " + "; ".join(parts))
