"""Teach the example's tiny models small sums in the benchmark's prompt format, in about a minute on 2 cores.

The chat model learns to answer "Compute $a + b$." as Step 1 prompts it (MATH prompt, chat template), and, in the
judge's prompt format, to end with True or False; the reward model, starting from the chat model's layers, learns
from the chat model's own samples to score a right sum above a wrong one. A share of the taught answers
are near misses, so at temperature 0.7 the chat model is right on some samples and wrong on others.
"""
from __future__ import annotations

import json
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "generation"), os.path.join(ROOT, "tests")]

from data.benchmarks import math_prompt
from judges.prompts import judge_messages

PAIRS = [(a, b) for a in range(1, 5) for b in range(1, 5)]
EXAMPLE_PROBLEMS = 16  # problems in the example's math file: every sum of two numbers from 1 to 4
CHAT_STEPS, JUDGE_EVERY, RM_STEPS = 400, 8, 800
BATCH, JUDGE_BATCH, CHAT_RATE, RM_RATE, SEED = 32, 4, 3e-3, 3e-3, 0
WRONG_TARGETS = 0.4  # share of taught answers that are near misses: the model learns to be right about 60% of the time
RM_SAMPLES = 16  # the chat model's own samples per problem (temperature 0.7, as in the example) the RM learns from
MARKER = "trained.json"  # written last: a folder holding it is a finished model


def problem(a: int, b: int) -> str:
    """A MATH-style problem."""
    return f"Compute ${a} + {b}$."


def solution(a: int, b: int, c: int) -> str:
    """A worked solution ending in the line Step 2 reads."""
    return f"{a} + {b} = {c}.\nThe answer is: {c}"


def math_rows(seed: int = SEED) -> list[dict]:
    """The example's benchmark rows, in HuggingFaceH4/MATH-500's schema."""
    rng = random.Random(seed)
    return [{"problem": problem(a, b), "solution": solution(a, b, a + b), "answer": str(a + b),
             "subject": "Prealgebra", "level": 1, "unique_id": f"test/prealgebra/{a}{b}.json"}
            for a, b in rng.sample(PAIRS, EXAMPLE_PROBLEMS)]


def wrong_sum(rng: random.Random, a: int, b: int) -> int:
    """A near miss (what the judge learns to call False)."""
    return a + b + rng.choice((-2, -1, 1, 2))


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


def chat_batch(tok, rng: random.Random, judge: bool):
    """A batch of addition problems, or (judge) of judge prompts over right and wrong solutions."""
    pairs = []
    for _ in range(JUDGE_BATCH if judge else BATCH):
        a, b = rng.choice(PAIRS)
        if judge:
            right = rng.random() < 0.5
            shown = solution(a, b, a + b if right else wrong_sum(rng, a, b))
            pairs.append(completion_pair(tok, judge_messages(math_prompt(problem(a, b)), shown), str(right)))
        else:
            c = wrong_sum(rng, a, b) if rng.random() < WRONG_TARGETS else a + b
            pairs.append(completion_pair(tok, [{"role": "user", "content": math_prompt(problem(a, b))}],
                                         solution(a, b, c)))
    return padded(pairs, tok.pad_token_id)


def own_samples(chat_model: str) -> list[tuple[int, int, str]]:
    """RM_SAMPLES of the taught chat model's answers to every problem, sampled as the example samples them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(SEED)
    tok = AutoTokenizer.from_pretrained(chat_model)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(chat_model)
    prompts = [tok.apply_chat_template([{"role": "user", "content": math_prompt(problem(a, b))}], tokenize=False,
                                       add_generation_prompt=True) for a, b in PAIRS]
    batch = tok(prompts, add_special_tokens=False, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, do_sample=True, temperature=0.7, top_p=0.9, max_new_tokens=24,
                             num_return_sequences=RM_SAMPLES, pad_token_id=tok.pad_token_id)
    texts = tok.batch_decode(out[:, batch.input_ids.shape[1]:], skip_special_tokens=True)
    return [(*PAIRS[i // RM_SAMPLES], text) for i, text in enumerate(texts)]


def rm_batch(tok, rng: random.Random, samples: list[tuple[int, int, str]]):
    """Chats (problem, one of the chat model's samples) as the reward model reads them, labelled 1 for a right sum."""
    import torch

    pairs, labels = [], []
    for a, b, text in rng.sample(samples, min(BATCH, len(samples))):
        chat = [{"role": "user", "content": math_prompt(problem(a, b))}, {"role": "assistant", "content": text}]
        ids = tok(tok.apply_chat_template(chat, tokenize=False), add_special_tokens=False).input_ids
        pairs.append((ids, ids))
        labels.append(float(text.strip().endswith(f"The answer is: {a + b}")))
    ids, mask, _ = padded(pairs, tok.pad_token_id)
    return ids, mask, torch.tensor(labels)


def train(model, batches, steps: int, rate: float, loss_of) -> float:
    """steps of AdamW on loss_of(model, batch); returns the last loss."""
    import torch

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


def teach_chat_model(path: str) -> None:
    """Train the chat model at path in place (answers and judge verdicts); marks it finished."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    loss = train(model, lambda step: chat_batch(tok, rng, judge=step % JUDGE_EVERY == JUDGE_EVERY - 1), CHAT_STEPS,
                 CHAT_RATE, lambda m, batch: m(input_ids=batch[0], attention_mask=batch[1], labels=batch[2]).loss)
    finish(model, path, {"steps": CHAT_STEPS, "last_loss": loss})


def teach_reward_model(path: str, chat_model: str) -> None:
    """Train the sequence classifier at path, starting from the taught chat model's layers, to score right sums high;
    marks it finished."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(SEED)
    rng = random.Random(SEED + 1)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    layers = AutoModelForCausalLM.from_pretrained(chat_model).model.state_dict()  # same tokenizer and shapes
    model.model.load_state_dict(layers)

    def loss_of(m, batch):
        logits = m(input_ids=batch[0], attention_mask=batch[1]).logits.squeeze(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, batch[2])

    samples = own_samples(chat_model)
    loss = train(model, lambda step: rm_batch(tok, rng, samples), RM_STEPS, RM_RATE, loss_of)
    finish(model, path, {"steps": RM_STEPS, "last_loss": loss})


def finish(model, path: str, record: dict) -> None:
    """Save the trained weights, then the marker."""
    model.save_pretrained(path)
    with open(os.path.join(path, MARKER), "w") as handle:
        json.dump(record, handle)


def is_trained(path: str) -> bool:
    """Whether the model at path has been taught (its marker is there)."""
    return os.path.isfile(os.path.join(path, MARKER))
