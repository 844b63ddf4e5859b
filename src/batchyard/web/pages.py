"""Dashboard pages: Jinja2 shells that the browser fills from the public API with the user's token.

The pages carry no user data, so they need no session on the server: the token stays in the
browser's sessionStorage and every request the scripts make goes through the API's own bearer
authentication and authorization. A strict Content-Security-Policy keeps the token away from any
script or host but this server's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from batchyard import __version__
from batchyard.domain.statuses import TERMINAL, BatchStatus

_HERE = Path(__file__).parent
STATIC_PATH = "/ui/static"
#: Scripts, styles, images and connections from this origin only: nothing from a CDN, no inline
#: script that an injected string could become.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
BatchId = Annotated[str, PathParam(pattern=r"^[0-9A-Za-z-]{1,64}$")]

router = APIRouter(include_in_schema=False)
_templates = Jinja2Templates(directory=_HERE / "templates")


def _render(request: Request, template: str, page: str, **context: Any) -> HTMLResponse:
    return _templates.TemplateResponse(
        request,
        template,
        {
            "page": page,
            "version": __version__,
            "static": STATIC_PATH,
            "statuses": [s.value for s in BatchStatus],
            "terminal": sorted(s.value for s in TERMINAL),
            **context,
        },
        headers=_HEADERS,
    )


@router.get("/", response_class=HTMLResponse)
async def batches_page(request: Request) -> HTMLResponse:
    """The batch list: the dashboard's home."""
    return _render(request, "batches.html", "batches")


@router.get("/ui/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request) -> HTMLResponse:
    return _render(request, "sign_in.html", "sign-in")


@router.get("/ui/batches/{batch_id}", response_class=HTMLResponse)
async def batch_page(request: Request, batch_id: BatchId) -> HTMLResponse:
    """One batch, followed live; the id is only echoed into a data attribute (autoescaped)."""
    return _render(request, "batch.html", "batch", batch_id=batch_id)


@router.get("/ui/import", response_class=HTMLResponse)
async def import_page(request: Request) -> HTMLResponse:
    return _render(request, "import.html", "import")


@router.get("/ui/datasets", response_class=HTMLResponse)
async def datasets_page(request: Request) -> HTMLResponse:
    return _render(request, "datasets.html", "datasets")


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard's pages and its static scripts and styles from ``app``."""
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=_HERE / "static"), name="dashboard-static")
