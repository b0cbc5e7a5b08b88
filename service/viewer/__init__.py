"""The web viewer under /ui: runs, tasks with their provenance, datasets and training runs.

Server-rendered Jinja2 pages with htmx (polling for live progress) and uPlot (charts), both
vendored in `static/vendor/` (no CDN: the product runs offline). Logged in by API key into a
signed session cookie; see `session`.
"""

from __future__ import annotations

from fastapi import FastAPI

from service.viewer.assets import STATIC, CachedStatic
from service.viewer.routes import router


def install_viewer(app: FastAPI) -> None:
    """Serve the viewer's pages under /ui and its assets under /ui/static."""
    app.mount("/ui/static", CachedStatic(directory=STATIC), name="viewer-static")
    app.include_router(router)
