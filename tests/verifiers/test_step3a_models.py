"""Step 3a reward-model kinds on tiny local models: input layout, field read, truncation, batching, PRMs, failures."""
from __future__ import annotations

import math
import os

import pytest
import torch

from generation.reward_models.inputs import Encoded, ScoreOptions
from generation.reward_models.registry import RewardModelSpec
from generation.reward_models.scoring import Scorer, gpm_pair_score, row_columns, run_batches, score_items
from generation.reward_models.truncation import fit_structure

import tiny_reward_models as tiny

ITEMS = [
    ("What is 2 + 2?", "Step 1: add the numbers.\n\nStep 2: check the result.\n\nThe answer is: B"),
    ("Compute 1/2 + 1/4.", "The answer is \\boxed{\\frac{3}{4}}"),
    ("What is 2 + 2?", "the of and to " * 40 + "\n\nThe answer is: C"),
    ("Question: A B C D", "0 1 2 3\n\n4 5 6\n\nThe answer is: D"),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, RewardModelSpec]:
    """One tiny model per loader kind, as registry specs."""
    root = str(tmp_path_factory.mktemp("rms"))
    policy, reference = tiny.build_implicit_pair(os.path.join(root, "eurus"))
    remote = dict(trust_remote_code=True)
    return {
        "llama": RewardModelSpec("llama", tiny.build_sequence_classifier(f"{root}/llama"), "sequence_classifier"),
        "gemma": RewardModelSpec("gemma", tiny.build_sequence_classifier(f"{root}/gemma", "gemma2"),
                                 "sequence_classifier", attn="eager"),
        "gated": RewardModelSpec("gated", tiny.build_multi_objective(f"{root}/gated"), "multi_objective", **remote),
        "tree": RewardModelSpec("tree", tiny.build_multi_objective(f"{root}/tree"), "decision_tree", **remote),
        "scalar": RewardModelSpec("scalar", tiny.build_qwen2_rm(f"{root}/scalar", 1), "scalar_head",
                                  system_prompt="Please reason step by step."),
        "intern": RewardModelSpec("intern", tiny.build_internlm2(f"{root}/intern"), "internlm2"),
        "prm": RewardModelSpec("prm", tiny.build_qwen2_rm(f"{root}/prm", 2), "step_prm",
                               system_prompt="Please reason step by step."),
        "eurus": RewardModelSpec("eurus", policy, "implicit_prm", reference_model=reference),
        "gpm": RewardModelSpec("gpm", tiny.build_custom_head(f"{root}/gpm", "gpm"), "gpm"),
        "inform": RewardModelSpec("inform", tiny.build_custom_head(f"{root}/inform", "inform"), "inform"),
        "ldl": RewardModelSpec("ldl", tiny.build_ldl(f"{root}/ldl"), "ldl"),
    }


def options(**fields) -> ScoreOptions:
    """CPU options with small inputs."""
    return ScoreOptions(**{"batch_size": 4, "max_input_length": 96, **fields})


@pytest.mark.parametrize("kind", ["llama", "gemma", "gated", "tree", "scalar", "intern", "prm", "eurus", "gpm",
                                  "inform", "ldl"])
@pytest.mark.slow
def test_batched_equals_one_by_one_and_one_bos(models, kind):
    """Length-sorted batches give the same scores as batch 1, and every input starts with exactly one BOS."""
    spec = models[kind]
    batched = score_items(spec, ITEMS, options(batch_size=4))
    single = score_items(spec, ITEMS, options(batch_size=1))
    assert not batched.errors and not single.errors
    flat = lambda values: [x for v in values for x in (v["v"] + v["r"] if isinstance(v, dict) else
                                                       v if isinstance(v, list) else [v])]
    assert flat(batched.results) == pytest.approx(flat(single.results), abs=1e-4)
    assert batched.truncated == 1  # the long third sample
    scorer = Scorer(spec, options())
    try:
        for instruction, sample in ITEMS:
            ids = scorer.encode(instruction, sample).ids
            bos = scorer.tokenizer.bos_token_id
            assert ids[0] == bos and ids[1] != bos and ids.count(bos) == 1
    finally:
        scorer.close()


