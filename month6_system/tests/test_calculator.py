"""The safe calculator (graded m6_t1): equal to Python's arithmetic on generated expressions, and refusing attacks."""

from __future__ import annotations

import math
import random

import pytest

from month6_system.calculator import CalculatorError, format_result


def _random_expression(rng: random.Random, depth: int = 0) -> str:
    if depth > 3 or rng.random() < 0.3:
        number = rng.randint(0, 999) if rng.random() < 0.8 else round(rng.uniform(0, 100), 2)
        return f"-{number}" if rng.random() < 0.15 else str(number)
    op = rng.choice(["+", "-", "*", "/", "//", "%"])
    return f"({_random_expression(rng, depth + 1)} {op} {_random_expression(rng, depth + 1)})"


@pytest.mark.m6_t1
@pytest.mark.parametrize("seed", range(5))
def test_matches_python_arithmetic(impl, seed):
    rng = random.Random(seed)
    checked = 0
    for _ in range(200):
        text = _random_expression(rng)
        try:
            expected = eval(text, {"__builtins__": {}})  # the reference, on our own generated text only
        except ZeroDivisionError:
            with pytest.raises(CalculatorError, match="division by zero"):
                impl.calculate(text)
            continue
        got = impl.calculate(text)
        assert type(got) is type(expected) and (got == expected or math.isclose(got, expected, rel_tol=1e-12)), text
        checked += 1
    assert checked > 150


@pytest.mark.m6_t1
@pytest.mark.parametrize("text, value", [
    ("12 * (3 + 4)", 84), ("2 ** 10", 1024), ("-3 ** 2", -9), ("(-3) ** 2", 9), ("7 // 2", 3), ("7 % 3", 1),
    ("240 * 15 / 100", 36.0), ("7 * 60", 420), ("sqrt(16)", 4.0), ("max(3, 9, 4)", 9), ("abs(-2.5)", 2.5),
    ("2 ^ 3", 8), ("round(2.567, 2)", 2.57), ("pi * 2", math.pi * 2), ("+5", 5),
])
def test_known_values(impl, text, value):
    assert impl.calculate(text) == value


@pytest.mark.m6_t1
@pytest.mark.parametrize("attack, reason", [
    ("__import__('os').system('ls')", "functions"),
    ("().__class__.__bases__", "not arithmetic"),
    ("(1).real", "not arithmetic"),
    ("open('/etc/passwd')", "functions"),
    ("x + 1", "unknown name"),
    ("'a' * 3", "only numbers"),
    ("9 ** 9 ** 9", "exponent"),
    ("10 ** 200", "larger than the limit"),
    ("2 ** 999 * 2 ** 999", "larger than the limit"),
    ("[x for x in range(10)]", "not arithmetic"),
    ("lambda: 1", "not arithmetic"),
    ("1 / 0", "division by zero"),
    ("sqrt(-1)", "sqrt"),
    ("1 +", "not an arithmetic expression"),
    ("", "empty"),
    ("1 + " * 300 + "1", "over 500 characters"),
    ("True + 1", "only numbers"),
    ("round(1.5, ndigits=1)", "positional"),
])
def test_refuses_attacks_and_nonsense(impl, attack, reason):
    with pytest.raises(CalculatorError, match=reason):
        impl.calculate(attack)


@pytest.mark.m6_t1
def test_nesting_within_the_length_limit_evaluates(impl):
    assert impl.calculate("(" * 200 + "1" + ")" * 200) == 1  # parentheses only group: the length limit bounds depth


def test_format_result():
    assert format_result(0.1 + 0.2) == "0.3"
    assert format_result(36.0) == "36"
    assert format_result(2**70) == str(2**70)
    assert format_result(1 / 3) == "0.333333333333"
