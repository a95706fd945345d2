"""Standard notations math-verify does not read as the same value, rewritten before a math comparison (a table).

Each entry of NOTATIONS names a notation, the pattern that finds it and its rewrite; a few depend on the other side
(a column vector is a tuple only against a tuple; "no solution" is the empty set only against the empty set; a decimal
comma only against a single number). Locale numbers are read only where no other reading is possible: `1.234.567`
(two dots), `1.234,5` (dot groups then a comma), `3,5` (a comma not followed by three digits); `1,234` stays as read.
"""
from __future__ import annotations

import re
from fractions import Fraction

# "\text{x=3}" -> "x=3": an assignment or a number wrapped as text inside a box. Example: "\text{x=3}"
TEXT_MATH = re.compile(r"\\(?:text|textrm|mbox)\s*\{\s*([A-Za-z](?:_\{?\w+\}?)?\s*=\s*[-\d.,/]+|[-\d.,/]+)\s*\}")
# The spellings of the empty set. Example: "\varnothing"
EMPTY_SET = re.compile(r"\\varnothing|\\emptyset|\\O\b|∅|\\\{\s*\\\}|\{\s*\}")
# "no solution(s)", "no real solutions" (words, maybe in \text{}): the empty set where the gold is. Example: "no solution"
NO_SOLUTION = re.compile(r"(?:\\text\s*\{)?\s*(?:there\s+(?:is|are)\s+)?no\s+(?:real\s+)?solutions?\s*\}?\s*\.?",
                         re.IGNORECASE)
# A column vector: "\begin{pmatrix}1\\2\end{pmatrix}" (rows without "&"). Example: "\begin{pmatrix}1\\2\end{pmatrix}"
COLUMN_VECTOR = re.compile(r"\\begin\{([pbvB]?matrix)\}((?:(?!&|\\end).)*?)\\end\{\1\}", re.DOTALL)
TUPLE = re.compile(r"\\left\(|\(.*,.*\)", re.DOTALL)  # the other side is a tuple. Example: "(1,2)"
# Numbers in locale formats with a single reading. Example: "1.234.567"
DOT_GROUPS = re.compile(r"-?\d{1,3}(?:\.\d{3}){2,}(?:,\d+)?|-?\d{1,3}(?:\.\d{3})+,\d+")
DECIMAL_COMMA = re.compile(r"-?\d+,(?!\d{3}(?!\d))\d+")  # "3,5", "12,25"; not "1,234". Example: "3,5"
SINGLE_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")  # what a decimal comma may be compared with. Example: "3.5"
# Degrees, minutes and seconds: "30^\circ 30'", "12°15'36''". Example: "30^\circ 30'"
DMS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\^\s*\{?\s*\\circ\s*\}?|°)\s*(?:(\d+(?:\.\d+)?)\s*(?:'|′|\^\s*\{?\s*\\prime\s*\}?)"
                 r"\s*(?:(\d+(?:\.\d+)?)\s*(?:''|″|\"|\^\s*\{?\s*\\prime\s*\\prime\s*\}?))?)")
DEGREE_SIGN = re.compile(r"\s*(?:\^\s*\{?\s*\\circ\s*\}?|°)\s*$")  # a decimal-degree value's sign. Example: "^\circ"


def dms_value(match: re.Match) -> str:
    """Degrees, minutes and seconds as exact decimal degrees (a fraction where the decimal does not end)."""
    value = Fraction(match.group(1)) + Fraction(match.group(2)) / 60 + Fraction(match.group(3) or 0) / 3600
    return str(value.numerator) if value.denominator == 1 else f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def column_tuple(match: re.Match) -> str:
    """A column vector's entries as a tuple."""
    return "(" + ",".join(row.strip() for row in match.group(2).split("\\\\") if row.strip()) + ")"


def locale_number(text: str) -> str:
    """A number in dot groups with an optional decimal comma as a plain number ("1.234.567" -> "1234567")."""
    return text.replace(".", "").replace(",", ".")


def in_notation(text: str, other: str) -> str:
    """`text` with the notations of NOTATIONS rewritten (some only given the `other` side)."""
    for _, pattern, rewrite, applies in NOTATIONS:
        if applies(text, other):
            text = pattern.sub(rewrite, text)
    return text


def empty(text: str) -> bool:
    """Whether an answer is the empty set in one of its spellings."""
    return bool(EMPTY_SET.fullmatch(text.strip().strip("$")))


NOTATIONS = (  # (name, pattern, rewrite, whether it applies given this side and the other)
    ("text-wrapped assignment", TEXT_MATH, r"\1", lambda text, other: True),
    ("empty set", EMPTY_SET, r"\\emptyset", lambda text, other: empty(text)),
    ("no solution", NO_SOLUTION, r"\\emptyset", lambda text, other: empty(other) and bool(NO_SOLUTION.fullmatch(text))),
    ("column vector", COLUMN_VECTOR, column_tuple, lambda text, other: bool(TUPLE.search(other))),
    ("dot thousands", DOT_GROUPS, lambda match: locale_number(match.group(0)), lambda text, other: True),
    ("decimal comma", DECIMAL_COMMA, lambda match: match.group(0).replace(",", "."),
     lambda text, other: bool(DECIMAL_COMMA.fullmatch(text.strip())) and bool(SINGLE_NUMBER.fullmatch(other.strip()))),
    ("degrees minutes seconds", DMS, dms_value, lambda text, other: True),
    ("decimal degrees", DEGREE_SIGN, "", lambda text, other: bool(DMS.search(other)) and not DMS.search(text)),
)


def notation_pair(pred: str, gold: str) -> tuple[str, str]:
    """The answer and the gold with their notations rewritten (each given the other as it was written)."""
    return in_notation(pred, gold), in_notation(gold, pred)
