from __future__ import annotations

import pytest

from lattice.server.stop_strings import StopStringMatcher


def run(stops: tuple[str, ...], chunks: list[str]) -> tuple[str, bool]:
    matcher = StopStringMatcher(stops)
    out = []
    for chunk in chunks:
        scan = matcher.feed(chunk)
        out.append(scan.text)
        if scan.stopped:
            return "".join(out), True
    return "".join(out) + matcher.flush(), False


@pytest.mark.parametrize(
    ("stops", "chunks", "expected"),
    [
        ((), ["a", "b"], ("ab", False)),
        (("END",), ["hello ", "world"], ("hello world", False)),
        (("END",), ["hello E", "N", "D and more"], ("hello ", True)),
        (("END",), ["xEN", "Y"], ("xENY", False)),  # a false start is released
        (("END",), ["ab", "EN"], ("abEN", False)),  # held text comes out at the natural end
        (("\n\n", "User:"), ["one\n", "\ntwo"], ("one", True)),
        (("ab", "b"), ["xab"], ("x", True)),  # the earliest match wins
        (("ab",), ["aab"], ("a", True)),
    ],
)
def test_cuts_at_the_first_stop_and_never_emits_it(
    stops: tuple[str, ...], chunks: list[str], expected: tuple[str, bool]
) -> None:
    assert run(stops, chunks) == expected


def test_holds_back_only_what_could_become_a_stop() -> None:
    matcher = StopStringMatcher(("STOP",))
    assert matcher.feed("go ST").text == "go "
    assert matcher.feed("ay").text == "STay"
