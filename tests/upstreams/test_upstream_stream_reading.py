"""How an OpenAI-compatible upstream's stream is read: SSE lines cut anywhere, and deltas that arrive
together merged into one message (plain tests, no server)."""

from __future__ import annotations

from lattice.server.backends.upstream.sse import SseDataLines
from lattice.server.chat import Delta, ToolCallDelta, merged


def test_data_lines_cut_between_reads_come_out_whole() -> None:
    stream = b'data: {"a": 1}\n\ndata: {"b": "\xc3\xa9"}\n\n: keep-alive\nevent: x\ndata: [DONE]\n\n'
    for cut in range(1, len(stream)):
        lines = SseDataLines()
        payloads = lines.feed(stream[:cut]) + lines.feed(stream[cut:])
        assert payloads == ['{"a": 1}', '{"b": "é"}', "[DONE]"], cut


def test_crlf_line_ends_and_a_missing_space_after_the_colon() -> None:
    assert SseDataLines().feed(b'data:{"a": 1}\r\n\r\ndata: [DONE]\r\n') == ['{"a": 1}', "[DONE]"]


def test_a_line_without_its_end_waits_for_it() -> None:
    lines = SseDataLines()
    assert lines.feed(b"data: [DO") == []
    assert lines.feed(b"NE]\n") == ["[DONE]"]


def test_text_that_arrived_together_becomes_one_delta() -> None:
    assert merged([Delta("The"), Delta(" capital"), Delta(" is")]) == [Delta("The capital is")]
    assert merged([Delta("one")]) == [Delta("one")]
    assert merged([]) == []


def test_tool_call_deltas_are_never_merged_and_keep_their_order() -> None:
    call = (ToolCallDelta(index=0, id="c1", name="f", arguments='{"x"'),)
    more = (ToolCallDelta(index=0, id="", name="", arguments=": 1}"),)
    deltas = [Delta("a"), Delta("b"), Delta("", call), Delta("", more), Delta("c"), Delta("d")]
    assert merged(deltas) == [Delta("ab"), Delta("", call), Delta("", more), Delta("cd")]
