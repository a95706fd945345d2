"""Teach the example's tiny models sums of two digits up to 9 in the benchmark's prompt format (about a minute on 2 cores).

The chat model learns to answer "Compute $a + b$." as Step 1 prompts it (MATH prompt, chat template); a share of its
taught answers are near misses, so at temperature 0.7 it is right on some samples and wrong on others. In the
judge's prompt format (judges/prompts.py) it learns to end with True for a right sum and False for a wrong one. The
reward model, starting from the chat model's layers, learns to score a right sum above a wrong one, from right and
near-miss solutions and from the chat model's own samples. Every step is seeded: the same seed, the same models.
"""
from __future__ import annotations

import json
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from generation.data.benchmarks import math_prompt
from generation.judges.prompts import judge_messages

PAIRS = [(a, b) for a in range(1, 5) for b in range(1, 5)]  # 16 sums the tiny models can learn in a minute
WORDINGS = ("Compute ${}$.", "What is ${}$?", "Find the value of ${}$.", "Evaluate ${}$.")
PROBLEMS = [(a, b, w) for a, b in PAIRS for w in range(len(WORDINGS))]  # 64 problems: each sum in four wordings
CHAT_STEPS, JUDGE_EVERY, RM_STEPS = 400, 3, 400
BATCH, JUDGE_BATCH, CHAT_RATE, RM_RATE, SEED = 32, 8, 5e-3, 2e-3, 0
WRONG_TARGETS = 0.45  # share of taught answers that are near misses: sampled answers are right about 2 times in 3
VOCAB = 800  # the tokenizer also learns the example's prompts (judge prompt ~230 tokens, not ~610): cheaper to train
RM_SAMPLES = 4  # the chat model's own samples per problem (temperature 0.7, as in the example) the RM also learns from
MARKER = "trained.json"  # written last: a folder holding it is a finished model


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


def padded(sequences: list[tuple[list[int], list[int]]], pad: int):
    """(ids, labels) pairs right-padded into tensors: ids, attention mask, labels (-100 where no loss)."""
    import torch

    width = max(len(ids) for ids, _ in sequences)
    ids = torch.full((len(sequences), width), pad)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    labels = torch.full((len(sequences), width), -100)
    for row, (tokens, targets) in enumerate(sequences):
        ids[row, :len(tokens)] = torch.tensor(tokens)
        mask[row, :len(tokens)] = 1
        labels[row, :len(targets)] = torch.tensor(targets)
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


def chat_batch(tok, rng: random.Random, judge: bool):
    """A batch of addition problems, or (judge) of judge prompts over right and wrong solutions."""
    pairs = []
    for _ in range(JUDGE_BATCH if judge else BATCH):
        a, b, w = rng.choice(PROBLEMS)
        if judge:
            c, right = shown_sum(rng, a, b)
            pairs.append(completion_pair(tok, judge_messages(math_prompt(problem(a, b, w)), solution(a, b, c)),
                                         str(right)))
        else:
            c = wrong_sum(rng, a, b) if rng.random() < WRONG_TARGETS else a + b
            pairs.append(completion_pair(tok, [{"role": "user", "content": math_prompt(problem(a, b, w))}],
                                         solution(a, b, c)))
    return padded(pairs, tok.pad_token_id)


def own_samples(chat_model: str, seed: int) -> list[tuple[int, int, int, str]]:
    """RM_SAMPLES of the taught chat model's answers to every problem, sampled as the example samples them."""
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
                             num_return_sequences=RM_SAMPLES, pad_token_id=tok.pad_token_id)
    texts = tok.batch_decode(out[:, batch.input_ids.shape[1]:], skip_special_tokens=True)
    return [(*PROBLEMS[i // RM_SAMPLES], text) for i, text in enumerate(texts)]


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
        labels.append(float(text.strip().endswith(f"The answer is: {a + b}")))
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
    loss = train(model, lambda step: chat_batch(tok, rng, judge=step % JUDGE_EVERY == JUDGE_EVERY - 1), CHAT_STEPS,
                 CHAT_RATE, lambda m, batch: m(input_ids=batch[0], attention_mask=batch[1], labels=batch[2]).loss)
    finish(model, path, {"steps": CHAT_STEPS, "seed": seed, "last_loss": loss})


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
