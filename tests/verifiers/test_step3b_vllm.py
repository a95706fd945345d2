"""Step 3b with real vLLM: one offline engine (tiny model, template without a system role) and the shared server."""
import shutil

import psutil
import pytest
from datasets import Dataset
from test_step3b_parsing import judge_args

from generation.common.records import RecordStore
from generation.judges.judging import cache_path, prompt_token_ids, resolve_judges, run_judge
from generation.judges.prompts import judge_messages, render_prompt
from generation.judges.registry import parse_judge

from tiny_models import NO_SYSTEM_TEMPLATE

DATA = {"instruction": ["What is 2 + 2?", "Compute 1/2 + 1/4."],
        "samples": [["Step 1: add. The answer is: B", None, "The answer is: C"],
                    ["The answer is \\boxed{3/4}", "Step 1: check the result.", "0 1 2"]]}


@pytest.fixture(scope="module")
def no_system_model(tiny_chat_model, tmp_path_factory) -> str:
    """A copy of the tiny chat model whose chat template rejects the system role (as Gemma-2/Mistral ones do)."""
    from transformers import AutoTokenizer

    path = str(tmp_path_factory.mktemp("models") / "tiny-no-system")
    shutil.copytree(tiny_chat_model, path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = NO_SYSTEM_TEMPLATE
    tokenizer.save_pretrained(path)
    return path


def live_children() -> set[int]:
    """Pids of this process's running descendants (not zombies, not multiprocessing's resource tracker, not the engine
    guard's watchdog: both live as long as this process, from the first engine it starts on)."""
    from generation.common import processes

    running, watchdogs = set(), {watchdog.pid for watchdog in processes._WATCHDOG}
    for proc in psutil.Process().children(recursive=True):
        try:
            if (proc.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(proc.cmdline())
                    and proc.pid not in watchdogs):
                running.add(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return running


@pytest.mark.slow
def test_offline_vllm_judge_k_verdicts_resume_and_teardown(no_system_model, tmp_path):
    options = judge_args("--verdicts_per_sample", "2", "--judge_temperature", "1.0", "--judge_max_tokens", "6",
                      "--judge_dtype", "float32", "--judge_enforce_eager", "--judge_seed", "3")
    spec = resolve_judges([f"TinyJudge={no_system_model}"], options)[0]
    before = live_children()
    columns, stats = run_judge(spec, Dataset.from_dict(DATA), options, str(tmp_path))
    assert live_children() <= before  # the engine's worker processes are gone
    verdicts, judgments = columns["TinyJudge_verdicts"], columns["TinyJudge_judgments"]
    assert [len(row) for row in verdicts] == [3, 3] and all(len(v) == 2 for row in verdicts for v in row)
    assert judgments[0][1] == [None, None] and verdicts[0][1] == [None, None]  # a missing sample asks nothing
    texts = [t for row in judgments for sample in row for t in sample if t is not None]
    assert len(texts) == 10 and all(isinstance(t, str) for t in texts)
    assert any(len(set(sample)) == 2 for row in judgments for sample in row if sample[0] is not None)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(no_system_model)
    prompt = render_prompt(tokenizer, judge_messages(DATA["instruction"][0], DATA["samples"][0][0]), False)
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n") and "system<|end" not in prompt
    assert prompt_token_ids(tokenizer, prompt).count(tokenizer.bos_token_id) == 1
    assert stats["system_role"] is False and stats["calls"] == 5 and stats["missing_samples"] == 1
    assert stats["failures"] == 0 and stats["context_length"] == 4096
    with RecordStore(cache_path(str(tmp_path), spec, critique=False)) as store:
        records = list(store.records.values())
    assert len(records) == 5 and all(len(r["texts"]) == 2 for r in records)
    # 6 tokens of random text: judgments cut at max_tokens are counted and give no verdict
    assert stats["truncated_samples"] == sum(sum(r["truncated"]) for r in records) > 0
    for row_v, row_t in zip(verdicts, judgments):
        for values, sample_texts in zip(row_v, row_t):
            for value, text in zip(values, sample_texts):
                record = next((r for r in records if text in r["texts"]), None)
                if record and record["truncated"][record["texts"].index(text)]:
                    assert value is None
    again, stats = run_judge(spec, Dataset.from_dict(DATA), options, str(tmp_path))  # resumes from the cache
    assert again == columns and stats["calls"] == 0 and stats["cached"] == 5


def test_vllm_server_as_openai_compatible_judge(vllm_server, tmp_path):
    options = judge_args("--base_url", vllm_server, "--verdicts_per_sample", "2", "--judge_max_tokens", "8")
    spec = resolve_judges(["TinyServer=openai_compatible:tiny-chat"], options)[0]
    assert spec == parse_judge("TinyServer=openai_compatible:tiny-chat")
    columns, stats = run_judge(spec, Dataset.from_dict(DATA), options, str(tmp_path))
    judgments = columns["TinyServer_judgments"]
    assert [len(row) for row in columns["TinyServer_verdicts"]] == [3, 3]
    assert all(len(v) == 2 for row in columns["TinyServer_verdicts"] for v in row)
    assert all(isinstance(t, str) for row in judgments for s in row if s != [None, None] for t in s)
    assert stats["failures"] == 0 and stats["calls"] == 5 and stats["missing_samples"] == 1
