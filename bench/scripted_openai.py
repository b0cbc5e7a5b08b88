"""A scripted OpenAI-compatible server for bench/scale.py: canned completions, no model.

It answers ``/v1/completions`` the way the Self-Instruct prompts expect (a numbered list of new
tasks made from word lists, "No" to the classification question, one instance), plus the
discovery and health routes the ``openai`` backend probes. It measures nothing about
inference: it lets several workers run the non-inference part of the loop at full speed.

Run: python bench/scripted_openai.py PORT [SEED]
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

VERBS = ("Write", "Describe", "Explain", "Summarize", "List", "Suggest", "Compare", "Outline")
THINGS = (
    "a short poem", "three tips", "a plan", "the main steps", "a recipe", "a checklist",
    "a story", "two arguments", "a product pitch", "a lesson plan", "a riddle", "a slogan",
)  # fmt: skip
TOPICS = (
    "saving water", "learning Spanish", "a trip to Kyoto", "training a puppy", "home solar",
    "starting a podcast", "baking sourdough", "a rainy weekend", "city cycling", "chess",
    "budget travel", "houseplants", "public speaking", "a science fair", "night photography",
    "remote work", "composting", "marathon training", "jazz history", "board games",
)  # fmt: skip
AUDIENCES = (
    "for a beginner", "for kids", "for a busy parent", "for retirees", "for students",
    "in under 100 words", "with an example", "for a small team", "as a table", "in French",
)  # fmt: skip
TASKS_PER_REPLY = 8

app = FastAPI()
rng = random.Random(0)  # seeded again from the command line when run as the server


def task() -> str:
    return (
        f"{rng.choice(VERBS)} {rng.choice(THINGS)} about {rng.choice(TOPICS)} "
        f"{rng.choice(AUDIENCES)}."
    )


def complete(prompt: str) -> str:
    if "regarded as a classification" in prompt:
        return " No"
    if "Come up with examples" in prompt or "Input:" in prompt[-200:]:
        return f"Example 1\nInput: \nOutput: Here is one way: {task().lower()} Keep it simple."
    tasks = [task() for _ in range(TASKS_PER_REPLY)]
    return "\n".join(f"{i}. {t}" for i, t in enumerate(tasks, start=10))[3:]


@app.get("/health")
@app.get("/readyz")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/models")
async def models() -> dict[str, Any]:
    return {"object": "list", "data": []}


@app.post("/v1/chat/completions")
async def chat() -> JSONResponse:
    return JSONResponse({"error": "no chat template"}, status_code=400)


@app.post("/v1/completions")
async def completions(request: Request) -> dict[str, Any]:
    body = await request.json()
    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    choices = [
        {"index": i, "text": complete(p), "finish_reason": "stop"} for i, p in enumerate(prompts)
    ]
    return {"choices": choices, "usage": {"prompt_tokens": 100, "completion_tokens": 50}}


@contextmanager
def scripted_servers(count: int) -> Iterator[list[str]]:
    """`count` scripted OpenAI-compatible servers (this script); their URLs."""
    # Not at the top: run as a script, bench/ is first on sys.path and bench/service.py would
    # shadow the package.
    from service.demo import free_port, wait_ready

    procs, urls = [], []
    try:
        for i in range(count):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), str(port), str(i)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            wait_ready(url, proc)
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


if __name__ == "__main__":
    rng.seed(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
