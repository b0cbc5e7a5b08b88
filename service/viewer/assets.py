"""The viewer's static files, addressed by content: `asset("app.css")` is
`/ui/static/app.css?v=<sha256 prefix>`, so a browser may keep each for a year (a changed file
gets a new address) and a page view costs no asset request at all, not even a revalidation."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"


@cache
def asset(name: str) -> str:
    """The versioned URL of static file `name` (relative to static/)."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
    return f"/ui/static/{name}?v={digest}"


class CachedStatic(StaticFiles):
    """StaticFiles whose answers to versioned URLs may be cached for a year, unrevalidated."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response: Response = await super().get_response(path, scope)
        query: Any = scope.get("query_string", b"")
        if response.status_code == 200 and query.startswith(b"v="):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response
