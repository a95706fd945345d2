"""Reward-model inputs: the chat each loader kind is shown, tokenised once, and truncation that keeps its structure."""
from __future__ import annotations

from dataclasses import dataclass, field

from generation.reward_models.registry import RewardModelSpec
from generation.reward_models.truncation import fit_structure, message_spans, token_offsets, token_roles

STEP_TOKEN = "<extra_0>"
TORCH_DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class ScoreOptions:
    """How to run a model: device, dtype, attention, batching and truncation."""

    device: str = "cpu"
    dtype: str = "auto"
    attn_implementation: str = "auto"
    batch_size: int = 4
    max_input_length: int = 2048
    device_map: str | None = None  # "auto" spreads a model over every visible GPU
    backend: str = "transformers"  # or "vllm": vLLM's pooling runner for the kinds it has built in


@dataclass
class Encoded:
    """One tokenised (instruction, sample) pair ready for the model."""

    ids: list[int]
    truncated: bool = False
    prompt_len: int = 0
    marks: list[int] = field(default_factory=list)  # implicit PRM: the token read for each step
    start: int = 0  # implicit PRM: the first token whose reward counts


@dataclass(frozen=True)
class InputFormat:
    """How a kind shows the response: whole, or as steps joined by a marker; extra tokens; where the prompt ends."""

    step_join: str | None = None  # None: the sample as it is
    step_end: bool = False  # a marker after the last step too (Qwen PRM)
    reward_token: bool = False  # InternLM2: its reward token appended
    eos_last: bool = False  # GPM: the last token forced to EOS
    prompt_with_header: bool = True  # GPM: the prompt ends before the assistant header


FORMATS = {"step_prm": InputFormat(step_join=STEP_TOKEN, step_end=True), "implicit_prm": InputFormat(step_join="\n\n"),
           "internlm2": InputFormat(reward_token=True), "gpm": InputFormat(eos_last=True, prompt_with_header=False)}


def resolve_dtype(spec: RewardModelSpec, options: ScoreOptions) -> str:
    """The dtype to load with: the registry's on GPU, float32 on CPU, unless --dtype says otherwise."""
    if options.dtype != "auto":
        return options.dtype
    return spec.dtype if options.device.startswith("cuda") else "float32"


def split_steps(sample: str) -> list[str]:
    """Reasoning steps: the non-empty blocks between blank lines, as the Qwen PRM and Eurus cards do."""
    return [step.strip() for step in sample.split("\n\n") if step.strip()]


