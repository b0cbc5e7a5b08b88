"""The FastAPI application: `create_app(settings)` builds it; nothing happens at import."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from service.api.auth import KeyVerifier
from service.api.body_limit import BodyLimitMiddleware
from service.api.errors import install_error_handlers
from service.api.links import install_links
from service.api.routes import datasets, eval_sets, generate, health, runs, seed_sets, tasks
from service.settings import Settings, get_settings
from service.storage.db import AsyncEngines, Database
from service.viewer import install_viewer

API_VERSION = "1"
# The collector's first threshold in an API process: net new container objects between young
# collections (CPython's default is 700). With ~100 requests in flight the count of live
# objects swings by thousands and crossed 700 every ~8 requests, so a young collection (~0.2 ms
# CPU) and every tenth a middle one (~1 ms) and a full one (~5 ms) ran in the middle of
# requests: 8% of the server's CPU (bench/trace_reads.py). At 10,000 almost none run under
# load. The cost: cyclic garbage (rare here; requests free by reference count) is found later,
# and each young collection, when one runs, walks up to ~10k objects (a few ms).
GC_YOUNG_THRESHOLD = 10_000


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the API.

    Args:
        settings: defaults to the environment's.
        database: share an existing Database (tests); otherwise one is made and disposed of
            with the app.
    """
    settings = settings or get_settings()
    owns_database = database is None
    db = database or Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Fewer threads than AnyIO's 40: each holds a pooled connection while it works, and on
        # a few cores more threads only queue on the GIL.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        # Everything imported so far lives as long as the process: moved out of the collector's
        # sight, a full collection no longer walks ~200k objects in the middle of a request
        # (it was the 100 ms stall behind the p99 of even a lightly loaded API). A process that
        # froze its heap itself (a pre-fork host, the test session) keeps its freeze: the app
        # neither collects again (a full walk, 0.7 s CPU in a test process) nor unfreezes at
        # shutdown what it did not freeze.
        freezes = gc.get_freeze_count() == 0
        if freezes:
            gc.collect()
            gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
        yield
        gc.set_threshold(*thresholds)
        if freezes:
            gc.unfreeze()
        await app.state.read_engines.dispose_here()
        if owns_database:
            db.dispose()

    app = FastAPI(
        title="instructforge",
        version=API_VERSION,
        description="Grow instruction-tuning data from seed tasks, with provenance.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = db
    app.state.read_engines = AsyncEngines(db.url, connections=settings.api_read_connections)
    app.state.keys = KeyVerifier(ttl_seconds=settings.api_key_cache_seconds)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    # Starlette tries routes in order, ~1 µs each: the hot reads (runs, tasks) go first, ahead
    # of the ~20 routes that would otherwise be tried before a task (bench/read_cpu.py).
    for module in (runs, tasks, health, seed_sets, eval_sets, generate, datasets):
        app.include_router(module.router)
    install_links(app)
    install_viewer(app)
    return app
