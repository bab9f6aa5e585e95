"""Local Lattice's swarm shapes (issue #18) on a real gateway and the real default model: `/swarm/*` (Local
Lattice's paths) and `/v1/swarm/*` take OpenAI-style messages, a `models` list, the strategy names
`best-of-n`, `first-success`, `longest`, `fanout` and Local Lattice's pipeline steps, beside the
contract's proto JSON (tests/swarm/test_swarm_e2e.py covers that on /v1/swarm)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY
from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.slow

TIMEOUT = 300
QUESTION = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]


def post(gateway: GatewayProcess, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{gateway.http_url}{path}", json=body, timeout=TIMEOUT)


def answered(response: httpx.Response) -> dict[str, Any]:
    """A /v1/swarm answer: the collected events and the result."""
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    assert all(a["text"] for a in reply["result"]["answers"]), reply
    return reply


def completion(response: httpx.Response, model_prefix: str) -> dict[str, Any]:
    """A /swarm answer to a vote, pipeline or debate: a chat completion with a `swarm` object, as Local
    Lattice's."""
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    assert reply["object"] == "chat.completion" and reply["model"].startswith(model_prefix), reply
    assert reply["choices"][0]["message"]["role"] == "assistant" and reply["choices"][0]["finish_reason"]
    assert reply["usage"]["total_tokens"] > 0
    return reply


def test_fanout_takes_models_and_openai_messages(gateway: GatewayProcess) -> None:
    body = {"models": ["smollm2", "smollm2-135m-instruct"], "messages": QUESTION, "max_tokens": 6, "seed": 1}
    answers = answered(post(gateway, "/v1/swarm/fanout", body))["result"]["answers"]
    assert [a["model"] for a in answers] == ["smollm2-135m-instruct"] * 2


def test_fanout_on_local_lattices_path_answers_as_local_lattice(gateway: GatewayProcess) -> None:
    body = {"models": "smollm2, smollm2", "messages": QUESTION, "max_tokens": 4, "max_parallel": 2}
    response = post(gateway, "/swarm/fanout", body)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["object"] == "swarm.fanout" and reply["id"].startswith("swarm_")
    assert response.headers["x-swarm-models"] == "smollm2-135m-instruct,smollm2-135m-instruct"
    assert len(reply["responses"]) == 2
    for candidate in reply["responses"]:
        assert candidate["ok"] and candidate["error"] is None and candidate["text"]
        assert candidate["response"]["choices"][0]["message"]["content"] == candidate["text"]


@pytest.mark.parametrize(
    ("strategy", "method"),
    [
        ("best-of-n", {"VERDICT_METHOD_JUDGE", "VERDICT_METHOD_LONGEST"}),  # longest when the judge's pick fails
        ("first-success", {"VERDICT_METHOD_FIRST_SUCCESS"}),
        ("longest", {"VERDICT_METHOD_LONGEST"}),
        ("fanout", None),
    ],
)
def test_vote_takes_local_lattices_strategy_names(
    gateway: GatewayProcess, strategy: str, method: set[str] | None
) -> None:
    body = {"models": ["smollm2", "smollm2"], "messages": QUESTION, "strategy": strategy, "max_tokens": 6, "seed": 2}
    reply = answered(post(gateway, "/v1/swarm/vote", body))
    if method is None:  # every answer, no winner
        assert "verdict" not in reply and not reply["result"].get("winner")
    else:
        assert reply["verdict"]["method"] in method
        assert reply["result"]["winner"] == reply["verdict"]["winner"]


def test_vote_on_local_lattices_path_answers_as_local_lattice(gateway: GatewayProcess) -> None:
    body = {"models": ["smollm2", "smollm2"], "messages": QUESTION, "strategy": "longest", "max_tokens": 6}
    response = post(gateway, "/swarm/vote", body)
    reply = completion(response, "swarm/smollm2-135m-instruct")
    swarm = reply["swarm"]
    assert swarm["strategy"] == "longest" and swarm["winner"] == "smollm2-135m-instruct"
    assert swarm["rationale"].startswith("longest")
    texts = [c["text"] for c in swarm["candidates"]]
    assert len(texts) == 2 and reply["choices"][0]["message"]["content"] == max(texts, key=len)
    assert response.headers["x-swarm-strategy"] == "longest"


PIPELINE = {
    "messages": [{"role": "user", "content": "the sea"}],
    "steps": [
        {"name": "line", "model": "smollm2", "user": "Write one line of poetry about {previous}."},
        {"system": "Be brief.", "user": "Give this line a title: {{line}}"},
    ],
    "max_tokens": 8,
    "seed": 1,
}


