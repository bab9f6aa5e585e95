"""The OpenAI Agents SDK (PyPI `openai-agents`) on Lattice, through the OpenAI-compatible shim.

    python docs/integrations/openai_agents_example.py [--base-url http://127.0.0.1:8000/v1]
        [--api-key sk_…] [--model "role:coder,role:fast"] [--personal-runtime lat_…] ["a question"]

An agent whose model is a capability expression (Lattice picks the model, here the first role that
resolves), run once whole and once streamed; then, with `--personal-runtime`, the same agent on the
user's own machine (`lattice:personal:<id>`). The key defaults to $LATTICE_API_KEY; a gateway
without keys (`make serve`) takes any.

The agent gets `OpenAIChatCompletionsModel`, the SDK's model class for Chat Completions: with it a
truncated answer (`--max-tokens` reached) is still an answer. The SDK's default class,
`OpenAIResponsesModel`, works on Lattice's `POST /v1/responses` too, but raises `ModelBehaviorError`
on a response that ends `incomplete`. Tracing is off, since it would upload traces to OpenAI.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
from openai import AsyncOpenAI
from openai.types.responses import ResponseTextDeltaEvent


def lattice_agent(client: AsyncOpenAI, model: str, max_tokens: int) -> Agent:
    return Agent(
        name="Assistant",
        instructions="You answer in one short sentence.",
        model=OpenAIChatCompletionsModel(model=model, openai_client=client),
        model_settings=ModelSettings(temperature=0, max_tokens=max_tokens),
    )


async def main(base_url: str, api_key: str, model: str, personal_runtime: str, question: str, max_tokens: int) -> None:
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=base_url, api_key=api_key)
    models = [model] + ([f"lattice:personal:{personal_runtime}"] if personal_runtime else [])
    for expression in models:
        agent = lattice_agent(client, expression, max_tokens)
        result = await Runner.run(agent, question)
        print(f"{expression} answered: {result.final_output}")

        streamed = Runner.run_streamed(agent, question)
        text = ""
        async for event in streamed.stream_events():
            if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
                text += event.data.delta
        print(f"{expression} streamed: {text}")
    await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question", nargs="*", help="what to ask (default: the capital of France)")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="the shim's /v1 URL")
    parser.add_argument("--api-key", default=os.environ.get("LATTICE_API_KEY", "unused"))
    parser.add_argument("--model", default="role:coder,role:fast", help="a model id or capability expression")
    parser.add_argument("--personal-runtime", default="", help="a personal runtime's lat_… id, to run on it too")
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    question = " ".join(args.question) or "What is the capital of France? Answer in one word."
    asyncio.run(main(args.base_url, args.api_key, args.model, args.personal_runtime, question, args.max_tokens))
