"""Cutting an over-long reward-model input: where each message's text lies in the rendered chat (however the
template rewrote it), which tokens hold it (with or without the tokenizer's offsets), and which tokens to drop."""
from __future__ import annotations

import os
from typing import Any, Callable

CUT_ROLES = ("user", "assistant")
MAX_PIECE_TOKENS = 8  # tokens decoded together at most to find one piece of text (a multi-byte character)
MAX_SKIP = 16  # characters passed over after a token that could not be placed (an unknown token's text)


def fit_structure(roles: list[str | None], max_len: int) -> list[int]:
    """Indices of the tokens to keep so at most max_len remain, cutting only user text and the response's middle.

    roles[i] is "user" / "assistant" for a token inside that message's text, None for anything else (template,
    role headers, special and step tokens), which is never cut. The user text is cut to a quarter of the budget
    first, then the response (keeping its start and most of its end, with the final answer), then the user text.
    """
    excess = len(roles) - max_len
    user = [i for i, r in enumerate(roles) if r == "user"]
    answer = [i for i, r in enumerate(roles) if r == "assistant"]
    cut_user = min(excess, max(0, len(user) - max_len // 4))
    cut_answer = min(excess - cut_user, max(0, len(answer) - max_len // 4))
    cut_user += min(excess - cut_user - cut_answer, len(user) - cut_user)
    if cut_user + cut_answer < excess:
        raise ValueError(f"input of {len(roles)} tokens cannot be cut to {max_len} without cutting role headers, "
                         "template or step markers, or the final answer")
    dropped = set(_middle(user, cut_user, 2)) | set(_middle(answer, cut_answer, 4))
    return [i for i in range(len(roles)) if i not in dropped]


def _middle(positions: list[int], count: int, head_share: int) -> list[int]:
    """count consecutive entries of positions, leaving 1/head_share of the rest before them."""
    head = (len(positions) - count) // head_share
    return positions[head:head + count]


def message_spans(render: Callable[[list[dict]], str], chat: list[dict], text: str) -> list[tuple[int, int, str]]:
    """(start, end, role) of the user and assistant texts in text (the rendered chat): the part of the rendering
    that changes when that message's content is emptied, so templates that rewrite a message (Qwen3 re-wraps a
    reply's <think> block) still show where its text lies; text both renderings share is never cut."""
    spans = []
    for index, message in enumerate(chat):
        if message["role"] not in CUT_ROLES or not message["content"]:
            continue
        other = render([dict(m, content="") if i == index else m for i, m in enumerate(chat)])
        start = len(os.path.commonprefix([text, other]))
        end = len(text) - len(os.path.commonprefix([text[start:][::-1], other[start:][::-1]]))
        if start < end:
            spans.append((start, end, message["role"]))
    return spans


def token_offsets(tokenizer: Any, text: str, ids: list[int]) -> list[tuple[int, int]]:
    """(start, end) in text of each token of ids (text's tokens): the fast tokenizer's offsets, else found by
    decoding the tokens in order (slow tokenizers have none); a token that cannot be placed gets an empty span."""
    if tokenizer.is_fast:
        return tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    offsets: list[tuple[int, int]] = []
    position, group, lost = 0, [], False
    for token_id in ids:
        group.append(token_id)
        piece = tokenizer.decode(group, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if "\ufffd" in piece and len(group) < MAX_PIECE_TOKENS:
            continue  # part of a multi-byte character: place it together with the next token
        core = piece.strip() or piece
        at = text.find(core, position)
        skipped = text[position:at] if at >= 0 else ""
        if at < 0 or (skipped.strip() and not (lost and len(skipped) <= MAX_SKIP)):
            offsets += [(position, position)] * len(group)  # not next in the text (an unknown token): never cut
            lost = True
        else:
            offsets += [(at, at + len(core))] * len(group)
            position, lost = at + len(core), False
        group = []
    return offsets + [(position, position)] * len(group)


def token_roles(spans: list[tuple[int, int, str]], offsets: list[tuple[int, int]], ids: list[int],
                never_cut: set[int], protect: set[int]) -> list[str | None]:
    """Per token: the role whose message text holds it (cuttable), or None (template, never_cut ids, protected
    positions, or a token past the rendered text, such as an appended reward token)."""
    roles: list[str | None] = [None] * len(ids)
    for index, (start, end) in enumerate(offsets[:len(ids)]):
        if index in protect or ids[index] in never_cut:
            continue
        roles[index] = next((role for s, e, role in spans if s <= start and end <= e and start < end), None)
    return roles
