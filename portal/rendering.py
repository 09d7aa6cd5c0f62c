"""Templates and the responses built from them.

Autoescaping is always on and undefined variables are errors, so a template can neither
inject markup nor silently render a blank where data was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from kernel import __version__
from kernel.formatting import nowrap_dates
from portal import formatting
from portal.keys import SETTINGS, TEMPLATES, VIEWER
from portal.scope import can


def create_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("portal", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship with the package and never change while it runs: no stat() of
        # every template file on every render.
        auto_reload=False,
    )
    env.globals["static"] = static_url
    env.globals["status_label"] = formatting.STATUS_LABELS.__getitem__
    env.globals["can"] = can
    env.filters["dates"] = nowrap_dates
    return env


def static_url(name: str) -> str:
    # The version busts browser caches when a release changes the stylesheet or script.
    return f"/static/{name}?v={__version__}"


def render_fragment(app: web.Application, template: str, context: Mapping[str, Any]) -> Markup:
    """A part of a page that depends only on `context`, never on who is looking (no
    viewer, no CSRF token: a template that asks for them fails), so it may be built once
    and served to everyone allowed to see it."""
    return Markup(app[TEMPLATES].get_template(template).render(**context))  # noqa: S704


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    viewer = request.get(VIEWER)
    session = viewer.session if viewer is not None else None
    page = request.app[TEMPLATES].get_template(template)
    html = page.render(
        viewer=viewer,
        csrf_token=session.csrf_token if session is not None else None,
        path=request.path,
        refresh_seconds=int(request.app[SETTINGS].refresh.total_seconds()),
        **(context or {}),
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
