"""LM-judge prompts (standard and paragraph critique), chat rendering, and verdict parsing as pure functions."""
from __future__ import annotations

import json
import re

from generation.common.cli import UserError
from generation.common.records import stable_hash

STANDARD_SYSTEM = (
    "You are a strict grader of solutions to reasoning problems in mathematics, science, coding, logic and "
    "related fields. Judge the solution you are shown on these points: does every inference step follow from "
    "what came before; are the calculations right; are its assumptions justified and its edge cases covered; "
    "are the domain facts it relies on accurate; are its methods and computational techniques applied "
    "correctly; does it answer the whole question.\n"
    "Write your analysis first. Then end your reply with a final line holding exactly one word: True if you "
    "are highly confident that the solution and its final answer are correct, or False if you have any "
    "meaningful doubt."
)
STANDARD_USER = (
    "Problem:\n{instruction}\n\nSolution to evaluate:\n{sample}\n\n"
    "Analyze the reasoning and the solution, then give True or False on a new final line:"
)
CRITIQUE_SYSTEM = (
    "You review step-by-step solutions one paragraph at a time and locate the earliest paragraph that "
    "contains a mistake."
)
CRITIQUE_USER = (
    "Below are a math problem and a proposed solution. The solution is split into paragraphs, each wrapped in "
    "tags and numbered from 0.\n\n[Math Problem]\n\n{instruction}\n\n[Solution]\n\n{paragraphs}\n\n"
    "Check the paragraphs in order. If one of them contains an error, give the index of the earliest such "
    "paragraph; if every paragraph is correct, give -1. Put your final index in \\boxed{{}}."
)
DEFAULT_PROMPTS = {"standard": {"system": STANDARD_SYSTEM, "user": STANDARD_USER},
                   "critique": {"system": CRITIQUE_SYSTEM, "user": CRITIQUE_USER}}
PLACEHOLDERS = {"standard": ("instruction", "sample"), "critique": ("instruction", "paragraphs")}
PLAIN_ROLES = {"system": "", "user": "USER: ", "assistant": "ASSISTANT: "}

THINK_MARKERS = (("<think>", "</think>"), ("<|begin_of_thought|>", "<|end_of_thought|>"))
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def split_paragraphs(sample: str) -> list[str]:
    """The sample's paragraphs: text between blank lines, stripped, empty ones dropped."""
    return [part.strip() for part in PARAGRAPH_BREAK.split(sample) if part.strip()]


def load_judge_prompts(path: str) -> dict:
    """--judge_prompts FILE: JSON {"standard"|"critique": {"system": ..., "user": ...}}; modes not given keep ours.

    UserError (one line) for an unreadable file, unknown keys, or a user template missing its placeholders."""
    try:
        with open(path, encoding="utf-8") as handle:
            given = json.load(handle)
    except (OSError, ValueError) as err:
        raise UserError(f"--judge_prompts {path}: cannot read it as JSON ({err}); "
                        "see docs/step3-verifiers.md, Judge prompts") from None
    if not isinstance(given, dict) or not given or set(given) - set(DEFAULT_PROMPTS):
        raise UserError(f"--judge_prompts {path}: expected an object with keys among {sorted(DEFAULT_PROMPTS)}")
    prompts = dict(DEFAULT_PROMPTS)
    for mode, templates in given.items():
        if not isinstance(templates, dict) or set(templates) != {"system", "user"} or not all(
                isinstance(t, str) for t in templates.values()):
            raise UserError(f"--judge_prompts {path}: {mode!r} must be {{\"system\": str, \"user\": str}}")
        fields = {name: "x" for name in PLACEHOLDERS[mode]}
        try:
            templates["user"].format(**fields)
            templates["system"].format()
        except (KeyError, IndexError, ValueError) as err:
            raise UserError(f"--judge_prompts {path}: {mode} templates may use only {{{'}, {'.join(fields)}}} "
                            f"(user) and no placeholder (system; write {{{{ }}}} for braces): {err!r}") from None
        missing = [name for name in fields if "{" + name + "}" not in templates["user"]]
        if missing:
            raise UserError(f"--judge_prompts {path}: the {mode} user template lacks {{{'}, {'.join(missing)}}}")
        prompts[mode] = templates
    return prompts


def prompts_hash(prompts: dict | None, critique: bool) -> str:
    """Short sha256 of the templates a judge run uses (recorded in provenance and the verifier's checkpoint key)."""
    return stable_hash((prompts or DEFAULT_PROMPTS)["critique" if critique else "standard"])[:16]


def judge_messages(instruction: str, sample: str, critique: bool = False, prompts: dict | None = None) -> list[dict]:
    """The [system, user] chat asking for a True/False verdict, or (critique) the earliest wrong paragraph."""
    templates = (prompts or DEFAULT_PROMPTS)["critique" if critique else "standard"]
    if not critique:
        user = templates["user"].format(instruction=instruction, sample=sample)
    else:
        tagged = "\n\n".join(f"<paragraph_{i}>\n{text}\n</paragraph_{i}>"
                             for i, text in enumerate(split_paragraphs(sample)))
        user = templates["user"].format(instruction=instruction, paragraphs=tagged)
    return [{"role": "system", "content": templates["system"].format()}, {"role": "user", "content": user}]


def fold_system(messages: list[dict]) -> list[dict]:
    """Move system turns into the first user turn, for templates that reject the system role."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system and rest and rest[0]["role"] == "user":
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
    elif system:
        rest.insert(0, {"role": "user", "content": system})
    return rest


def template_accepts_system(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders a system turn (Gemma-2/Mistral templates raise)."""
    probe = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    try:
        tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
    except Exception:  # jinja's raise_exception gives TemplateError; some templates raise ValueError
        return False
    return True


def render_prompt(tokenizer, messages: list[dict], system_role: bool) -> str:
    """The chat rendered with the generation prompt (assistant header); Vicuna-style text without a template."""
    if not getattr(tokenizer, "chat_template", None):
        turns = "\n\n".join(PLAIN_ROLES[m["role"]] + m["content"] for m in messages)
        return f"{turns}\n\nASSISTANT:"
    from generation.backends.local_generation import fixed_date_kwargs

    chat = messages if system_role else fold_system(messages)
    return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True, **fixed_date_kwargs())


def opens_thinking(prompt: str) -> bool:
    """Whether the rendered prompt ends inside an opened thinking block (R1-style templates add '<think>')."""
    return prompt.rstrip().endswith(tuple(start for start, _ in THINK_MARKERS))


def strip_thinking(text: str, opened: bool = False) -> str | None:
    """The reply after its thinking block(s); None when a thinking block never closed (a truncated judgment)."""
    closed = False
    for start, end in THINK_MARKERS:
        if end in text:
            text = text.rsplit(end, 1)[1]
            closed = True
        elif start in text:
            return None
    return None if opened and not closed else text