@pytest.mark.slow
def test_a_second_bos_is_refused(models):
    """Text rendered by the template and tokenised with special tokens again (the GRM card's pattern) is refused."""
    scorer = Scorer(models["llama"], options())
    try:
        bos = scorer.tokenizer.bos_token
        scorer.encoder.encode_text = lambda text: scorer.tokenizer(bos + text, add_special_tokens=False)["input_ids"]
        with pytest.raises(AssertionError, match="starts with 2 BOS tokens, expected exactly 1"):
            scorer.encode(*ITEMS[0])
    finally:
        scorer.close()


@pytest.mark.slow
def test_token_layout_step_prm_and_internlm2(models):
    """The step PRM sees system, user and steps joined by <extra_0>; InternLM2 gets its reward token last."""
    scorer = Scorer(models["prm"], options(max_input_length=4096))
    try:
        enc = scorer.encode(*ITEMS[0])
        text = scorer.tokenizer.decode(enc.ids)
        assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nPlease reason step")
        assert "Step 1: add the numbers.<extra_0>Step 2: check the result.<extra_0>The answer is: B<extra_0>" in text
        assert enc.ids.count(scorer.encoder.step_id) == 3
        tokens = scorer.tokenizer.convert_ids_to_tokens(enc.ids)
        assert tokens.count("<|start_header_id|>") == 3 and tokens.count("<|eot_id|>") == 3
    finally:
        scorer.close()
    scorer = Scorer(models["intern"], options())
    try:
        enc = scorer.encode(*ITEMS[1])
        assert enc.ids[-1] == scorer.encoder.reward_token_id and enc.ids[-2] == scorer.tokenizer.eos_token_id
    finally:
        scorer.close()


@pytest.mark.slow
def test_padding_never_moves_the_pooled_token(tmp_path):
    """An RM without a pad token (EOS ends every chat) scores like its own unpadded batch-1 forward."""
    spec = RewardModelSpec("nopad", tiny.build_sequence_classifier(str(tmp_path / "nopad"), "llama-nopad"),
                           "sequence_classifier")
    run = score_items(spec, ITEMS, options(batch_size=4, max_input_length=4096))
    scorer = Scorer(spec, options(max_input_length=4096))
    try:
        assert scorer.pad_id not in (scorer.tokenizer.eos_token_id, scorer.tokenizer.bos_token_id)
        scorer.model.config.pad_token_id = None  # the card's way: one chat, no padding, last token pooled
        with torch.no_grad():
            expected = [float(scorer.model(input_ids=torch.tensor([scorer.encode(q, a).ids])).logits[0, 0])
                        for q, a in ITEMS]
    finally:
        scorer.close()
    assert run.results == pytest.approx(expected, abs=1e-5)


@pytest.mark.slow
def test_fields_read(models):
    """multi_objective reads `score` (not logits); decision_tree reads the correctness attribute."""
    scorer = Scorer(models["gated"], options())
    try:
        enc = scorer.encode(*ITEMS[1])
        with torch.no_grad():
            out = scorer.model(input_ids=torch.tensor([enc.ids]))
        assert scorer.forward([enc]) == pytest.approx([float(out.score[0, 0])])
        assert float(out.logits[0, 0]) > 90  # the logits field is deliberately different
    finally:
        scorer.close()
    scorer = Scorer(models["tree"], options())
    try:
        enc = scorer.encode(*ITEMS[1])
        with torch.no_grad():
            out = scorer.model(input_ids=torch.tensor([enc.ids]))
        assert scorer.forward([enc]) == pytest.approx([float(out.rewards[0, 1])])
    finally:
        scorer.close()


