"""Step 3b pure parts: verdict parsing, prompts and chat rendering, the judge registry, settings and columns."""

import pytest

from generation.common.cli import UserError, settings_from
from generation.judges.judging import JudgeOptions, judge_columns, judge_settings, resolve_judges
from generation.judges.prompts import (
    fold_system,
    judge_messages,
    opens_thinking,
    render_prompt,
    split_paragraphs,
    template_accepts_system,
)
from generation.judges.registry import JUDGE_REGISTRY, JUDGES, markdown_table, parse_judge
from generation.judges.verdicts import parse_critique, parse_verdict
from generation.steps.settings import VerifySettings
from generation.steps.verify import build_parser

from tiny_models import NO_SYSTEM_TEMPLATE, build_tokenizer

VERDICTS = [
    ("The steps check out.\nTrue", 1.0),
    ("One step divides by zero.\nFalse", 0.0),
    ("Analysis.\n\n**True**", 1.0),
    ("Analysis.\nFinal verdict: False.", 0.0),
    ("Analysis.\n\\boxed{True}", 1.0),
    ("Analysis.\nFinal answer: \\boxed{\\text{False}}", 0.0),
    ("Answer (True or False): False", 0.0),
    ("The claim is untrue", None),  # whole words only: "untrue" is not "true"
    ("This is not true", 0.0),
    ("That isn't true.", 0.0),
    ("Not false.", 1.0),
    ("Careful: a false positive is possible", None),
    ("This is a true negative", None),
    ("verdict\nTRUE", 1.0),
    ("Verdict:\nTrue\n\nI hope this helps!", 1.0),  # a bare verdict line followed by a sign-off
    ("True, the first step holds.\nBut the last step fails", None),  # no verdict on the final line
    ("<think>It looks true at first.</think>\nFalse", 0.0),  # thinking skipped
    ("<think>Checking... the result is true", None),  # cut off while thinking: no verdict
    ("<|begin_of_thought|>true?<|end_of_thought|>\n<|begin_of_solution|>False<|end_of_solution|>", 0.0),
    ("", None),
    ("   \n  ", None),
    ("False.\n\n(Note: the first two steps are true, the third is not.)", 0.0),  # a note after the verdict line
    ("True\n\nNote: some steps were false starts.", 1.0),
    ("Final verdict: False (the identity holds true only for n=2)", 0.0),  # the word after the label
    ("<|begin_of_solution|>\nThe algebra holds.\n\nTrue\n<|end_of_solution|>", 1.0),  # Sky-T1's markers
    ("Verdict: True\n\nFalse", None),  # two readings disagree: no verdict
    (None, None),
]


@pytest.mark.parametrize("text,expected", VERDICTS)
def test_parse_verdict_table(text, expected):
    assert parse_verdict(text) == expected


def test_parse_verdict_prompt_opened_thinking_and_truncation():
    # R1-style templates open <think> in the prompt: a reply without </think> never finished thinking
    assert parse_verdict("so it is True", opened_thinking=True) is None
    assert parse_verdict("hmm, maybe\n</think>\n\nTrue", opened_thinking=True) == 1.0
    # a judgment cut at max_tokens has no verdict even if its last line happens to mention one
    assert parse_verdict("Step 2 is true, and step 3", truncated=True) is None


CRITIQUES = [
    ("All paragraphs are right.\n\\boxed{-1}", 1.0),
    ("Paragraph 2 drops a sign.\n\\boxed{2}", 0.0),
    ("\\boxed{0}", 0.0),
    ("First I thought \\boxed{1}, but no.\nFinal: \\boxed{ -1 }", 1.0),  # the last box counts
    ("Earliest error: paragraph 3", None),
    ("\\boxed{x}", None),
    ("<think>maybe \\boxed{-1}", None),
    ("<think>\\boxed{2}?</think>\n\\boxed{-1}", 1.0),
    (None, None),
]


@pytest.mark.parametrize("text,expected", CRITIQUES)
def test_parse_critique_table(text, expected):
    assert parse_critique(text) == expected


def test_critique_truncated_is_none():
    assert parse_critique("\\boxed{-1} and then", truncated=True) is None


