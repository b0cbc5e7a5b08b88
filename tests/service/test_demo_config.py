"""`make demo METHOD=...`: every method the demo offers is a run configuration the API takes
(the whole demo on the real model is tests/e2e/test_demo_path.py)."""

from __future__ import annotations

from typing import get_args

import pytest

from service.demo import demo_run_config, parse_args
from service.runs.config import Method, RunConfig


@pytest.mark.parametrize("backend", ["vllm", "transformers"])
@pytest.mark.parametrize("method", get_args(Method))
def test_the_demo_config_of_every_method_is_a_valid_run(backend: str, method: str) -> None:
    body = demo_run_config(backend, method)
    config = RunConfig.model_validate(body)
    assert (config.method, config.backend) == (method, backend)
    # Its method's own section is the demo's shorter one, not the defaults.
    if method != "self_instruct":
        default = RunConfig(seed_set="default", method=method)  # type: ignore[arg-type]
        assert getattr(config, method) != getattr(default, method)


def test_make_demo_method_reaches_the_demo() -> None:
    assert parse_args(["--method", "preference"]).method == "preference"
    assert parse_args([]).method == "self_instruct"
    with pytest.raises(SystemExit):
        parse_args(["--method", "magic"])
