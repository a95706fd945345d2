"""Teach the example's tiny models sums of two digits up to 9 in the benchmark's prompt format (about two minutes on
2 cores).

The chat model learns to answer "Compute $a + b$." as Step 1 prompts it (MATH prompt, chat template); a share of its
taught answers are near misses, so at temperature 0.7 it is right on some samples and wrong on others. The reward
model, starting from the chat model's layers, learns to score a right sum above a wrong one, from right and
near-miss solutions and from the chat model's own samples. The judge, also starting from the chat model's layers,
learns to check a solution in the judge's prompt format (judges/prompts.py) with correct arithmetic: the right sum,
the answer the solution states, that answer minus the sum, then True when the difference is 0 (check()). It is
never told whether a sample is right; its subtractions are not always right, so at temperature its K verdicts on a
sample differ now and then and their mean is a graded score.

Every step is seeded and the numbers do not depend on the CPU: reproducible_numerics() (called before torch loads)
makes torch use its portable kernels instead of the AVX2/AVX-512 ones it picks per CPU, MKL its conditional
numerical reproducibility mode, and both one thread. The same seed, the same models on any x86 machine.
"""
from __future__ import annotations

import json
import os
import random
import re
import sys

from generation.data.benchmarks import math_prompt
from generation.judges.prompts import judge_messages

PAIRS = [(a, b) for a in range(1, 5) for b in range(1, 5)]  # 16 sums the tiny models can learn in a minute
WORDINGS = ("Compute ${}$.", "What is ${}$?", "Find the value of ${}$.", "Evaluate ${}$.")
PROBLEMS = [(a, b, w) for a, b in PAIRS for w in range(len(WORDINGS))]  # 64 problems: each sum in four wordings
CHAT_STEPS, RM_STEPS, JUDGE_STEPS = 400, 400, 300
BATCH, JUDGE_BATCH, CHAT_RATE, RM_RATE, JUDGE_RATE, SEED = 32, 16, 5e-3, 2e-3, 3e-3, 0
VERDICT_WEIGHT = 3.0  # the judge's True/False tokens weigh this many tokens of its checking in the loss
WRONG_TARGETS = 0.45  # share of taught answers that are near misses: sampled answers are right about 2 times in 3
VOCAB = 800  # the tokenizer also learns the example's prompts (judge prompt ~230 tokens, not ~610): cheaper to train
OWN_SAMPLES = 4  # the chat model's own samples per problem (temperature 0.7 as in the example) the verifiers learn from
MARKER = "trained.json"  # written last: a folder holding it is a finished model
STATED = re.compile(r"The answer is: (\S+)\s*$")  # the answer a solution states (the line Step 2 reads)
# torch's portable kernels (not the AVX2/AVX-512 ones it picks per CPU), MKL's reproducible mode, one thread each
NUMERICS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE,STRICT", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def reproducible_numerics() -> None:
    """Make this process's torch compute the same numbers on every x86 CPU (call before torch is imported)."""
    if "torch" in sys.modules:
        raise RuntimeError("reproducible_numerics() must run before torch is imported")
    os.environ.update(NUMERICS)


def problem(a: int, b: int, wording: int = 0) -> str:
    """A MATH-style problem."""
    return WORDINGS[wording].format(f"{a} + {b}")


def solution(a: int, b: int, c: int) -> str:
    """A worked solution ending in the line Step 2 reads."""
    return f"{a} + {b} = {c}.\nThe answer is: {c}"


def corpus() -> list[str]:
    """Texts the example's tokenizer learns besides the tests' corpus: a judge prompt over a MATH prompt and answer."""
    return [m["content"] for m in judge_messages(math_prompt(problem(3, 4)), solution(3, 4, 7))] + [
        problem(3, 4, w) for w in range(len(WORDINGS))]


def math_rows(seed: int = SEED) -> list[dict]:
    """The example's benchmark rows, in HuggingFaceH4/MATH-500's schema (every problem, in a seeded order)."""
    rng = random.Random(seed)
    return [{"problem": problem(a, b, w), "solution": solution(a, b, a + b), "answer": str(a + b),
             "subject": "Prealgebra", "level": 1, "unique_id": f"test/prealgebra/{a}{b}{w}.json"}
            for a, b, w in rng.sample(PROBLEMS, len(PROBLEMS))]


def wrong_sum(rng: random.Random, a: int, b: int) -> int:
    """A near miss that is still a digit (the chat model's typical mistake; what the verifiers learn to reject)."""
    return rng.choice([c for c in range(a + b - 2, a + b + 3) if c != a + b])


