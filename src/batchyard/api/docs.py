"""``/docs``: Swagger UI served from the package's own copy (swagger-ui-py), so the API's
documentation works offline like the dashboard, with no request to a CDN."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles


def _assets() -> Path:
    """Swagger UI's distribution files, as the swagger-ui-py package ships them (found without
    importing the package: only its files are used)."""
    spec = find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(spec.origin).parent / "static"


ASSETS_URL = "/docs-assets"


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` from local assets (the app is built with ``docs_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=_assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui_html() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )
