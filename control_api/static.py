"""The agent UI's static files (agent_ui/static/): /console, /vb, /banner.js and /static/..."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from cobrowse.settings import Settings
from control_api.exceptions import not_found

STATIC_DIR = Path(__file__).resolve().parent.parent / "agent_ui" / "static"

# path -> (file, extra headers)
PAGES: dict[str, tuple[str, dict[str, str]]] = {
    "/console": ("console.html", {"Cache-Control": "no-cache"}),
    "/vb": ("vb.html", {"Cache-Control": "no-cache"}),
    # Loaded by <script src> on customer sites: readable cross-origin, short cache so key rotations apply.
    "/banner.js": (
        "banner.js",
        {"Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"},
    ),
}


def page_policy(settings: Settings, *, frames_proxy: bool) -> str:
    """The Content-Security-Policy of the console (``frames_proxy`` False) and of the virtual
    browser, which shows the session's proxy origins in its frame: their own scripts, styles and
    API only, and framed by no page unless ``console_frame_ancestors`` names it (click-jacking)."""
    if frames_proxy:
        frames = f"{settings.proxy_public_scheme}://*.{settings.proxy_domain}:{settings.public_proxy_port}"
    else:
        frames = "'none'"
    ancestors = " ".join(settings.console_frame_ancestors) or "'none'"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; frame-src {frames}; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {ancestors}"
    )


def _page(
    path: str, filename: str, headers: dict[str, str], directory: Path
) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        file = directory / filename
        if not file.is_file():
            raise not_found("file", filename)
        return FileResponse(file, headers=headers)

    page.__name__ = "static_" + filename.replace(".", "_")
    return page


class _StaticFiles(StaticFiles):
    """StaticFiles whose misses are our JSON 404 (raised, so the error middleware renders it)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        from starlette.exceptions import HTTPException

        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code == 404:
                raise not_found("file", path) from exc
            raise


def routes(settings: Settings, directory: Path = STATIC_DIR) -> list[BaseRoute]:
    policies = {
        "/console": page_policy(settings, frames_proxy=False),
        "/vb": page_policy(settings, frames_proxy=True),
    }
    result: list[BaseRoute] = []
    for path, (filename, headers) in PAGES.items():
        if path in policies:
            headers = {**headers, "Content-Security-Policy": policies[path]}
            headers["X-Content-Type-Options"] = "nosniff"
        result.append(Route(path, _page(path, filename, headers, directory), methods=["GET", "HEAD"]))
    result.append(Mount("/static", app=_StaticFiles(directory=directory, check_dir=False), name="static"))
    return result
