"""Pipeline prompt templates: `{{input}}`, `{{previous}}` and earlier steps' `{{name}}`.

Placeholders are checked before anything runs, and substituted in one pass, so an answer that
happens to contain `{{input}}` is inserted as it is, never expanded again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from lattice.errors import InvalidArgument
from lattice.server.swarm.spec import Step

INPUT = "input"
PREVIOUS = "previous"
_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
PLACEHOLDER = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")
STEP_NAME = re.compile(_NAME)


def check_steps(steps: Sequence[Step]) -> None:
    """Names are valid and unique; each prompt refers only to the input, the previous step and earlier steps."""
    if not steps:
        raise InvalidArgument("steps must not be empty", field="steps")
    earlier: list[str] = []
    for i, step in enumerate(steps):
        if not STEP_NAME.fullmatch(step.name):
            raise InvalidArgument(
                f"steps[{i}].name must be letters, digits, '_' or '-', starting with a letter or '_'; "
                f"got {step.name!r}",
                field=f"steps[{i}].name",
            )
        if step.name in (INPUT, PREVIOUS) or step.name in earlier:
            what = "is reserved" if step.name in (INPUT, PREVIOUS) else "is used by an earlier step"
            raise InvalidArgument(f"step name {step.name!r} {what}", field=f"steps[{i}].name")
        if not step.prompt.strip():
            raise InvalidArgument(f"step {step.name!r} needs a prompt", field=f"steps[{i}].prompt")
        for name in placeholders(step.prompt):
            if name not in (INPUT, PREVIOUS, *earlier):
                known = ", ".join(f"{{{{{n}}}}}" for n in (INPUT, PREVIOUS, *earlier))
                raise InvalidArgument(
                    f"step {step.name!r} refers to {{{{{name}}}}}, which is neither the input nor an earlier step "
                    f"(it may use {known})",
                    field=f"steps[{i}].prompt",
                )
        earlier.append(step.name)


def placeholders(template: str) -> list[str]:
    return PLACEHOLDER.findall(template)


def render(template: str, values: Mapping[str, str]) -> str:
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