def padded(sequences: list[tuple[list[int], list[int]]], pad: int, left: bool = False):
    """(ids, labels) pairs padded into tensors (on the right; on the left, every row ends where its completion ends):
    ids, attention mask, labels (-100 where no loss)."""
    import torch

    width = max(len(ids) for ids, _ in sequences)
    ids = torch.full((len(sequences), width), pad)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    labels = torch.full((len(sequences), width), -100)
    for row, (tokens, targets) in enumerate(sequences):
        start = width - len(tokens) if left else 0
        ids[row, start:start + len(tokens)] = torch.tensor(tokens)
        mask[row, start:start + len(tokens)] = 1
        labels[row, start:start + len(targets)] = torch.tensor(targets)
    return ids, mask, labels


def completion_pair(tok, messages: list[dict], completion: str) -> tuple[list[int], list[int]]:
    """Prompt (chat template, generation header) plus completion and EOS; the loss is on the completion only."""
    prompt = tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
                 add_special_tokens=False).input_ids
    answer = tok(completion, add_special_tokens=False).input_ids + [tok.eos_token_id]
    return prompt + answer, [-100] * len(prompt) + answer


def shown_sum(rng: random.Random, a: int, b: int) -> tuple[int, bool]:
    """A sum to show a verifier, right or a near miss with even odds, and whether it is right."""
    right = rng.random() < 0.5
    return (a + b if right else wrong_sum(rng, a, b)), right


def chat_batch(tok, rng: random.Random):
    """A batch of addition problems with worked answers, a share of them near misses."""
    pairs = []
    for _ in range(BATCH):
        a, b, w = rng.choice(PROBLEMS)
        c = wrong_sum(rng, a, b) if rng.random() < WRONG_TARGETS else a + b
        pairs.append(completion_pair(tok, [{"role": "user", "content": math_prompt(problem(a, b, w))}],
                                     solution(a, b, c)))
    return padded(pairs, tok.pad_token_id, left=True)


def check(a: int, b: int, text: str) -> str:
    """The judge's checking of a solution to a + b: the right sum, the stated answer minus it, then the verdict (True
    when that difference is 0). Each step is arithmetic on the two numbers just before it, as in the chat model's
    own sums; a verdict comparing two distant numbers directly is beyond what a model this small learns in minutes."""
    stated = STATED.search(text.strip())
    if stated is None or not stated.group(1).lstrip("-").isdigit():
        return f"{a} + {b} = {a + b}. The solution states no number.\nFalse"
    c, difference = stated.group(1), int(stated.group(1)) - (a + b)
    return f"{a} + {b} = {a + b}. The solution says {c}. {c} - {a + b} = {difference}.\n{difference == 0}"


