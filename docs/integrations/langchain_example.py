"""LangChain's `ChatOpenAI` (PyPI `langchain-openai`) on Lattice, through the OpenAI-compatible shim.

    python docs/integrations/langchain_example.py [--base-url http://127.0.0.1:8000/v1]
        [--api-key sk_…] [--model "role:coder,role:fast"] [--personal-runtime lat_…] ["a question"]

A chat model whose `model` is a capability expression (Lattice picks the model), invoked in a small
chain and streamed; then, with `--personal-runtime`, the same on the user's own machine
(`lattice:personal:<id>`). The key defaults to $LATTICE_API_KEY; a gateway without keys
(`make serve`) takes any.
"""

from __future__ import annotations

import argparse
import os

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from pydantic import SecretStr


def lattice_chat_model(base_url: str, api_key: str, model: str, max_tokens: int) -> ChatOpenAI:
    # `max_completion_tokens` is the field's alias (and what it sends): OpenAI's newer name for `max_tokens`.
    return ChatOpenAI(
        base_url=base_url, api_key=SecretStr(api_key), model=model, temperature=0, max_completion_tokens=max_tokens
    )


def main(base_url: str, api_key: str, model: str, personal_runtime: str, question: str, max_tokens: int) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You answer in one short sentence."), ("human", "{question}")]
    )
    models = [model] + ([f"lattice:personal:{personal_runtime}"] if personal_runtime else [])
    for expression in models:
        llm = lattice_chat_model(base_url, api_key, expression, max_tokens)
        chain = prompt | llm | StrOutputParser()
        print(f"{expression} answered: {chain.invoke({'question': question})}")

        streamed = "".join(chunk for chunk in chain.stream({"question": question}))
        print(f"{expression} streamed: {streamed}")

        message = llm.invoke(question)  # the model's own message: which model answered, and the tokens
        print(f"{expression} served by: {message.response_metadata.get('model_name')}")


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
    main(args.base_url, args.api_key, args.model, args.personal_runtime, question, args.max_tokens)
