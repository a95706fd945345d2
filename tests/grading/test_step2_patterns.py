"""Every regular expression of generation/grading has an example it matches (issue 30/31): the table below names one
per constant, and the test walks every module of the package, so a new constant without an example fails."""
from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

from generation import grading

EXAMPLES = {
    "boxes.TEXT_WRAPPER": r"\text{cm}",
    "boxes.BOXED": r"\boxed{",
    "boxes.PLACEHOLDER": r"\phantom{0}\quad",
    "boxes.SENTENCE_BOX": r"\text{The series converges for all x.}",
    "boxes.BRACE": "{",
    "boxes.BOX_LIST_GAP": r"$ and $",
    "boxes.BOX_HEDGE_GAP": "$ or possibly $",
    "boxes.HEDGE_WORD": "3 or 4",
    "checking.SPACING": r"\left(",
    "checking.DEGREES": r"30^\circ",
    "checking.TEXT": r"\text{13}",
    "checking.NUMBERS": "12.5",
    "checking.PLAIN_NUMBER": "-1,234.5",
    "checking.REPEATING": r"0.1\overline{6}",
    "checking.WORD": "even",
    "checking.WORD_ANSWER": "Evelyn",
    "checking.WORD_ANSWER_TOKEN": "function",
    "checking.ENVIRONMENT": r"\begin{pmatrix}",
    "checking.BASE_NUMBER": "1011_2",
    "checking.THOUSANDS_GAP": "1, 125",
    "checking.LIST_NOT_THOUSANDS": "1, 125",
    "checking.UNIT_WORD": "inches",
    "checking.WITH_UNIT": "12 cm",
    "checking.UNIT_WRAPPER": r"\mathrm{cm}",
    "checking.ONE_SIDED": "x<=3",
    "checking.TWO_SIDED": "2<=x<5",
    "checking.MEMBER": r"x\in[1,2)",
    "cutoff.BROKEN_END": "the force is F =",
    "cutoff.REFUSAL": "I cannot determine the answer",
    "cutoff.NONE_OF_THEM": "The answer is not provided in the options.",
    "cutoff.NONE_OPTION": "None of the above",
    "cutoff.FINISHED_END": "... is 42.",
    "cutoff.LIST_ITEM_END": "steps:\n1.",
    "cutoff.CUT_NUMBER": "so x = 0.",
    "cutoff.ENVIRONMENT_OPEN": r"\begin{aligned}",
    "cutoff.ENVIRONMENT_CLOSE": r"\end{aligned}",
    "cutoff.OPTION_LABEL": "option C",
    "cutoff.OPTION_PLACE": "the third option",
    "cutoff.NUMBER": "1,250.5",
    "cutoff.TABLE_ROW": "| T | F |",
    "quantities.STATED_VALUE": "approximately 385 meters",
    "quantities.NOT_A_UNIT": "or",
    "quantities.MATH_WORD": "since",
    "quantities.THOUSANDS_COMMA": "1,500",
    "statements.PARAPHRASE_NEGATION": "didn't",
    "statements.SENTENCE_REST": " that he didn't know what was in the package.",
    "decision.LETTER_ANSWER": "(B)",
    "decision.JSON_OBJECT": '{"extracted_answer": "B"}',
    "decision.LATEX_IN_JSON": r"\frac",
    "decision.CONTROL_CHAR": "\x0c",
    "statements.SEVERAL_LETTERS": "the correct answers are (C) and (J)",
    "statements.LISTED_LETTER": "C",
    "statements.LETTERS_TOGETHER": "(C) and (J)",
    "statements.COPULA_LETTER": "The best defense would be (E).",
    "statements.BRACKETED_LETTER": "(E)",
    "statements.OPTION_LABELLED": "B. ",
    "statements.OPTION_TEXT_END": ".",
    "statements.NAMED_AFTER": "(C)",
    "statements.LABEL_AGAINST": "it is not ",
    "statements.LABEL_OPENING": "- ",
    "statements.SENTENCE_CLOSE": ", as it increases demand",
    "quantities.TEXT_MATH": r"\text{x=3}",
    "quantities.EMPTY_SET": r"\varnothing",
    "quantities.NO_SOLUTION": "no solution",
    "quantities.COLUMN_VECTOR": r"\begin{pmatrix}1\\2\end{pmatrix}",
    "quantities.TUPLE": "(1,2)",
    "quantities.DOT_GROUPS": "1.234.567",
    "quantities.DECIMAL_COMMA": "3,5",
    "quantities.SINGLE_NUMBER": "3.5",
    "quantities.DMS": "30^\\circ 30'",
    "quantities.DEGREE_SIGN": "30.5^\\circ",
    "statements.NEW_QUESTION": "Question: What is 2 + 2?",
    "statements.PROMPT_LINE": "Options:",
    "statements.SUMMARY_HEADER": "Now, combining all the answers:",
    "statements.COMBINE_ANSWERS": "Now, let's combine all the answers.",
    "statements.COMMENT": ", but note",
    "readers.EMPTY_STATEMENT": "The answer is ...",
    "rule.REJECTED_AFTER": "but it is not the correct answer",
    "rule.SENTENCE_END": ".",
    "statements.PER_QUESTION": "(B) for the physics question, (D) for",
    "statements.BRACKETED_TEXT": ". (Boycotts, Buycotts)",
    "statements.LABELLED_LINES": "the final answer is:\nC. Water\nH. Saline",
    "parsing.EQUATION_AFTER": " =",
    "statements.REPEATED_LETTERS": "The answer is (A), (C), (A).",
    "statements.RESPONSE_SEPARATOR": "== response ==",
    "cutoff.CONTENT_WORD": "Kuiper",
    "cutoff.FUNCTION_WORD": "the",
    "statements.STATED_OPTION": ". ",
    "statements.STATED_TEXT": "240 W",
    "parsing.MARKDOWN": "**",
    "parsing.LETTER_FIRST": "Option C is correct",
    "parsing.LETTER_FIRST_BEFORE": "So ",
    "parsing.UNCOMMITTED_AFTER": " only if x > 0",
    "parsing.QUALIFIED": " in classical mechanics, but not here",
    "parsing.UNCOMMITTED_BEFORE": "if the answer is",
    "parsing.LETTER_PREFIX": r" \boxed{",
    "parsing.LETTER": "B",
    "parsing.NEXT_WORD": " because",
    "parsing.REJECTED": " is incorrect",
    "parsing.BARE_LETTER": "(I)",
    "parsing.OPTION_TEXT_AFTER": ") 6.2 eV.\n",
    "parsing.NAMED_WITH_LETTER": "Paris (B)",
    "parsing.AMBIGUOUS_TAIL": " or (D)",
    "parsing.HEDGE_TAIL": ", but C is also possible",
    "parsing.OPEN_CHOICE": "B or D",
    "parsing.EITHER_BEFORE": "the answer is ",
    "parsing.EITHER_OPENING": "\nIt's ",
    "parsing.EITHER_AFTER": ".",
    "parsing.EITHER": "either B or D",
    "parsing.PART_VALUE": ") 49",
    "parsing.LETTER_LINE_END": ".\n",
    "parsing.ONLY_LETTER_LINE": "(B).",
    "parsing.LETTER_AND_TEXT_LINE": "B) Paris",
    "parsing.FINAL_LETTER": "so it is closest to (D).",
    "parsing.FINAL_LETTER_AGAINST": "this contradicts ",
    "parsing.FINAL_LETTER_CONDITION": "if x > 0",
    "parsing.NEGATED": "not",
    "parsing.BOXED_LETTER": "(B) Paris",
    "parsing.LATEX_COMMAND": r"\frac",
    "parsing.DANGLING": "2 +",
    "parsing.STATEMENTS": "The answer is (B)",
    "parsing.MATH_ANSWER_IS": "The answer is 42",
    "parsing.ASCII_WORD": "answer",
    "parsing.NEWLINE": "\n",
    "parsing.NOT_AN_ANSWER": "consistent with",
    "parsing.QUESTION": "Is the answer 12?",
    "parsing.CONCLUSION": "Therefore, $x = 5$.",
    "parsing.WORDS": "apples",
    "parsing.BARE_EQUATION": "x = 5",
    "parsing.FINAL_ANSWER_LINE": "Final Answer: 42",
    "parsing.MATH_SPAN": r"$\frac12$",
    "parsing.CLAUSE": ", since 2+3=5",
    "parsing.SENTENCE_END": ". T",
    "parsing.TRAILER": " I hope it is correct.",
    "quantities.SUPERSCRIPT": "10⁵",
    "quantities.SCIENTIFIC": r"1.2 \times 10^{5}",
    "quantities.LAYOUT": r"\,",
    "quantities.WRAPPER": r"\text{cm}",
    "quantities.PART": "2 h",
    "quantities.SUM_JOIN": " and ",
    "quantities.DIMS_JOIN": " by ",
    "readers.TABLE_ROW": "| Final answer | B |",
    "readers.TABLE_RULE": "|---|---|",
    "readers.CODE_FENCE": "```python",
    "readers.LABEL_LINE": "Total: 42",
    "readers.LINE_OPENING": "1. The ",
    "rule.REVISION": "wait, I made an error",
    "rule.NARROWING": "but since",
    "rule.HEDGE_LETTERS": "F or G",
    "rule.NOT_VALUE": "not C",
    "rule.PARENTHETICAL": "(if friction counts, it would be 7)",
    "rule.CONDITION": "if",
    "rule.DIGIT": "7",
    "rule.SIMPLE_FRACTION": r"\frac{1}{2}",
    "rule.ASSIGNMENT": "x = 5",
    "rule.PART_MARKER": "(b) the speed",
    "rule.RESPECTIVELY": "respectively",
}


