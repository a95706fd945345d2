"""One --max_cost ledger for a sharded run (a locked file in the output's checkpoint folder, reached by every shard),
and --dry_run with --num_shards: the whole run's estimate, nothing written, no Ray."""
import errno
import fcntl
import json
import os
import pickle

import pytest

from generation import generate_reasoning_samples
from generation.common.cli import UserError, run_main
from generation.costs.budget import Budget
from generation.costs.ledger import Ledger

from conftest import run_script
from fixtures_benchmarks import write_benchmarks
from loopback import LoopbackServer

WORST = 2 * 5 * 8.0 / 1e6  # n = 2 completions at the cap of 5 tokens, output at $8/Mtok, input free


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("shared_budget")), ("math",))


def step1_args(data_dir, url, out, prices, *extra):
    return ["--model", "loop", "--base_url", url, "--dataset", "math", "--dataset_path",
            os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--samples_per_instruction", "2",
            "--max_new_tokens", "5", "--max_concurrency", "1", "--prices", prices, *extra]


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"loop": {"input": 0.0, "output": 8.0}}))  # a request's worst case is its cost
    return str(path)


def test_a_file_ledger_is_one_budget_for_every_copy_and_every_run(tmp_path):
    budget = Budget(3 * WORST, Ledger(str(tmp_path / "ledger.jsonl"), shared=True))
    copies = [pickle.loads(pickle.dumps(budget)) for _ in range(3)]  # what Ray hands each shard
    assert [copy.reserve(WORST) for copy in copies] == [True, True, True]
    assert not budget.reserve(WORST) and not budget.idle()
    for copy in copies:
        copy.settle(WORST, WORST)
    assert budget.idle() and budget.spent == pytest.approx(3 * WORST)
    rerun = Budget(3 * WORST, Ledger(str(tmp_path / "ledger.jsonl")))  # a new run on the same output
    assert rerun.spent == pytest.approx(3 * WORST) and not rerun.reserve(WORST)
    fresh = Budget(3 * WORST, Ledger(str(tmp_path / "ledger.jsonl"), fresh=True))  # --overwrite
    assert fresh.reserve(WORST) and fresh.spent == 0


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.EOPNOTSUPP])
def test_a_file_system_without_flock_is_one_line_before_any_request(data_dir, tmp_path, prices, monkeypatch, capsys,
                                                                    code):
    """The shards' ledger needs flock: a sharded --max_cost run on a file system that refuses it stops in one line
    before Ray or any request starts and writes nothing; a ledger whose flock fails later says the same."""
    ledger = Budget(WORST, Ledger(str(tmp_path / "ledger.jsonl"), shared=True))

    def refuse(*_):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", refuse)
    with pytest.raises(UserError, match=f"the --max_cost ledger .*refuses flock \\({errno.errorcode[code]}\\); "
                                        "run without --num_shards"):
        ledger.reserve(WORST)
    out = str(tmp_path / "out")
    with LoopbackServer() as server:
        with pytest.raises(SystemExit) as exited:
            run_main(generate_reasoning_samples.main,
                     step1_args(data_dir, server.url, out, prices, "--num_shards", "2", "--max_cost", "1",
                                "--lock", "none"))
        assert server.requests == []
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert exited.value.code == 2 and "the --max_cost ledger" in line and "run without --num_shards" in line, line
    assert not os.path.exists(out) and not os.path.exists(out + ".checkpoint")


@pytest.mark.slow
def test_three_shards_share_one_cap(data_dir, tmp_path, prices):
    out = str(tmp_path / "out")
    with LoopbackServer() as server:  # 6 rows, 3 shards of 2; each shard alone would fit its 2 requests
        proc = run_script("generate_reasoning_samples.py",
                          *step1_args(data_dir, server.url, out, prices, "--num_shards", "3",
                                      "--max_cost", str(3.5 * WORST)))
        sent = len(server.requests)
        rerun = run_script("generate_reasoning_samples.py",
                           *step1_args(data_dir, server.url, out, prices, "--num_shards", "3",
                                       "--max_cost", str(3.5 * WORST)))
        again = len(server.requests) - sent
    assert sent == 3, proc.stderr[-3000:]  # 3 x WORST <= cap < 4 x WORST across all shards
    assert proc.returncode == 1 and "--max_cost $0.00028 reached" in proc.stderr
    assert again == 0 and rerun.returncode == 1, rerun.stderr[-3000:]  # the rerun's shards found the cap spent
    assert "earlier runs on" in rerun.stderr and "$0.00024" in rerun.stderr


def test_dry_run_with_shards_estimates_the_whole_run_and_writes_nothing(data_dir, tmp_path, prices):
    out = str(tmp_path / "out")
    with LoopbackServer() as server:
        whole = run_script("generate_reasoning_samples.py", *step1_args(data_dir, server.url, out, prices,
                                                                         "--dry_run"))
        sharded = run_script("generate_reasoning_samples.py", *step1_args(data_dir, server.url, out, prices,
                                                                           "--dry_run", "--num_shards", "3"))
        assert server.requests == []
    assert sharded.returncode == 0, sharded.stderr[-2000:]
    assert "6 rows x 2 samples = 12" in sharded.stdout and "total estimated API cost" in sharded.stdout
    assert sharded.stdout == whole.stdout and "Ray" not in sharded.stderr
    assert sorted(os.listdir(tmp_path)) == ["prices.json"]