def test_a_local_lattice_pipeline_runs_its_steps_in_order(gateway: GatewayProcess) -> None:
    reply = answered(post(gateway, "/v1/swarm/pipeline", PIPELINE))
    started = {e["agentStarted"]["agent"]: e["agentStarted"] for e in reply["events"] if "agentStarted" in e}
    assert list(started) == ["line", "step_1"]
    assert started["line"]["prompt"] == "Write one line of poetry about the sea."
    line = next(a["text"] for a in reply["result"]["answers"] if a["agent"] == "line")
    assert started["step_1"]["prompt"] == f"Give this line a title: {line}"


def test_a_pipeline_on_local_lattices_path_answers_with_its_history(gateway: GatewayProcess) -> None:
    response = post(gateway, "/swarm/pipeline", PIPELINE)
    reply = completion(response, "swarm/pipeline/smollm2-135m-instruct")
    history = reply["swarm"]["history"]
    assert reply["swarm"]["strategy"] == "pipeline" and [h["name"] for h in history] == ["line", "step_1"]
    assert reply["choices"][0]["message"]["content"] == history[-1]["text"]
    assert response.headers["x-swarm-steps"] == "line,step_1"


def test_a_debate_takes_models_and_openai_messages(gateway: GatewayProcess) -> None:
    body = {"models": ["smollm2", "smollm2"], "messages": QUESTION, "rounds": 1, "max_tokens": 6, "seed": 4}
    reply = completion(post(gateway, "/swarm/debate", body), "swarm/debate/")
    swarm = reply["swarm"]
    assert swarm["strategy"] == "debate" and swarm["rounds"] == 1
    assert swarm["judge"] == "smollm2-135m-instruct"
    assert [t["round"] for t in swarm["transcript"]] == [1, 1]


def test_the_contracts_json_works_on_local_lattices_paths(gateway: GatewayProcess) -> None:
    body = {
        "messages": [{"role": "ROLE_USER", "content": [{"text": "Say hi."}]}],
        "agents": [{"model": "smollm2"}],
        "strategy": "VOTE_STRATEGY_LONGEST",
        "maxTokens": 4,
    }
    reply = completion(post(gateway, "/swarm/vote", body), "swarm/")
    assert [c["ok"] for c in reply["swarm"]["candidates"]] == [True]


def test_local_lattice_shapes_stream_as_server_sent_events(gateway: GatewayProcess) -> None:
    body = {"models": ["smollm2"], "messages": QUESTION, "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{gateway.http_url}/swarm/fanout", json=body, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert names[0] == "agent.started" and names[-1] == "result"
    assert json.loads(lines[-1].removeprefix("data: "))["answers"]


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"models": ["smollm2"], "agents": [{}], "messages": QUESTION}, "models", "invalid_value"),
        ({"models": 5, "messages": QUESTION}, "models", "invalid_type"),
        ({"models": [], "messages": QUESTION}, "models", "invalid_type"),
        ({"models": ["smollm2"], "messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
        ({"models": ["smollm2"], "messages": [{"role": "user"}]}, "messages[0].content", "invalid_argument"),
    ],
)
def test_bad_local_lattice_shapes_are_400s_naming_the_field(
    gateway: GatewayProcess, body: dict[str, Any], param: str, code: str
) -> None:
    response = post(gateway, "/swarm/fanout", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["code"] == code, error


def test_what_the_contract_cannot_say_is_refused_not_dropped(gateway: GatewayProcess) -> None:
    step = {"name": "a", "user": "{previous}", "max_tokens": 4}
    response = post(gateway, "/swarm/pipeline", {"messages": QUESTION, "steps": [step]})
    assert response.status_code == 400 and response.json()["error"]["param"] == "steps[0].max_tokens"
    response = post(gateway, "/swarm/vote", {"models": ["smollm2"], "messages": QUESTION, "top_p": 0.5})
    assert response.status_code == 400 and "top_p" in response.json()["error"]["message"]


def test_the_credential_is_judged_before_a_local_lattice_body(keyed_gateway: GatewayProcess) -> None:
    bad = {"models": 5, "messages": QUESTION}
    for headers in ({}, {"x-api-key": "wrong-key"}):
        response = httpx.post(f"{keyed_gateway.http_url}/swarm/fanout", json=bad, headers=headers, timeout=TIMEOUT)
        assert response.status_code == 401, response.text
    response = httpx.post(
        f"{keyed_gateway.http_url}/swarm/fanout", json=bad, headers={"x-api-key": API_KEY}, timeout=TIMEOUT
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "models"