def test_truncation_keeps_the_final_answer(models):
    """A long sample loses its middle: the start of the prompt and the end of the answer survive."""
    scorer = Scorer(models["llama"], options(max_input_length=48))
    try:
        full = scorer.tokenizer.apply_chat_template(
            [{"role": "user", "content": ITEMS[2][0]}, {"role": "assistant", "content": ITEMS[2][1]}], tokenize=False)
        full_ids = scorer.tokenizer(full, add_special_tokens=False)["input_ids"]
        enc = scorer.encode(*ITEMS[2])
        assert enc.truncated and len(enc.ids) == 48
        assert enc.ids[-12:] == full_ids[-12:]
        assert scorer.tokenizer.decode(enc.ids).rstrip("<|eot_id|>").endswith("The answer is: C")
        assert enc.ids[:4] == full_ids[:4]
    finally:
        scorer.close()
    roles = [None] * 3 + ["user"] * 40 + [None] * 4 + ["assistant"] * 60 + [None]
    keep = fit_structure(roles, 40)
    assert len(keep) == 40 and {i for i, r in enumerate(roles) if r is None} <= set(keep)
    assert keep[-18:-1] == list(range(90, 107))  # the response's end (final answer) survives
    assert sum(3 <= i < 43 for i in keep) == 10  # the user text keeps a quarter of the budget
    with pytest.raises(ValueError, match="cannot be cut to 8 without cutting role headers"):
        fit_structure(roles, 8)