def judge_batch(tok, rng: random.Random, samples: list[tuple[int, int, int, str]]):
    """Judge prompts over solutions (half the chat model's own samples, half right or near-miss worked solutions)
    with their checking as the completion."""
    shown = rng.sample(samples, JUDGE_BATCH // 2)
    for a, b, w in rng.choices(PROBLEMS, k=JUDGE_BATCH - len(shown)):
        shown.append((a, b, w, solution(a, b, shown_sum(rng, a, b)[0])))
    checks = [check(a, b, text) for a, b, w, text in shown]
    batch = padded([completion_pair(tok, judge_messages(math_prompt(problem(a, b, w)), text), checked)
                    for (a, b, w, text), checked in zip(shown, checks)], tok.pad_token_id, left=True)
    return (*batch, [verdict_length(tok, checked) for checked in checks])


def verdict_length(tok, checked: str) -> int:
    """How many tokens the verdict (the last line) of a checking takes ("True" may be two: "Tr", "ue")."""
    return len(tok(checked, add_special_tokens=False).input_ids) - len(
        tok(checked.rsplit("\n", 1)[0] + "\n", add_special_tokens=False).input_ids)


def own_samples(chat_model: str, seed: int) -> list[tuple[int, int, int, str]]:
    """OWN_SAMPLES of the taught chat model's answers to every problem, sampled as the example samples them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(chat_model)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(chat_model)
    prompts = [tok.apply_chat_template([{"role": "user", "content": math_prompt(problem(*p))}], tokenize=False,
                                       add_generation_prompt=True) for p in PROBLEMS]
    batch = tok(prompts, add_special_tokens=False, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, do_sample=True, temperature=0.7, max_new_tokens=24,
                             num_return_sequences=OWN_SAMPLES, pad_token_id=tok.pad_token_id)
    texts = tok.batch_decode(out[:, batch.input_ids.shape[1]:], skip_special_tokens=True)
    return [(*PROBLEMS[i // OWN_SAMPLES], text) for i, text in enumerate(texts)]


def rm_batch(tok, rng: random.Random, samples: list[tuple[int, int, int, str]]):
    """Chats (problem, solution) as the reward model reads them, labelled 1 for a right sum: half are the chat
    model's own samples, half right or near-miss solutions with even odds."""
    import torch

    shown = rng.sample(samples, BATCH // 2)
    for a, b, w in rng.choices(PROBLEMS, k=BATCH - len(shown)):
        shown.append((a, b, w, solution(a, b, shown_sum(rng, a, b)[0])))
    pairs, labels = [], []
    for a, b, w, text in shown:
        chat = [{"role": "user", "content": math_prompt(problem(a, b, w))}, {"role": "assistant", "content": text}]
        ids = tok(tok.apply_chat_template(chat, tokenize=False), add_special_tokens=False).input_ids
        pairs.append((ids, ids))
        labels.append(float(check(a, b, text).endswith("True")))
    ids, mask, _ = padded(pairs, tok.pad_token_id)
    return ids, mask, torch.tensor(labels)


def train(model, batches, steps: int, rate: float, loss_of) -> float:
    """steps of AdamW on loss_of(model, batch); returns the last loss."""
    import torch

    torch.set_num_threads(1)  # tiny matrices: a second thread gains little, and under load its spin-waits cost a lot
    optimiser = torch.optim.AdamW(model.parameters(), lr=rate)
    model.train()
    loss = None
    for step in range(steps):
        loss = loss_of(model, batches(step))
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
    model.eval()
    return loss.item()


def teach_chat_model(path: str, seed: int = SEED) -> None:
    """Train the chat model at path in place (answers and judge verdicts); marks it finished."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    loss = train(model, lambda step: chat_batch(tok, rng), CHAT_STEPS, CHAT_RATE, completion_loss)
    finish(model, path, {"steps": CHAT_STEPS, "seed": seed, "last_loss": loss})


def completion_loss(model, batch, verdict_weight: float = 1.0):
    """Next-token loss on the completions of a left-padded batch, with logits for the completion positions only (the
    LM head over every prompt token would be most of a step's work). A batch with per-row verdict lengths: each
    verdict token (those before the closing EOS that ends every row) weighs verdict_weight tokens."""
    import torch

    ids, mask, labels, *verdicts = batch
    keep = int((labels != -100).sum(dim=1).max()) + 1
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # as generation numbers left-padded positions
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
    targets = labels[:, 1 - keep:]
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets, ignore_index=-100,
                                               reduction="none")
    weights = (targets != -100).float()
    if verdicts:
        offset = torch.arange(targets.shape[1] - 1, -1, -1)  # 0 at the EOS, 1 just before it, ...
        weights[(offset >= 1) & (offset <= torch.tensor(verdicts[0])[:, None])] = verdict_weight
    return (losses * weights).sum() / weights.sum()


def teach_judge_model(path: str, chat_model: str, seed: int = SEED) -> None:
    """Train a judge, starting from the taught chat model's layers, to check solutions (correct arithmetic, then
    True or False); saves it with the chat model's tokenizer at path and marks it finished."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed + 2)
    tok = AutoTokenizer.from_pretrained(chat_model)
    model = AutoModelForCausalLM.from_pretrained(chat_model)
    tok.save_pretrained(path)
    samples = own_samples(chat_model, seed)
    loss = train(model, lambda step: judge_batch(tok, rng, samples), JUDGE_STEPS, JUDGE_RATE,
                 lambda m, batch: completion_loss(m, batch, VERDICT_WEIGHT))
    finish(model, path, {"steps": JUDGE_STEPS, "seed": seed, "last_loss": loss})


def teach_reward_model(path: str, chat_model: str, seed: int = SEED) -> None:
    """Train a sequence classifier (one score), starting from the taught chat model's layers, to score right sums
    high; saves it with the chat model's tokenizer at path and marks it finished."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed + 1)
    tok = AutoTokenizer.from_pretrained(chat_model)
    model = AutoModelForSequenceClassification.from_pretrained(chat_model, num_labels=1)
    tok.save_pretrained(path)

    def loss_of(m, batch):
        logits = m(input_ids=batch[0], attention_mask=batch[1]).logits.squeeze(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, batch[2])

    samples = own_samples(chat_model, seed)
    loss = train(model, lambda step: rm_batch(tok, rng, samples), RM_STEPS, RM_RATE, loss_of)
    finish(model, path, {"steps": RM_STEPS, "seed": seed, "last_loss": loss})


def finish(model, path: str, record: dict) -> None:
    """Save the trained weights, then the marker."""
    model.save_pretrained(path)
    with open(os.path.join(path, MARKER), "w") as handle:
        json.dump(record, handle)


def is_trained(path: str, seed: int = SEED) -> bool:
    """Whether the model at path has been taught with this seed (its marker is there and names the seed)."""
    try:
        with open(os.path.join(path, MARKER)) as handle:
            return json.load(handle).get("seed") == seed
    except (OSError, ValueError):
        return False
