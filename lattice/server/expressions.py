"""The grammar of the `model` field.

    expression   := alternative ("," alternative)*        a priority list: first that works wins
    alternative  := term ("+" term)*                      one selector, plus capability terms
    term         := "auto" | "default" | ""               the configured default
                  | "role:" NAME                          models serving a role, ranked
                  | PATTERN with * or ?                   a wildcard over model ids
                  | "lattice:personal:" ID                a personal runtime (reserved)
                  | CAPABILITY                            vision, tools, long-context, json,
                                                          embeddings, completions
                  | ID                                    an exact id or alias

`role:coder+tools` is a coder that can use tools; `vision` alone is any vision model.
"""

from __future__ import annotations

from dataclasses import dataclass

from lattice.errors import InvalidArgument

CAPABILITY_TERMS = {
    "vision": "vision",
    "tools": "tools",
    "long-context": "long_context",
    "long_context": "long_context",
    "json": "json_mode",
    "json-mode": "json_mode",
    "embeddings": "embeddings",
    "completions": "completions",
}
DEFAULT_TERMS = frozenset({"", "auto", "default"})
ROLE_PREFIX = "role:"
PERSONAL_RUNTIME_PREFIX = "lattice:personal:"


@dataclass(frozen=True)
class Default:
    pass


@dataclass(frozen=True)
class Exact:
    name: str


@dataclass(frozen=True)
class Role:
    name: str


@dataclass(frozen=True)
class Wildcard:
    pattern: str


@dataclass(frozen=True)
class PersonalRuntime:
    lattice_id: str


@dataclass(frozen=True)
class AnyModel:
    """Capability terms alone: every model is a candidate."""


Selector = Default | Exact | Role | Wildcard | PersonalRuntime | AnyModel


@dataclass(frozen=True)
class Alternative:
    text: str
    selector: Selector
    capabilities: frozenset[str] = frozenset()


def parse_expression(expression: str) -> tuple[Alternative, ...]:
    expression = expression.strip()
    if expression.lower() in DEFAULT_TERMS:
        return (Alternative(expression, Default()),)
    alternatives = []
    for part in expression.split(","):
        text = part.strip()
        if not text:
            raise InvalidArgument(f"model {expression!r} has an empty entry in its list", field="model")
        alternatives.append(_parse_alternative(text))
    return tuple(alternatives)


def _parse_alternative(text: str) -> Alternative:
    selector: Selector | None = None
    capabilities: set[str] = set()
    for raw in text.split("+"):
        term = raw.strip()
        capability = CAPABILITY_TERMS.get(term.lower())
        if capability is not None:
            capabilities.add(capability)
            continue
        parsed = _parse_selector(term, text)
        if selector is not None:
            raise InvalidArgument(
                f"model entry {text!r} names two models ({term!r} and another); join alternatives with ','",
                field="model",
            )
        selector = parsed
    return Alternative(text, selector or AnyModel(), frozenset(capabilities))


def _parse_selector(term: str, text: str) -> Selector:
    if not term:
        raise InvalidArgument(f"model entry {text!r} has an empty term", field="model")
    if term.lower() in DEFAULT_TERMS:
        return Default()
    if term.lower().startswith(ROLE_PREFIX):
        role = term[len(ROLE_PREFIX) :].strip()
        if not role:
            raise InvalidArgument(f"model entry {text!r} names no role after 'role:'", field="model")
        return Role(role.lower())
    if term.startswith(PERSONAL_RUNTIME_PREFIX):
        return PersonalRuntime(term[len(PERSONAL_RUNTIME_PREFIX) :])
    if "*" in term or "?" in term:
        return Wildcard(term)
    return Exact(term)
