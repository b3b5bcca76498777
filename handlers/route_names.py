"""The route a request was for, as its template (`/v1/temp-images/{image_id}`), for labelling metrics.

A metric labelled by the raw path gets a new series for every path a caller makes up, so an
anonymous client could grow /metrics (and the server's memory) without bound. Templates are a
fixed set; every path that matches none shares one label.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from starlette.routing import BaseRoute, Match, compile_path
from starlette.types import Scope

UNMATCHED = "unmatched"


def _templates(routes: list[BaseRoute]) -> Iterator[tuple[re.Pattern[str] | BaseRoute, str]]:
    """(what matches a path, the template to name it by) for every route, included routers' too."""
    for route in routes:
        # FastAPI keeps an included router as one entry; its routes, prefixed, are its contexts.
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                regex, template, _ = compile_path(context.path)
                yield regex, template
        elif hasattr(route, "path"):
            yield route, compile_path(route.path)[1]


class RouteNames:
    def __init__(self, routes: list[BaseRoute]) -> None:
        self.routes = routes
        self._known: list[tuple[re.Pattern[str] | BaseRoute, str]] | None = None

    def template(self, scope: Scope) -> str:
        """The template of the route `scope`'s path matches (whatever its method), else `unmatched`."""
        if self._known is None:  # routes are all in place once requests arrive
            self._known = list(_templates(self.routes))
        path = scope["path"]
        for matcher, template in self._known:
            if isinstance(matcher, re.Pattern):
                if matcher.match(path):
                    return template
            elif matcher.matches(scope)[0] != Match.NONE:
                return template
        return UNMATCHED
