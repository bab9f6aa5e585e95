"""The judge: a prompt that shows the candidates labelled A, B, C… and asks for JSON, and a
tolerant reader of whatever comes back. An answer it cannot read is not guessed at: the caller
falls back to a deterministic choice and records why."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from lattice.server.chat import Message, ResponseFormat

JUDGE_SYSTEM_PROMPT = (
    "You are an impartial judge. You compare candidate answers and reply with a single JSON object, nothing else."
)
_WINNER_KEYS = ("winner", "best", "choice", "pick", "answer")
_REASONING_KEYS = ("reasoning", "reason", "explanation", "rationale")
# A label inside a JSON value: "B", "b", "[B]", "Candidate B", "B)".
_LOOSE_LABEL = re.compile(r"\W*(?:(?:candidate|answer|option)\s*)?\W*([A-Za-z][0-9]*)\W*", re.IGNORECASE)
# Outside JSON only capital labels count, after a word that says a winner follows ("a" is a word too).
_NAMED_WINNER = re.compile(
    r"(?i:\b(?:winner|best(?:\s+(?:answer|candidate))?|choice|pick|choose|prefer))\W{0,3}(?i:is\W{0,3})?"
    r"(?i:(?:candidate|answer|option)\s+)?\[?([A-Z][0-9]*)\]?(?![A-Za-z0-9])"
)
_KEYED_WINNER = re.compile(r"""["']?(?:winner|best|choice)["']?\s*[:=]\s*["'\[]*\s*([A-Za-z][0-9]*)\b""", re.IGNORECASE)
_LONE_LABEL = re.compile(r"\W*\[?([A-Z][0-9]*)\]?\W*")


@dataclass(frozen=True)
class Candidate:
    agent: str
    label: str
    text: str


@dataclass(frozen=True)
class Reading:
    """What the judge chose, read from its answer."""

    label: str
    scores: Mapping[str, float]
    reasoning: str


class Unreadable(Exception):
    """The judge's answer names no usable winner; the message says why."""


def label(index: int) -> str:
    """A, B, … Z, then A2, B2, …"""
    letter = string.ascii_uppercase[index % 26]
    return letter if index < 26 else f"{letter}{index // 26 + 1}"


def judge_prompt(conversation: Sequence[Message], candidates: Sequence[Candidate], criteria: str = "") -> str:
    labels = [c.label for c in candidates]
    example_scores = ", ".join(f'"{name}": <0-10>' for name in labels)
    parts = [
        "Pick the best answer to the conversation below.",
        "",
        "Conversation:",
        render_conversation(conversation),
        "",
        "Candidates:",
        *(f"[{c.label}]\n{c.text}\n" for c in candidates),
    ]
    if criteria:
        parts += [f"Judge them by: {criteria}", ""]
    parts += [
        "Reply with only this JSON object, no other text:",
        f'{{"winner": "<one of {", ".join(labels)}>", "scores": {{{example_scores}}}, "reasoning": "<one sentence>"}}',
    ]
    return "\n".join(parts)


def verdict_format(labels: Sequence[str]) -> ResponseFormat:
    """The verdict `judge_prompt` asks for, as a JSON schema: a model that decodes under it always
    names one of `labels`."""
    schema = {
        "type": "object",
        "properties": {
            "winner": {"enum": list(labels)},
            "scores": {
                "type": "object",
                "properties": {name: {"type": "number"} for name in labels},
                "additionalProperties": False,
            },
            "reasoning": {"type": "string"},
        },
        "required": ["winner", "scores", "reasoning"],
        "additionalProperties": False,
    }
    return ResponseFormat("json_schema", {"name": "verdict", "schema": schema, "strict": True})


def render_conversation(conversation: Sequence[Message]) -> str:
    return "\n".join(f"{m.role.value}: {m.text}{' [image]' if m.has_image else ''}" for m in conversation)


def read_verdict(answer: str, labels: Sequence[str]) -> Reading:
    """The winner the judge named, its scores and reasoning. Accepts JSON with or without code
    fences and prose around it, loose labels (`"b"`, `"Candidate B"`), scores without a winner
    (the best score wins, the earliest on a tie), broken JSON with a readable `"winner": "B"`,
    and prose that names exactly one winner; raises `Unreadable` for anything else."""
    known = set(labels)
    for obj in _json_objects(answer):
        winner = next((obj[k] for k in obj if str(k).lower() in _WINNER_KEYS), None)
        scores = _scores(obj.get("scores"), labels)
        reasoning = next((str(obj[k]) for k in obj if str(k).lower() in _REASONING_KEYS), "")
        if winner is None and not scores:
            continue
        chosen = _loose_label(winner) if winner is not None else max(scores, key=lambda name: scores[name])
        if chosen is None and scores:
            chosen = max(scores, key=lambda name: scores[name])
        if chosen is None:
            raise Unreadable(f"the judge's winner {winner!r} is not a candidate label")
        if chosen not in known:
            raise Unreadable(f"the judge named {chosen!r}, which is not one of {', '.join(labels)}")
        return Reading(chosen, scores, reasoning)
    named = {m.upper() for m in _KEYED_WINNER.findall(answer)} or set(_NAMED_WINNER.findall(answer))
    lone = _LONE_LABEL.fullmatch(answer.strip())
    if not named and lone:
        named = {lone.group(1)}
    if not named:
        raise Unreadable("the judge's answer has no JSON verdict and names no candidate")
    if len(named) > 1:
        raise Unreadable(f"the judge's answer names several winners ({', '.join(sorted(named))})")
    chosen = named.pop()
    if chosen not in known:
        raise Unreadable(f"the judge named {chosen!r}, which is not one of {', '.join(labels)}")
    return Reading(chosen, {}, "")


def _json_objects(text: str) -> Iterator[dict[str, object]]:
    """Every JSON object in `text`, outermost first, wherever it starts (code fences, prose)."""
    decoder = json.JSONDecoder()
    position = text.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except ValueError:
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            yield value
        position = text.find("{", end)


def _loose_label(value: object) -> str | None:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        return None
    match = _LOOSE_LABEL.fullmatch(value.strip())
    return match.group(1).upper() if match else None


def _scores(value: object, labels: Sequence[str]) -> dict[str, float]:
    """Numeric scores by label, from `{"A": 7, "b": "8"}` or a list in label order; the rest is ignored."""
    pairs: list[tuple[object, object]]
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = list(zip(labels, value, strict=False))
    else:
        return {}
    scores: dict[str, float] = {}
    for key, raw in pairs:
        name = _loose_label(key)
        number = _number(raw)
        if name is not None and name in labels and number is not None:
            scores[name] = number
    # In label order, so `max` breaks ties towards the earliest candidate.
    return {name: scores[name] for name in labels if name in scores}


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None
