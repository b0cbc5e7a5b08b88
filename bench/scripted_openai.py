"""A scripted OpenAI-compatible server for bench/scale.py: canned completions, no model.

It answers ``/v1/completions`` the way the Self-Instruct prompts expect (a numbered list of new
tasks made from word lists, "No" to the classification question, one instance), plus the
discovery and health routes the ``openai`` backend probes. It measures nothing about
inference: it lets several workers run the non-inference part of the loop at full speed.

With ``--chat-only`` it is a chat-only provider instead: ``/v1/chat/completions`` answers the
same replies to the last user message and ``/v1/completions`` is a 404.

Run: python bench/scripted_openai.py PORT [SEED] [--chat-only]
"""

from __future__ import annotations

import random
import sys
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
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
CHAT_ONLY = "--chat-only" in sys.argv
rng = random.Random(int(ARGS[1]) if len(ARGS) > 1 else 0)
USAGE = {"prompt_tokens": 100, "completion_tokens": 50}


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
async def chat(request: Request) -> JSONResponse:
    if not CHAT_ONLY:
        return JSONResponse({"error": "no chat template"}, status_code=400)
    body = await request.json()
    text = complete(body["messages"][-1]["content"]).strip()
    message = {"role": "assistant", "content": text}
    return JSONResponse(
        {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": USAGE}
    )


@app.post("/v1/completions", response_model=None)
async def completions(request: Request) -> dict[str, Any] | JSONResponse:
    if CHAT_ONLY:
        return JSONResponse({"error": "not found"}, status_code=404)
    body = await request.json()
    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    choices = [
        {"index": i, "text": complete(p), "finish_reason": "stop"} for i, p in enumerate(prompts)
    ]
    return {"choices": choices, "usage": USAGE}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(ARGS[0]), log_level="warning")
