"""Whole quantities: a number in scientific notation (any common spelling) is one number; an answer of two or more
quantities (2 h 30 min, 5 ft 3 in, 3 cm by 4 cm) is compared as a whole, converted where a small unit table can.

Notations: Standard notations math-verify does not read as the same value, rewritten before a math comparison (a table).

Each entry of NOTATIONS names a notation, the pattern that finds it and its rewrite; a few depend on the other side
(a column vector is a tuple only against a tuple; "no solution" is the empty set only against the empty set; a decimal
comma only against a single number). Locale numbers are read only where no other reading is possible: `1.234.567`
(two dots), `1.234,5` (dot groups then a comma), `3,5` (a comma not followed by three digits); `1,234` stays as read.
"""
from __future__ import annotations

import re
from fractions import Fraction

SUPERSCRIPT = re.compile(r"([⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)")
SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
MANTISSA = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
# 1.2e5, 1.2E-5, 1.2 \times 10^{5}, 1.2 x 10^5, 1.2 × 10^5 (superscripts rewritten first), 1.2 \cdot 10^{5}, 1.2*10^5
POWER_OF_TEN = r"(?:\\times|\\cdot|×|·|\*|x)\s*10\s*\^\s*\{?\s*([-+]?\d+)\s*\}?"
SCIENTIFIC = re.compile(rf"({MANTISSA})\s*(?:[eE]\s*([-+]?\d+)|{POWER_OF_TEN})")
LAYOUT = re.compile(r"\\[,;:! ]|\\(?:left|right|displaystyle)\b|~|\$|\{,\}")
WRAPPER = re.compile(r"\\(?:text|textrm|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
# Units of the table: factor to the dimension's base unit (seconds, metres, kilograms).
UNIT_FACTORS = {
    "time": ({"s": "1", "sec": "1", "secs": "1", "second": "1", "seconds": "1", "min": "60", "mins": "60",
              "minute": "60", "minutes": "60", "h": "3600", "hr": "3600", "hrs": "3600", "hour": "3600",
              "hours": "3600", "day": "86400", "days": "86400", "week": "604800", "weeks": "604800"}),
    "length": ({"mm": "0.001", "cm": "0.01", "m": "1", "meter": "1", "meters": "1", "metre": "1", "metres": "1",
                "km": "1000", "in": "0.0254", "inch": "0.0254", "inches": "0.0254", '"': "0.0254", "″": "0.0254",
                "ft": "0.3048", "foot": "0.3048", "feet": "0.3048", "'": "0.3048", "′": "0.3048",
                "yd": "0.9144", "yard": "0.9144", "yards": "0.9144", "mi": "1609.344", "mile": "1609.344",
                "miles": "1609.344"}),
    "mass": ({"mg": "0.000001", "g": "0.001", "gram": "0.001", "grams": "0.001", "kg": "1", "kilogram": "1",
              "kilograms": "1", "lb": "0.45359237", "lbs": "0.45359237", "pound": "0.45359237",
              "pounds": "0.45359237", "oz": "0.028349523125", "ounce": "0.028349523125",
              "ounces": "0.028349523125"}),
}
FACTORS = {unit: (dimension, Fraction(factor)) for dimension, table in UNIT_FACTORS.items()
           for unit, factor in table.items()}
NUMBER = rf"(?:{SCIENTIFIC.pattern}|{MANTISSA})"
# One quantity: a number and an optional unit (a word, h/m/s/g, a prime, or a unit with a power: cm^2).
PART = re.compile(rf"\s*(?P<number>{NUMBER})\s*(?P<unit>(?!(?:by|and|or|to|of|is|per|times|plus|minus)\b)"
                  r"(?:[A-Za-z]{2,}|[hmsg](?![A-Za-z]))(?:\s*\^\s*\{?[23]\}?|[²³])?|['\"′″])?")
SUM_JOIN = re.compile(r"\s*(?:,|\+|\band\b)?\s*")
DIMS_JOIN = re.compile(r"\s*(?:\\times|×|\bx\b|\bby\b|\*)\s*")

Quantity = tuple[Fraction, str | None]


def superscripts_as_powers(text: str) -> str:
    """'10⁵' -> '10^{5}', '10⁻³' -> '10^{-3}'."""
    return SUPERSCRIPT.sub(lambda m: "^{" + m.group(1).translate(SUPERSCRIPT_DIGITS) + "}", text)


def plain(text: str) -> str:
    """An answer without $, \\text{} wrappers, thin spaces or superscript digits, for reading its quantities."""
    previous = None
    while previous != text:
        previous, text = text, WRAPPER.sub(r" \1 ", text)
    return " ".join(LAYOUT.sub(" ", superscripts_as_powers(text)).split())


def number_of(text: str) -> Fraction:
    """The exact value of a NUMBER (scientific notation included)."""
    scientific = SCIENTIFIC.fullmatch(text.strip())
    if not scientific:
        return Fraction(text.strip())
    exponent = scientific.group(2) or scientific.group(3)
    return Fraction(scientific.group(1)) * Fraction(10) ** int(exponent)


def scientific_value(text: str) -> Fraction | None:
    """The value of an answer that is one number in scientific notation ('1.2e5', '1.2 \\times 10^{5}'), else None."""
    text = plain(text)
    return number_of(text) if SCIENTIFIC.fullmatch(text) else None


def as_latex(text: str) -> str:
    """Scientific notation rewritten as LaTeX math-verify reads ('1.2e5' -> '1.2\\times10^{5}', not 1.2*e^5)."""
    return SCIENTIFIC.sub(lambda m: f"{m.group(1)}\\times10^{{{m.group(2) or m.group(3)}}}",
                          superscripts_as_powers(text))


def quantities(text: str) -> tuple[list[Quantity], str] | None:
    """The quantities of an answer and how they are joined ('sum': 2 h 30 min; 'dims': 3 cm by 4 cm), or None when the
    answer is not made only of numbers with optional units (one way of joining them)."""
    text, position, parts, joins = plain(text), 0, [], set()
    while position < len(text):
        if parts:
            gap = DIMS_JOIN.match(text, position) or SUM_JOIN.match(text, position)
            if not gap.group(0).strip() and not parts[-1][1]:
                return None  # "2-5" is an expression; only "2 h 30 min" joins quantities by a space
            joins.add("dims" if gap.re is DIMS_JOIN else "sum")
            position = gap.end()
        match = PART.match(text, position)
        if not match:
            return None
        parts.append((number_of(match.group("number")), match.group("unit")))
        position = match.end()
    return (parts, joins.pop() if joins else "sum") if parts and len(joins) <= 1 else None


def is_compound(text: str) -> bool:
    """Whether an answer holds two or more quantities of which at least one has a unit."""
    read = quantities(text)
    return bool(read) and len(read[0]) > 1 and any(unit for _, unit in read[0])


def in_base_unit(quantity: Quantity) -> tuple[str, Fraction] | None:
    """(dimension, value in the base unit) of a quantity whose unit is in the table, else None."""
    value, unit = quantity
    known = FACTORS.get(unit if unit in ("'", '"', "′", "″") else (unit or "").lower())
    return (known[0], value * known[1]) if known else None


def total(parts: list[Quantity]) -> tuple[str, Fraction] | None:
    """A sum of quantities of one dimension, each unit once, in its base unit ('2 h 30 min' -> ('time', 9000)); None
    for anything else ('2 cm, 3 cm' is a list, not 5 cm)."""
    converted = [in_base_unit(part) for part in parts]
    if len({unit for _, unit in parts}) < len(parts) or None in converted \
            or len({dimension for dimension, _ in converted}) != 1:
        return None
    return converted[0][0], sum(value for _, value in converted)


def same_quantity(pred: Quantity, gold: Quantity) -> bool | None:
    """Whether two single quantities are equal: converted through the table, the same unit, or a unitless gold."""
    if gold[1] is None or pred[1] == gold[1]:
        return pred[0] == gold[0]
    pred_base, gold_base = in_base_unit(pred), in_base_unit(gold)
    if pred_base and gold_base and pred_base[0] == gold_base[0]:
        return pred_base[1] == gold_base[1]
    return None


def quantity_verdict(pred: str, gold: str) -> bool | None:
    """Compound answers compared as a whole: sums converted to one unit, dimensions part by part; None (undecided)
    when they cannot be compared that way. Never decided by a first number."""
    read_pred, read_gold = quantities(pred), quantities(gold)
    if not read_pred or not read_gold:
        return None
    (pred_parts, pred_join), (gold_parts, gold_join) = read_pred, read_gold
    if "dims" in (pred_join, gold_join):
        if len(pred_parts) != len(gold_parts) or pred_join != gold_join:
            return None
        verdicts = [same_quantity(p, g) for p, g in zip(pred_parts, gold_parts)]
        return None if None in verdicts else all(verdicts)
    pred_total, gold_total = total(pred_parts), total(gold_parts)
    if pred_total and gold_total:
        return pred_total == gold_total if pred_total[0] == gold_total[0] else None
    return True if pred_parts == gold_parts else None


# --- notations math-verify reads apart -------------------------------------------------------------------------------
# "\text{x=3}" -> "x=3": an assignment or a number wrapped as text inside a box. Example: "\text{x=3}"
TEXT_MATH = re.compile(r"\\(?:text|textrm|mbox)\s*\{\s*([A-Za-z](?:_\{?\w+\}?)?\s*=\s*[-\d.,/]+|[-\d.,/]+)\s*\}")
# The spellings of the empty set. Example: "\varnothing"
EMPTY_SET = re.compile(r"\\varnothing|\\emptyset|\\O\b|∅|\\\{\s*\\\}|\{\s*\}")
# "no solution(s)", "no real solutions" (words, maybe in \text{}): the empty set where the gold is.
# Example: "no solution"
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
DMS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\^\s*\{?\s*\\circ\s*\}?|°)\s*"
                 r"(?:(\d+(?:\.\d+)?)\s*(?:'|′|\^\s*\{?\s*\\prime\s*\}?)"
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


