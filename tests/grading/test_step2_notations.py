"""Math equivalence in standard notations (issue 31): a table of spellings, and a property test per notation (the
same value in the notation is equal, another value is not)."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generation.grading.checking import math_verdict

TABLE = [  # (answer, gold, verdict)
    (r"\text{x=3}", "3", True), (r"\boxed{\text{x=3}}"[7:-1], "x=3", True), (r"\text{x=4}", "3", False),
    (r"\emptyset", r"\varnothing", True), (r"\{\}", r"\emptyset", True), (r"\O", r"\varnothing", True),
    ("∅", r"\{ \}", True), (r"\text{no solution}", r"\emptyset", True), ("no real solutions", r"\varnothing", True),
    (r"\emptyset", "0", False),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", "(1,2)", True), (r"\begin{bmatrix}3\\-1\\0\end{bmatrix}", "(3,-1,0)", True),
    (r"\begin{pmatrix}1\\3\end{pmatrix}", "(1,2)", False), (r"\begin{pmatrix}2\\1\end{pmatrix}", "(1,2)", False),
    ("1.234.567", "1234567", True), ("1.234,5", "1234.5", True), ("3,5", "3.5", True), ("12,25", "12.25", True),
    ("1,234", "1234", True), ("1,234", "1.234", False), ("3,6", "3.5", False),
    (r"30^\circ 30'", "30.5", True), (r"30^{\circ}30'", r"30.5^\circ", True), ("12°15'36''", "12.26", True),
    (r"30^\circ 31'", "30.5", False),
    ("0.45", r"45\%", True), (r"45\%", "45", True), ("0.46", r"45\%", False),
]


@pytest.mark.parametrize("answer, gold, verdict", TABLE)
def test_notation_table(answer, gold, verdict):
    assert math_verdict(answer, gold, 5)[0] is verdict


VALUES = st.integers(-50, 99)


@settings(max_examples=40, deadline=None)
@given(st.lists(VALUES, min_size=2, max_size=4), st.sampled_from(["pmatrix", "bmatrix"]), st.booleans())
def test_a_column_vector_equals_its_tuple(entries, environment, changed):
    matrix = rf"\begin{{{environment}}}" + r"\\".join(map(str, entries)) + rf"\end{{{environment}}}"
    tuple_entries = entries[:-1] + [entries[-1] + 1] if changed else entries
    assert math_verdict(matrix, "(" + ", ".join(map(str, tuple_entries)) + ")", 5)[0] is (not changed)


@settings(max_examples=40, deadline=None)
@given(st.integers(10**6, 10**10), st.booleans())
def test_dot_thousands_read_as_one_number(number, changed):
    """Two or more dot groups have one reading ("1.000" alone is the decimal 1.000 and stays so)."""
    spelled = f"{number:,}".replace(",", ".")
    assert math_verdict(spelled, str(number + changed), 5)[0] is (not changed)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 999), st.integers(1, 99).filter(lambda n: n % 10), st.booleans())
def test_a_decimal_comma_equals_the_decimal(whole, decimals, changed):
    gold = Fraction(f"{whole}.{decimals}") + (Fraction(1, 100) if changed else 0)
    assert math_verdict(f"{whole},{decimals}", str(float(gold)), 5)[0] is (not changed)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 359), st.integers(0, 59), st.sampled_from([0, 36, 45]), st.sampled_from([r"^\circ", "°"]),
       st.booleans())
def test_degrees_minutes_seconds_equal_decimal_degrees(degrees, minutes, seconds, sign, changed):
    value = degrees + Fraction(minutes, 60) + Fraction(seconds, 3600) + (Fraction(1, 10) if changed else 0)
    decimal = f"{float(value):.10f}".rstrip("0").rstrip(".")
    if Fraction(decimal) != value:
        return  # a value with no finite decimal is not a decimal-degree gold
    spelled = f"{degrees}{sign} {minutes}'" + (f" {seconds}''" if seconds else "")
    assert math_verdict(spelled, decimal, 5)[0] is (not changed)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([r"\emptyset", r"\varnothing", r"\{\}", r"\O", "∅", r"\text{no solution}", "no solutions"]),
       st.sampled_from([r"\emptyset", r"\varnothing", r"\{ \}"]))
def test_every_spelling_of_the_empty_set_agrees(answer, gold):
    assert math_verdict(answer, gold, 5)[0] is True


@settings(max_examples=30, deadline=None)
@given(st.sampled_from("xyzt"), st.integers(-99, 99), st.booleans())
def test_a_text_wrapped_assignment_equals_its_value(variable, value, changed):
    assert math_verdict(rf"\text{{{variable}={value}}}", str(value + changed), 5)[0] is (not changed)


# Units of the sciences in the spellings real answers use: symbol or name, in \text{} / \mathrm{} (with a leading ~)
# or bare, with a power, or a unit made of several ("kJ/mol", "erg s^{-1}").
SCIENCE_UNITS = st.sampled_from(["Å", r"\AA", "angstroms", "eV", "MeV", "nm", "kJ/mol", "kJ / mole", "erg s^{-1}",
                                 "ergs/s", r"erg \cdot s^{-1}", "arcseconds", "arcsec", "Hz", "kPa", "atm", "Gyr",
                                 "kcal m^{-2} yr^{-1}", "g/mol", "cm^{-3}", "joules", "kelvins"])
UNIT_SPELLINGS = st.sampled_from(["{value} {unit}", r"{value} \text{{ {unit}}}", r"{value} \, \mathrm{{~{unit}}}",
                                  r"{value}\,\text{{{unit}}}"])


@settings(max_examples=80, deadline=None)
@given(st.decimals("0.01", "9999", places=2), SCIENCE_UNITS, UNIT_SPELLINGS, st.integers(1, 50))
def test_number_with_a_science_unit_is_its_number(value, unit, spelling, shift):
    """A number with a unit of the sciences equals the bare number, and differs from another number; never undecided.
    (The unit is the one the question asks for: two different units stay undecided.)"""
    answer = spelling.format(value=value, unit=unit.replace(r"\text", ""))
    assert math_verdict(answer, str(value), 5)[0] is True
    assert math_verdict(answer, str(value + shift), 5)[0] is False