def grading_patterns() -> dict[str, re.Pattern]:
    """Every regular expression a module of generation/grading defines at module level (dicts of them included)."""
    found = {}
    for module_info in pkgutil.iter_modules(grading.__path__):
        module = importlib.import_module(f"generation.grading.{module_info.name}")
        source = open(module.__file__, encoding="utf-8").read()
        for name, value in vars(module).items():
            if not re.search(rf"^(?:\w+, )*{name}\b", source, re.MULTILINE):
                continue  # imported from another module: checked there
            patterns = [value] if isinstance(value, re.Pattern) else list(value.values()) if isinstance(
                value, dict) and value and all(isinstance(item, re.Pattern) for item in value.values()) else []
            for index, pattern in enumerate(patterns):
                found[f"{module_info.name}.{name}" + (f"[{index}]" if len(patterns) > 1 else "")] = pattern
    return found


PATTERNS = grading_patterns()


def test_every_pattern_has_an_example():
    """A regular expression added to generation/grading without an example in EXAMPLES fails here."""
    missing = sorted(name for name in PATTERNS if name.split("[")[0] not in EXAMPLES)
    assert not missing, f"add an example each of these match to EXAMPLES: {missing}"
    assert not set(EXAMPLES) - {name.split("[")[0] for name in PATTERNS}, "EXAMPLES names a pattern that is gone"


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_matches_its_example(name):
    """Each pattern finds its example (search: anchored patterns anchor within it)."""
    assert PATTERNS[name].search(EXAMPLES[name.split("[")[0]]), f"{name} does not match its example"