@pytest.mark.slow
def test_truncation_keeps_llama3_headers_and_gating_pattern(models):
    """A long prompt and a long response: the Llama-3 headers, the gating pattern and the answer survive; the cut
    falls inside the user text and the middle of the response; the gated model still gives a score."""
    instruction = "Question: " + "the of and to in is " * 30 + "What is 2 + 2?"
    sample = "Step 1: " + "abcdefghij " * 60 + "\n\nThe answer is: B"
    scorer = Scorer(models["gated"], options(max_input_length=64))
    try:
        enc = scorer.encode(instruction, sample)
        tokens = scorer.tokenizer.convert_ids_to_tokens(enc.ids)
        text = scorer.tokenizer.decode(enc.ids)
        gating = scorer.encoder.encode_text("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        assert enc.truncated and len(enc.ids) == 64
        assert tokens.count("<|start_header_id|>") == 2 and tokens.count("<|eot_id|>") == 2
        assert any(enc.ids[i:i + len(gating)] == gating for i in range(len(enc.ids)))
        assert text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQuestion:")
        assert text.endswith("The answer is: B<|eot_id|>") and "What is 2 + 2?" in text
        assert scorer.forward([enc])[0] == scorer.forward([enc])[0]  # finite and deterministic
    finally:
        scorer.close()


@pytest.mark.slow
def test_prm_aggregation_and_steps(models):
    """PRM columns: min/max/avg of the step list; one step score per blank-line step."""
    run = score_items(models["prm"], ITEMS, options(max_input_length=4096))
    assert [len(steps) for steps in run.results] == [3, 1, 2, 3]
    assert all(0 < p < 1 for steps in run.results for p in steps)
    columns, errors = row_columns(models["prm"], run.results, {}, [2, 2])
    assert not errors
    assert columns["prm_step_scores"][0][0] == run.results[0]
    assert columns["prm_min_scores"][0][0] == min(run.results[0])
    assert columns["prm_max_scores"][1][1] == max(run.results[3])
    assert columns["prm_avg_scores"][1][0] == pytest.approx(sum(run.results[2]) / 2)
    eurus = score_items(models["eurus"], ITEMS, options(max_input_length=4096))
    assert [len(steps) for steps in eurus.results] == [3, 1, 2, 3]
    assert len({round(s, 8) for steps in eurus.results for s in steps}) > 4  # not constant


def test_gpm_preference_scores_are_not_constant(models):
    """GPM: the card's preference score against the other samples; antisymmetric pairs; one sample -> None."""
    run = score_items(models["gpm"], ITEMS, options())
    assert all(math.isclose(sum(x * x for x in r["v"]), 1.0, rel_tol=1e-4) for r in run.results)
    columns, errors = row_columns(models["gpm"], run.results, {}, [3, 1])
    scores = columns["gpm_scores"][0]
    assert len({round(s, 6) for s in scores}) == 3
    assert run.results[0]["r"] == pytest.approx(run.results[2]["r"], abs=1e-5)  # same prompt, same eigenvalues
    assert gpm_pair_score(run.results[0], run.results[2]) == pytest.approx(
        -gpm_pair_score(run.results[2], run.results[0]), abs=1e-6)
    assert columns["gpm_scores"][1] == [None] and 3 in errors


@pytest.mark.slow
def test_ldl_reads_the_gated_rating_distribution(models):
    """LDL-Reward: base model + regression/gating MLPs from the .pt files, scored as the card's class does."""
    from transformers import AutoModel, AutoTokenizer

    path = models["ldl"].hf_id
    scores = score_items(models["ldl"], ITEMS[:2], options(max_input_length=4096)).results
    tok, base = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    expected = []
    for instruction, sample in ITEMS[:2]:
        chat = [{"role": "user", "content": instruction}, {"role": "assistant", "content": sample}]
        ids = tok(tok.apply_chat_template(chat, tokenize=False), add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            pooled = base(**ids).last_hidden_state[:, -1]
            heads = {n: torch.load(os.path.join(path, f"{n}_layer.pt")) for n in ("regression", "gating")}
            h = pooled
            for i in (0, 2, 4):
                h = torch.nn.functional.linear(h, heads["regression"][f"network.{i}.weight"],
                                               heads["regression"][f"network.{i}.bias"])
                h = torch.nn.functional.leaky_relu(h) if i < 4 else h
            dist = h.view(1, -1, 10).softmax(-1)
            g = pooled
            for i in (0, 3, 6):
                g = torch.nn.functional.linear(g, heads["gating"][f"network.{i}.weight"],
                                               heads["gating"][f"network.{i}.bias"])
                g = torch.nn.functional.leaky_relu(g) if i < 6 else g
            weights = (g / 0.5).softmax(-1)
            mixed = torch.bmm(weights.unsqueeze(1), dist).squeeze(1)
            expected.append(float((mixed * torch.linspace(0, 1, 10)).sum()))
    assert scores == pytest.approx(expected, abs=1e-5)
    assert all(0.0 <= s <= 1.0 for s in scores) and scores[0] != scores[1]


@pytest.mark.slow
def test_failures_are_none_not_zero(models):
    """A missing sample and a sample without steps become None with a reason, never 0.0."""
    run = score_items(models["prm"], [ITEMS[0], ("q", None), ("q", "\n\n  \n\n")], options())
    assert run.results[1] is None and run.results[2] is None
    assert set(run.errors) == {1, 2}
    columns, _ = row_columns(models["prm"], run.results, run.errors, [3])
    assert columns["prm_min_scores"][0][1:] == [None, None] and columns["prm_step_scores"][0][1] == []


@pytest.mark.slow
def test_empty_response_is_scored_by_an_outcome_rm(models):
    """An empty response is a real (bad) output: an outcome RM scores it; only a failed generation (None) is None."""
    run = score_items(models["llama"], [ITEMS[0], ("q", ""), ("q", None)], options())
    assert isinstance(run.results[1], float) and run.results[2] is None
    assert set(run.errors) == {2}


class FlakyScorer:
    """A scorer whose batches above two items run out of memory and whose item 'bad' always fails."""

    torch = torch

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def forward(self, batch: list[Encoded]) -> list[float]:
        self.batch_sizes.append(len(batch))
        if len(batch) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
        if any(e.ids == [-1] for e in batch):
            raise ValueError("bad input")
        return [float(len(e.ids)) for e in batch]


@pytest.mark.slow
def test_oom_backoff_and_failure_isolation():
    """OOM halves the batch; an item that fails alone is None with its reason; the rest are scored."""
    encoded = {i: Encoded(ids=[0] * (i + 1)) for i in range(7)}
    encoded[3] = Encoded(ids=[-1])
    results, errors, scorer = {}, {}, FlakyScorer()
    run_batches(scorer, encoded, 8, results.__setitem__, errors.__setitem__)
    assert scorer.batch_sizes[:3] == [7, 4, 2]  # all 7 items, then halved twice
    assert set(errors) == {3} and "bad input" in errors[3]
    assert results == {i: float(i + 1) for i in range(7) if i != 3}