# A value stated or offered as an option: a number and at most three unit words, in brackets or after "approximately".
# Example: "approximately 385 meters"
STATED_VALUE = re.compile(r"\(?[ \t]*(?:(?:approximately|approx\.?|about|around|roughly|nearly|\\approx|≈)[ \t]*)?"
                          r"(-?\d+(?:\.\d+)?)[ \t]*((?:%|[^\W\d_][^\s\d()]*)(?:[ \t]+[^\W\d_][^\s\d()]*){0,2})?"
                          r"[ \t]*\)?", re.IGNORECASE)
# Words that make a stated value's tail a clause, not a unit ("5 or C", "2 because ..."). Example: "or"
NOT_A_UNIT = re.compile(r"(?:or|and|but|not|nor|because|since|as|which|for|if|when|so|than|to|is|are|was|were|the|an?"
                        r"|with|from|by|at|in|on|times|per)", re.IGNORECASE)
MATH_WORD = re.compile(r"(?<!\\)\b[A-Za-z]{2,}")  # a word (no LaTeX command) in a calculation. Example: "since"
THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # "1,500" is 1500. Example: "1,500"


def after_equals(text: str) -> str | None:
    """The text after the last "=" of a calculation that holds no words ("$6! / 3! = 120$" gives "120$"; "the point
    (2, 4), since 2 \\cdot 4=8" gives None), the text itself if it has no "="."""
    before, _, after = text.rpartition("=")
    return None if MATH_WORD.search(before.replace("\\", " \\")) else after


def stated_value(text: str) -> tuple[float, list[str]] | None:
    """A value and its unit words (STATED_VALUE; "%" and "percent" alike) stated after the last "=" of a calculation
    (after_equals), else None."""
    after = after_equals(text)
    match = STATED_VALUE.fullmatch(THOUSANDS_COMMA.sub("", plain(after).replace("−", "-")).rstrip(" .!")) \
        if after else None
    unit = (match.group(2) or "").lower().replace("percent", "%").split() if match else []
    return (float(match.group(1)), unit) if match and not any(map(NOT_A_UNIT.fullmatch, unit)) else None
