"""Pydantic's complaints about a body, said as OpenAI says them.

OpenAI names the field at fault in `param` (`messages[0].content`, `tools[1].function.name`) and
sorts its refusals into three codes: `missing_required_parameter`, `invalid_type` (a string where a
number goes) and `invalid_value` (a value outside those allowed). Pydantic's locations also carry the
names of union members (`str`, `literal['none','auto']`, `TextPart`); they are dropped by walking the
body along the location, keeping only the steps the body itself takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MISSING = "missing_required_parameter"
INVALID_TYPE = "invalid_type"
INVALID_VALUE = "invalid_value"

# Pydantic error types that mean "not of the JSON type expected" → what was expected, in OpenAI's words.
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "none_required": "null",
}


_BAD_TAG = ("union_tag_invalid", "union_tag_not_found")


@dataclass(frozen=True)
class Refusal:
    message: str
    param: str | None
    code: str


def refusal(errors: Sequence[Any], body: Any) -> Refusal:
    """The one refusal to report for pydantic's `errors` about `body` (FastAPI's locations start with
    "body"): the deepest field at fault, as OpenAI would name it."""
    located = [(_param(error, body), error) for error in errors]
    if not located:
        return Refusal("the body is invalid", None, INVALID_VALUE)
    depth = max(len(path) for (path, _value), _error in located)
    deepest = [(path, value, error) for (path, value), error in located if len(path) == depth]
    path, value, _first = deepest[0]
    at_fault = [error for p, _v, error in deepest if p == path]
    param = _spell(path) or None
    name = f"'{param}'" if param else "the body"
    if any(error["type"] in ("missing", "union_tag_not_found") for error in at_fault):
        return Refusal(f"Missing required parameter: {name}.", param, MISSING)
    wrong_types = [error for error in at_fault if _is_type_error(error, value)]
    if len(wrong_types) == len(at_fault):
        expected = _one_of(dict.fromkeys(_expected(error) for error in wrong_types))
        return Refusal(
            f"Invalid type for {name}: expected {expected}, but got {_json_type(value)} instead.", param, INVALID_TYPE
        )
    error = next(e for e in at_fault if e not in wrong_types)
    return Refusal(f"Invalid value for {name}: {_reason(error)}", param, INVALID_VALUE)


def _param(error: Any, body: Any) -> tuple[tuple[str | int, ...], Any]:
    """The steps of `error`'s location that the body takes, and the value found there."""
    location = list(error.get("loc", ()))
    if location[:1] == ["body"]:
        location = location[1:]
    path: list[str | int] = []
    value = body
    for i, step in enumerate(location):
        last = i == len(location) - 1
        if _takes(value, step):
            path.append(step)
            value = value[step]
        elif last and error.get("type") == "missing" and isinstance(step, str):
            path.append(step)
            value = None
        # Otherwise a union member's name (or a tag): the body takes no step there.
    if error.get("type") in _BAD_TAG and isinstance(value, dict):
        # A tagged union's tag (a content part's `type`) is missing or unknown: the fault is the tag's.
        tag = str(error.get("ctx", {}).get("discriminator", "type")).strip("'")
        path.append(tag)
        value = value.get(tag)
    return tuple(path), value


def _takes(value: Any, step: str | int) -> bool:
    if isinstance(step, int):
        return isinstance(value, list) and 0 <= step < len(value)
    return isinstance(value, dict) and step in value


def _spell(path: tuple[str | int, ...]) -> str:
    spelled = ""
    for step in path:
        spelled += f"[{step}]" if isinstance(step, int) else (f".{step}" if spelled else step)
    return spelled


def _is_type_error(error: Any, value: Any) -> bool:
    if error["type"] in _EXPECTED:
        return True
    # A literal's choices (and a tag's) are strings: anything else is of the wrong type, not a wrong value.
    return bool(error["type"] in ("literal_error", "union_tag_invalid") and not isinstance(value, str))


def _expected(error: Any) -> str:
    return _EXPECTED.get(error["type"], "a string")


def _one_of(expected: dict[str, None]) -> str:
    names = list(expected)
    return names[0] if len(names) == 1 else "one of " + ", ".join(names[:-1]) + " or " + names[-1]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _reason(error: Any) -> str:
    ctx = error.get("ctx", {})
    if error["type"] == "literal_error":
        return f"{error.get('input')!r}; supported values are {ctx.get('expected', '')}."
    if error["type"] == "union_tag_invalid":
        return f"{ctx.get('tag')!r}; supported values are {ctx.get('expected_tags', '')}."
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ") + ("" if message.endswith(".") else ".")