def test_standard_and_critique_prompts():
    system, user = judge_messages("What is 2+2?", "2+2=4. The answer is 4")
    assert system["role"] == "system" and "True" in system["content"] and "False" in system["content"]
    assert "What is 2+2?" in user["content"] and "2+2=4. The answer is 4" in user["content"]
    sample = "Step one.\n\nStep two.\n  \n\nStep three."
    assert split_paragraphs(sample) == ["Step one.", "Step two.", "Step three."]
    _, critique = judge_messages("Q", sample, critique=True)
    text = critique["content"]
    for i, para in enumerate(["Step one.", "Step two.", "Step three."]):
        assert f"<paragraph_{i}>\n{para}\n</paragraph_{i}>" in text
    assert "<paragraph_3>" not in text and "\\boxed{}" in text and "-1" in text


def test_fold_system_merges_into_first_user_turn():
    messages = judge_messages("Q", "S")
    folded = fold_system(messages)
    assert [m["role"] for m in folded] == ["user"]
    assert folded[0]["content"].startswith(messages[0]["content"]) and folded[0]["content"].endswith(
        messages[1]["content"])
    assert messages[0]["role"] == "system"  # the input is not modified


def test_render_prompt_generation_prompt_and_folded_system():
    messages = judge_messages("Q?", "S.")
    plain = build_tokenizer()
    assert template_accepts_system(plain)
    text = render_prompt(plain, messages, system_role=True)
    assert text.count("<|begin_of_text|>") == 1
    assert "<|start_header_id|>system<|end_header_id|>" in text
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")  # the generation prompt
    strict = build_tokenizer(chat_template=NO_SYSTEM_TEMPLATE)
    assert not template_accepts_system(strict)
    folded = render_prompt(strict, messages, system_role=False)
    assert "system<|end_header_id|>" not in folded
    assert messages[0]["content"] in folded and folded.endswith("assistant<|end_header_id|>\n\n")
    untemplated = build_tokenizer()
    untemplated.chat_template = None
    vicuna = render_prompt(untemplated, messages, system_role=True)
    assert vicuna.endswith("ASSISTANT:") and "USER: " in vicuna


def test_opens_thinking():
    assert opens_thinking("<|Assistant|><think>\n")
    assert not opens_thinking("<|start_header_id|>assistant<|end_header_id|>\n\n")


EXPECTED_JUDGES = {
    "vllm": ["DeepSeekLlama70B", "DeepSeekQwen32B", "SkyT1", "Llama-3.3-70B-Instruct",
             "Meta-Llama-3.1-405B-Instruct-quantized.w8a16", "Qwen/Qwen2.5-72B-Instruct", "QwQ-32B",
             "WizardLM-2-8x22B", "Mixtral-8x22B-Instruct-v0.1", "DeepSeekLlama8B", "DeepSeekQwen7B",
             "Llama-3.1-8B-Instruct", "Gemma-3-12B-Instruct", "Gemma-3-4B-Instruct", "Phi-4-4B-Instruct",
             "Qwen-2.5-7B-Instruct", "Qwen-2.5-Math-7B-Instruct", "Mistral-7B-Instruct-v0.2"],
    "api": ["GPT-4o", "GPT-4o-mini", "Claude-3-7-Sonnet", "Claude-3-5-Sonnet", "Claude-3-5-Haiku",
            "Llama-3.1-8B-Instruct-Together", "Llama-3.1-70B-Instruct-Together"],
}


def test_registry_has_every_verifiers_judge():
    for backend, names in EXPECTED_JUDGES.items():
        assert [s.name for s in JUDGES if s.backend == backend] == names
    assert JUDGE_REGISTRY["Qwen-2.5-7B-Instruct"].model == "Qwen/Qwen2.5-7B-Instruct"
    assert JUDGE_REGISTRY["Mistral-7B-Instruct-v0.2"].model == "mistralai/Mistral-7B-Instruct-v0.2"
    assert not JUDGE_REGISTRY["Mistral-7B-Instruct-v0.2"].system_role
    assert JUDGE_REGISTRY["DeepSeekQwen7B"].reasoning and JUDGE_REGISTRY["DeepSeekQwen7B"].max_tokens == 8192
    assert JUDGE_REGISTRY["Claude-3-5-Haiku"].provider == "anthropic"
    assert all(s.provider for s in JUDGES if s.backend == "api")
    table = markdown_table()
    assert table.count("\n") == len(JUDGES) + 1
    assert "`deepseek-ai/DeepSeek-R1-Distill-Llama-8B`" in table and "`Qwen/Qwen2.5-72B-Instruct`" in table


