"""The xdist scheduler of scripts/run_tests.sh: each work unit whole on one worker, every test once, longest first."""
from __future__ import annotations

import glob
import os
import random
import types

import pytest
from scheduling import make_scheduler, unit_cost, work_unit

from conftest import ROOT

TEST_FILES = sorted(os.path.relpath(path, ROOT) for path in glob.glob(os.path.join(ROOT, "tests", "**", "test_*.py"),
                                                                          recursive=True))


class Worker:
    """An xdist worker as the scheduler sees it: it runs the indices it is sent, into its own collection, in order."""

    def __init__(self, name: str, collection: list[str], sent: list[set[str]]) -> None:
        self.gateway = types.SimpleNamespace(id=name)
        self.collection = collection
        self.sent = sent
        self.queue: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.append({work_unit(self.collection[index].split("::")[0]) for index in indices})
        self.queue.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def run(workers: int, seed: int) -> tuple[dict[str, set[str]], list[set[str]], dict[str, int]]:
    """Schedule a collection of two tests per real test file on `workers` workers that finish tests in a seeded
    random interleaving; returns the workers that ran each unit, the units of each batch sent to a worker in the
    order sent, and how often each test ran."""
    collection = [f"{name}::test_{case}" for name in TEST_FILES for case in "ab"]
    config = types.SimpleNamespace(getvalue=lambda name: [f"{workers}*popen"],
                                   option=types.SimpleNamespace(loadscopereorder=True))
    scheduler = make_scheduler(config, None)
    sent: list[set[str]] = []
    nodes = [Worker(f"gw{i}", list(collection), sent) for i in range(workers)]
    for node in nodes:
        scheduler.add_node(node)
        scheduler.add_node_collection(node, list(collection))
    scheduler.schedule()
    rng = random.Random(seed)
    ran_on: dict[str, set[str]] = {}
    runs: dict[str, int] = {}
    while busy := [node for node in nodes if node.queue]:
        node = rng.choice(busy)
        index = node.queue.pop(0)
        nodeid = node.collection[index]
        unit = work_unit(nodeid.split("::")[0])
        ran_on.setdefault(unit, set()).add(node.gateway.id)
        runs[nodeid] = runs.get(nodeid, 0) + 1
        scheduler.mark_test_complete(node, index)
    assert set(runs) == set(collection)
    return ran_on, sent, runs


@pytest.mark.parametrize("workers", [2, 3, 4])
@pytest.mark.parametrize("seed", range(5))
def test_units_run_whole_once_and_longest_first(workers: int, seed: int) -> None:
    ran_on, sent, runs = run(workers, seed)
    assert set(runs.values()) == {1}
    assert {unit: len(names) for unit, names in ran_on.items() if len(names) > 1} == {}  # one worker per unit
    assert all(len(batch) == 1 for batch in sent), "a batch sent to a worker mixes units"
    order = [unit for batch in sent for unit in batch]
    assert sorted(order) == sorted(ran_on)  # each unit sent once
    costs = [unit_cost(unit, [name for name in TEST_FILES if work_unit(name) == unit]) for unit in order]
    assert costs == sorted(costs, reverse=True)  # longest first


def test_session_fixture_units_group_their_files() -> None:
    units = {work_unit(name) for name in TEST_FILES}
    assert {"ray_address", "vllm_server"} <= units
    assert sum(work_unit(name) == "ray_address" for name in TEST_FILES) >= 2