class ChatEncoder:
    """The model's own tokenizer and chat template, and the input format of its kind."""

    def __init__(self, spec: RewardModelSpec, options: ScoreOptions, reward_token_id: int | None = None) -> None:
        from transformers import AutoTokenizer

        self.spec, self.options, self.format = spec, options, FORMATS.get(spec.kind, InputFormat())
        self.tokenizer = AutoTokenizer.from_pretrained(spec.hf_id, revision=spec.revision,
                                                       trust_remote_code=spec.trust_remote_code)
        self.reward_token_id = reward_token_id
        self.step_id = self._special_id(STEP_TOKEN) if self.format.step_join == STEP_TOKEN else None
        self.expected_bos = self._template_bos()
        # special and added tokens (role headers, <think>/</think>, step markers) are template, never cut
        self.never_cut = set(self.tokenizer.all_special_ids) | set(self.tokenizer.added_tokens_decoder)

    def _special_id(self, token: str) -> int:
        """Id of a special token the kind needs; an error if the tokenizer lacks it."""
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise RuntimeError(f"{self.spec.hf_id}: tokenizer has no {token} token")
        return token_id

    def _template_bos(self) -> int:
        """How many BOS ids every input must start with: 1 if the chat template renders the BOS token, else 0."""
        bos = self.tokenizer.bos_token
        if not bos:
            return 0
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
        return 1 if text.startswith(bos) else 0

    def messages(self, instruction: str, sample: str, steps: list[str] | None = None) -> list[dict]:
        """The chat the model is shown (steps joined by the kind's marker, the card's system prompt)."""
        content = sample
        if self.format.step_join is not None:
            if steps is None:
                steps = split_steps(sample)
                if not steps:
                    raise ValueError("sample has no reasoning steps")
            content = self.format.step_join.join(steps) + (self.format.step_join if self.format.step_end else "")
        chat = [{"role": "user", "content": instruction}, {"role": "assistant", "content": content}]
        if self.spec.system_prompt:
            chat.insert(0, {"role": "system", "content": self.spec.system_prompt})
        return chat

    def encode_text(self, text: str) -> list[int]:
        """Token ids of rendered text; the template already holds the special tokens, so none are added."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def render(self, chat: list[dict]) -> str:
        """The chat as the template renders it, without a generation header."""
        return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=False)

    def encode(self, instruction: str, sample: str) -> Encoded:
        """Render the chat template once, tokenise once, check the BOS count, and cut to fit keeping the structure."""
        chat = self.messages(instruction, sample)
        text = self.render(chat)
        ids = self.encode_text(text)
        if self.format.reward_token:
            ids = ids + [self.reward_token_id]
        if self.format.eos_last and self.tokenizer.eos_token_id is not None:
            ids[-1] = self.tokenizer.eos_token_id  # the GPM card forces the last token to EOS
        self._check_bos(ids)
        enc = Encoded(ids=ids, prompt_len=self._prompt_len(chat, text, ids))
        if self.spec.kind == "implicit_prm":
            positions = self._card_step_positions(instruction, sample)
            enc.start, enc.marks = positions[0], [p + 1 for p in positions[1:]]
        if len(ids) > self.options.max_input_length:
            roles = token_roles(message_spans(self.render, chat, text), token_offsets(self.tokenizer, text, ids),
                                ids, self.never_cut, protect=set(enc.marks))
            keep = fit_structure(roles, self.options.max_input_length)
            new_index = {old: new for new, old in enumerate(keep)}
            enc = Encoded(ids=[ids[i] for i in keep], truncated=True,
                          prompt_len=new_index.get(enc.prompt_len - 1, -1) + 1,
                          marks=[new_index[m] for m in enc.marks], start=new_index.get(enc.start, 0))
        return enc

    def _check_bos(self, ids: list[int]) -> None:
        """A systematic tokenisation error (a second BOS) fails the whole model, never silently."""
        bos_id, leading = self.tokenizer.bos_token_id, 0
        while bos_id is not None and leading < len(ids) and ids[leading] == bos_id:
            leading += 1
        if leading != self.expected_bos:
            raise AssertionError(f"{self.spec.name}: input starts with {leading} BOS tokens, "
                                 f"expected exactly {self.expected_bos}")

    def _prompt_len(self, chat: list[dict], text: str, ids: list[int]) -> int:
        """Number of tokens before the response (GPM: the prompt without the generation header, as its card)."""
        prefix = self.tokenizer.apply_chat_template(chat[:-1], tokenize=False,
                                                    add_generation_prompt=self.format.prompt_with_header)
        if not text.startswith(prefix):
            return 0
        prefix_ids = self.encode_text(prefix)
        return len(prefix_ids) if ids[:len(prefix_ids)] == prefix_ids else 0

    def _card_step_positions(self, instruction: str, sample: str) -> list[int]:
        """Eurus card: for k = 0..n steps, render the chat with the first k steps, strip it, add the separator
        unless k is 0 or n, and take (token count - 2); the k = 0 position starts the reward sum."""
        steps = split_steps(sample)
        positions = []
        for k in range(len(steps) + 1):
            prefix = self.render(self.messages(instruction, sample, steps[:k])).strip()
            positions.append(len(self.encode_text(prefix + ("\n\n" if 0 < k < len(steps) else ""))) - 2)
        return positions
