from __future__ import annotations

import pytest

from lattice.server.chat import Delta, TokenLogprob, ToolCallDelta
from lattice.server.stop_strings import DeltaStops, StopStringMatcher


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


@pytest.mark.parametrize(
    ("stops", "chunks", "fired"),
    [
        (("END",), ["hello E", "N", "D and more"], "END"),  # across chunks
        (("\n\n", "User:"), ["one User:", " two\n\n"], "User:"),
        (("ab", "b"), ["xab"], "ab"),  # the earliest match
        (("b", "ab"), ["xab"], "ab"),  # whatever the order the request lists them in
        (("ab", "abc"), ["xabc"], "ab"),  # two at the same place: the one listed first
        (("abc", "ab"), ["xabc"], "abc"),
    ],
)
def test_says_which_stop_string_ended_the_text(stops: tuple[str, ...], chunks: list[str], fired: str) -> None:
    matcher = StopStringMatcher(stops)
    for chunk in chunks:
        scan = matcher.feed(chunk)
        if scan.stopped:
            assert scan.stop == fired
            return
        assert scan.stop == ""
    pytest.fail("no stop string was found")


def token(text: str) -> Delta:
    """One token's delta, as llama.cpp streams them: its text and its log probability."""
    return Delta(text, logprobs=(TokenLogprob(text, -1.0),))


def tokens_of(deltas: list[Delta]) -> list[str]:
    return [lp.token for d in deltas for lp in d.logprobs]


def test_deltas_are_cut_at_the_stop_and_keep_the_log_probabilities_of_their_text() -> None:
    stops = DeltaStops(("END",))
    out = [stops.feed(token(t)) for t in ("one ", "E", "x", " two ", "E", "N")]
    assert not stops.stopped and "".join(d.text for d in out) == "one Ex two "
    # "E" went out with "x", when it proved no stop: its log probability with it, in order.
    assert tokens_of(out) == ["one ", "E", "x", " two "]
    last = stops.feed(token("D."))
    assert (last.text, last.logprobs, stops.stop) == ("", (), "END")  # the stop string's tokens are not sent


def test_a_token_that_straddles_the_stop_goes_out_as_text_but_not_as_a_log_probability() -> None:
    stops = DeltaStops(("END",))
    out = [stops.feed(token(t)) for t in ("one E", "ND")]
    assert [d.text for d in out] == ["one ", ""] and tokens_of(out) == [] and stops.stop == "END"


def test_what_was_held_comes_out_at_the_natural_end() -> None:
    stops = DeltaStops(("END",))
    out = [stops.feed(token("a")), stops.feed(token("EN")), stops.flush()]
    assert "".join(d.text for d in out) == "aEN" and tokens_of(out) == ["a", "EN"] and not stops.stopped


def test_without_stop_strings_deltas_pass_as_they_are() -> None:
    stops = DeltaStops(())
    delta = Delta("x", (ToolCallDelta(0, "c1", "f", "{}"),), (TokenLogprob("x", -0.5),))
    assert stops.feed(delta) is delta and stops.flush() == Delta() and not stops.stopped