def test_custom_judges(tmp_path):
    assert parse_judge("Mine=openai_compatible:tiny-chat").provider == "openai_compatible"
    api = parse_judge("G=openai:gpt-4.1-mini")
    assert (api.backend, api.model) == ("api", "gpt-4.1-mini")
    hub = parse_judge("Q=Qwen/Qwen3-0.6B")
    assert (hub.backend, hub.model) == ("vllm", "Qwen/Qwen3-0.6B")
    local = parse_judge(f"Local=vllm:{tmp_path}")
    assert (local.backend, local.model) == ("vllm", str(tmp_path))
    assert parse_judge(str(tmp_path)).name == tmp_path.name
    copy = parse_judge(f"Mistral-7B-Instruct-v0.2={tmp_path}")  # a registry judge from a local copy
    assert copy.model == str(tmp_path) and not copy.system_role
    with pytest.raises(UserError, match="GPT-4o-mini"):
        parse_judge("GPT-5-Judge")
    with pytest.raises(UserError, match="does not exist"):
        parse_judge("X=./no/such/model")
    with pytest.raises(UserError, match="_verdicts"):
        parse_judge("bad_verdicts=openai:gpt-4o")


def judge_args(*argv: str) -> JudgeOptions:
    """The judges' settings of a Step 3 command line with these flags."""
    return settings_from(VerifySettings, vars(build_parser().parse_args(list(argv)))).judges


def test_settings_temperature_rules():
    spec = JUDGE_REGISTRY["Llama-3.1-8B-Instruct"]
    assert judge_settings(spec, judge_args()).temperature == 0.0
    many = judge_settings(spec, judge_args("--verdicts_per_sample", "3"))
    assert many.temperature > 0 and many.verdicts_per_sample == 3
    assert judge_settings(spec, judge_args("--judge_max_tokens", "64")).max_tokens == 64
    assert judge_settings(JUDGE_REGISTRY["DeepSeekLlama8B"], judge_args()).max_tokens == 8192
    # R1 distills and QwQ: their cards advise temperature 0.6, not greedy decoding; an explicit flag still wins
    assert judge_settings(JUDGE_REGISTRY["DeepSeekQwen7B"], judge_args()).temperature == 0.6
    assert judge_settings(JUDGE_REGISTRY["QwQ-32B"], judge_args("--verdicts_per_sample", "3")).temperature == 0.6
    assert judge_settings(JUDGE_REGISTRY["DeepSeekQwen7B"], judge_args("--judge_temperature", "0")).temperature == 0
    with pytest.raises(UserError, match="judge_temperature"):
        judge_settings(spec, judge_args("--verdicts_per_sample", "3", "--judge_temperature", "0"))


def test_resolve_judges_errors_and_columns():
    args = judge_args()
    with pytest.raises(UserError, match="listed twice"):
        resolve_judges(["Llama-3.1-8B-Instruct", "Llama-3.1-8B-Instruct"], args)
    with pytest.raises(UserError, match="OPENAI_API_KEY"):  # checked before any work
        resolve_judges(["GPT-4o"], args)
    with pytest.raises(UserError, match="Llama-3.1-8B-Instruct .* cannot be loaded"):  # not cached, offline
        resolve_judges(["Llama-3.1-8B-Instruct"], args)
    spec = JUDGE_REGISTRY["Llama-3.1-8B-Instruct"]
    assert judge_columns(spec, False) == ["Llama-3.1-8B-Instruct_verdicts", "Llama-3.1-8B-Instruct_judgments"]
    assert judge_columns(spec, True) == ["Llama-3.1-8B-Instruct_critique_verdicts",
                                         "Llama-3.1-8B-Instruct_critique_judgments"]
