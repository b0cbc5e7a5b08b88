"""Least privilege for inference: what a write key may ask a worker to load or call.

A run's backend, model and ``backend_options`` decide which URL a worker's HTTP client calls,
which directory it loads a model from, and what the engine is told (vLLM's
``engine_kwargs`` can turn on ``trust_remote_code``). A write key gets what the operator
configured: the embedded or default model, model directories under the allowed roots
(``Settings.model_roots``), servers among the configured base URLs, and the options listed in
``WRITE_OPTIONS``. Anything beyond is an admin's call: refused with 403 ``admin_scope_required``,
whose message says which value needs it. The checks run at validation, before anything is
stored, for runs and for ``/v1/generate`` alike.
"""

from __future__ import annotations

from pathlib import Path

from generators.backends.fleet import server_roots
from generators.embedded_model import EMBEDDED_MODEL_NAME
from generators.errors import ConfigError
from service.errors import AdminOnly, InvalidInput
from service.runs.config import RunConfig, check_backend
from service.settings import Settings

# Options that change only how a configured model or server is used (batching, precision,
# retries), never what is loaded or called. cache_dir, model_dir, engine_kwargs,
# enforce_eager, num_threads and the vLLM CPU binding options are the operator's.
WRITE_OPTIONS: dict[str, frozenset[str]] = {
    "transformers": frozenset({"batch_size", "dtype"}),
    "vllm": frozenset({"dtype", "max_model_len", "seed"}),
    "openai": frozenset(
        {"base_url", "api_key", "max_concurrency", "timeout_s", "max_retries", "backoff_s"}
        | {"max_backoff_s"}
    ),
}


def authorize_backend(config: RunConfig, settings: Settings, *, is_admin: bool) -> None:
    """Check a run's backend, model and options against the operator's settings.

    Args:
        config: the validated run configuration.
        settings: the service's settings (allowed base URLs and model directories).
        is_admin: whether the caller holds the admin scope (then only validity is checked).

    Raises:
        InvalidInput: no server for an openai run, a malformed base URL, or a vllm/transformers
            model that is neither the embedded/default model name nor a model directory.
        AdminOnly: an option, server or model directory beyond what a write key may name.
    """
    check_backend(config, settings)
    if not is_admin:
        extra = set(config.backend_options) - WRITE_OPTIONS[config.backend]
        if extra:
            raise AdminOnly(
                f"backend_options {sorted(extra)} need an admin key; with a write key, "
                f"backend {config.backend} takes {sorted(WRITE_OPTIONS[config.backend])}"
            )
    if config.backend == "openai":
        _check_servers(config, settings, is_admin=is_admin)
    else:
        _check_model(config.model, settings, is_admin=is_admin)


def _check_servers(config: RunConfig, settings: Settings, *, is_admin: bool) -> None:
    asked = config.backend_options.get("base_url")
    if asked is None:
        return
    # Its type (a URL, a comma-separated list or a list) is checked by RunConfig already.
    try:
        roots = server_roots(asked)
    except ConfigError as exc:
        raise InvalidInput(f"backend_options.base_url: {exc}") from None
    configured = [*settings.allowed_base_urls, *(settings.openai_base_url or "").split(",")]
    configured = [u for u in configured if u.strip()]
    allowed = set(server_roots(configured)) if configured else set()
    others = [r for r in roots if r not in allowed]
    if others and not is_admin:
        raise AdminOnly(
            f"backend_options.base_url {others} is not a configured server "
            "(INSTRUCTFORGE_OPENAI_BASE_URL, INSTRUCTFORGE_ALLOWED_BASE_URLS); "
            "only an admin key may name another"
        )


def _check_model(model: str, settings: Settings, *, is_admin: bool) -> None:
    if model in (EMBEDDED_MODEL_NAME, settings.default_model):
        return
    try:
        path = Path(model).expanduser().resolve()
        is_dir = path.is_dir()
    except (OSError, RuntimeError):  # a name too long, a symlink loop: no such directory
        path, is_dir = Path(model), False
    if not is_admin and not any(path.is_relative_to(root) for root in settings.model_roots):
        raise AdminOnly(
            f"model {model!r} is not a directory under the allowed model directories "
            "(INSTRUCTFORGE_MODEL_CACHE_DIR, INSTRUCTFORGE_MODELS_DIR, "
            "INSTRUCTFORGE_ALLOWED_MODEL_DIRS); only an admin key may name another path"
        )
    if not is_dir:
        raise InvalidInput(
            f"model {model!r}: no such model directory, and not the embedded model "
            f"{EMBEDDED_MODEL_NAME!r}"
        )
