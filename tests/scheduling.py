"""How `pytest -n N` (scripts/run_tests.sh) shares the suite among xdist workers: whole work units, longest first.

A work unit is every test file that asks for one session fixture of SLOW_FIXTURES (one vLLM server, one Ray cluster
per run), else one test file (its module fixtures are built once). Units are handed out longest first, from the
seconds measured per unit in tests/unit_seconds.json (`--record-unit-seconds` rewrites it), so no long unit starts
last; a unit not measured yet counts as its number of slow tests x SLOW_SECONDS.
"""
from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECONDS_FILE = os.path.join(ROOT, "tests", "unit_seconds.json")
SLOW_FIXTURES = ("ray_address", "vllm_server")  # session fixtures whose users share one worker
SLOW_SECONDS = 10  # a guess for a slow test of a unit not measured yet


@functools.cache
def work_unit(test_file: str) -> str:
    """The work unit of a test file (a path relative to the repository root)."""
    source = Path(ROOT, test_file).read_text()
    used = [name for name in SLOW_FIXTURES if re.search(rf"def \w+\([^)]*\b{name}\b", source)]
    return used[0] if used else test_file


@functools.cache
def measured_seconds() -> dict[str, float]:
    """Seconds per work unit from the last recorded full run (empty when there is none)."""
    try:
        with open(SECONDS_FILE) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def unit_cost(unit: str, nodeids: list[str]) -> float:
    """How long a unit is expected to take: its measured seconds, else a guess from its slow tests."""
    if unit in measured_seconds():
        return measured_seconds()[unit]
    sources = [Path(ROOT, name).read_text() for name in {nodeid.split("::")[0] for nodeid in nodeids}]
    return SLOW_SECONDS * sum(text.count("mark.slow")
                              + ("pytestmark = pytest.mark.slow" in text) * text.count("def test_")
                              for text in sources)


def make_scheduler(config, log):
    """An xdist LoadScopeScheduling over work units that hands out the longest units first."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        ordered = False  # whether the queue was put in longest-first order (at the first assignment)

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid.split("::")[0])

        def _assign_work_unit(self, node) -> None:
            if not self.ordered:  # the first call: the queue holds every unit
                for unit in sorted(self.workqueue, key=lambda unit: -unit_cost(unit, list(self.workqueue[unit]))):
                    self.workqueue.move_to_end(unit)
                self.ordered = True
            super()._assign_work_unit(node)

    return WorkUnits(config, log)


class UnitSeconds:
    """Plugin of `--record-unit-seconds`: sums each work unit's test durations (setup, call, teardown) as reports
    reach the controller and writes them to tests/unit_seconds.json when the run ends."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report) -> None:
        unit = work_unit(report.nodeid.split("::")[0])
        self.seconds[unit] = self.seconds.get(unit, 0.0) + report.duration

    def pytest_sessionfinish(self, session) -> None:
        if hasattr(session.config, "workerinput"):  # an xdist worker: the controller writes
            return
        from generation.common.writing import write_json_atomic

        write_json_atomic(SECONDS_FILE, {unit: round(seconds, 1) for unit, seconds in sorted(self.seconds.items())},
                          data=True)
