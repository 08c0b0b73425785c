"""A safe calculator: arithmetic parsed with Python's `ast` and evaluated node by node, never `eval`.

    from month6_system.calculator import calculate
    calculate("12 * (3 + 4)")      # 84
    calculate("sqrt(2) ** 2")      # 2.0000000000000004
    calculate("__import__('os')")  # CalculatorError: names other than the math functions are not allowed

Only numbers, + - * / // % **, unary plus and minus, parentheses and a few math functions (and the
constants pi, e) are accepted; anything else (names, attributes, calls of other functions, strings,
comprehensions) is refused with a one-line reason. Sizes are bounded so that an expression cannot
exhaust memory or time: the text's length, the exponent of a power, and the size of every result.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from shared.errors import UserError

MAX_LENGTH = 500  # characters of an expression
MAX_EXPONENT = 1000  # |b| in a ** b
MAX_ABS = 10**100  # every intermediate result's magnitude (ints past this are refused, not computed)

BINARY: dict[type, Callable] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
UNARY: dict[type, Callable] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
FUNCTIONS: dict[str, Callable] = {
    "sqrt": math.sqrt, "abs": abs, "round": round, "floor": math.floor, "ceil": math.ceil,
    "log": math.log, "log10": math.log10, "exp": math.exp, "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "min": min, "max": max,
}
CONSTANTS = {"pi": math.pi, "e": math.e}


class CalculatorError(UserError, ValueError):
    """An expression the calculator refuses or cannot evaluate (the message says why)."""


def _bounded(value: int | float) -> int | float:
    if isinstance(value, complex):
        raise CalculatorError("the result is a complex number")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("the result is not a finite number")
    if abs(value) > MAX_ABS:
        raise CalculatorError(f"a result is larger than the limit (1e{len(str(MAX_ABS)) - 1})")
    return value


def _power(base: int | float, exponent: int | float) -> int | float:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponent {exponent} is over the limit of {MAX_EXPONENT}")
    # an integer base ** integer exponent is computed exactly; check its size before computing it
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if exponent * math.log10(abs(base)) > math.log10(MAX_ABS):
            raise CalculatorError(f"a result is larger than the limit (1e{len(str(MAX_ABS)) - 1})")
    return base**exponent


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise CalculatorError(f"only numbers are allowed, not {node.value!r}")
        return _bounded(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _bounded(_power(left, right))
        try:
            return _bounded(BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}: names other than pi, e and the math functions "
                              "are not allowed")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise CalculatorError(f"only these functions are allowed: {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise CalculatorError("functions take positional arguments only")
        try:
            return _bounded(FUNCTIONS[node.func.id](*[_eval(arg) for arg in node.args]))
        except (TypeError, ValueError, OverflowError) as err:
            raise CalculatorError(f"{node.func.id}: {err}") from None
    raise CalculatorError(f"{type(node).__name__} is not arithmetic: use numbers, + - * / // % **, "
                          "parentheses and math functions")


def calculate(expression: str) -> int | float:
    """The value of `expression`, or CalculatorError with the reason it was refused."""
    if not isinstance(expression, str) or not expression.strip():
        raise CalculatorError("empty expression")
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"the expression is over {MAX_LENGTH} characters")
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from None
    try:
        return _eval(tree)
    except OverflowError:
        raise CalculatorError("the result overflows a float") from None
    except RecursionError:
        raise CalculatorError("the expression is nested too deeply") from None


def format_result(value: int | float) -> str:
    """A result as the tool returns it: integers exactly, floats to 12 significant digits (no 0.30000000000000004)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value) if isinstance(value, int) else f"{value:.12g}"
