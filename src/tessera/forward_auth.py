"""Forward auth for reverse proxies: which scopes a proxied request needs (SPEC section 5).

The ``[[route]]`` table maps methods and path patterns (``*`` matches any run of characters,
``/`` included: ``/v1/contacts*``) to the scopes a request needs; the first matching route wins.
Patterns and requests are compared in the canonical form of :mod:`tessera.request_path`, so
that every spelling of a path that reaches the same place upstream gets the same answer. A
request no route matches is refused unless ``forward_auth_default = "authenticate"``, which
lets any valid credential through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tessera.authz.decision import Refused
from tessera.config import Config
from tessera.errors import InvalidRequest
from tessera.request_path import normalize_path, route_pattern

ANSWERS_KEPT = 4096
LONGEST_KEPT = 256  # characters of a URI whose answer is kept


@dataclass(frozen=True)
class RouteRule:
    methods: frozenset[str]  # empty: every method
    pattern: re.Pattern[str]  # over canonical paths
    scopes: tuple[str, ...]

    def matches(self, method: str, path: str) -> bool:
        method_ok = not self.methods or method in self.methods
        return method_ok and self.pattern.fullmatch(path) is not None


class RouteTable:
    def __init__(self, config: Config) -> None:
        self.rules = [
            RouteRule(
                frozenset(m.upper() for m in route.methods if m != "*"),
                route_pattern(route.path),
                tuple(route.scopes),
            )
            for route in config.route
        ]
        self.authenticate_unmatched = config.forward_auth_default == "authenticate"
        # Answers by (method, URI), bounded: a proxy asks about the same few URIs again and
        # again, and normalizing and matching them costs more than the rest of a decision.
        self._answers: dict[tuple[str, str], tuple[str, ...] | Refused] = {}

    def route_scopes(self, method: str, uri: str) -> tuple[str, ...] | Refused:
        """The scopes a request for ``uri`` needs; refused when no route allows it, or when its
        path is ambiguous."""
        answer = self._answers.get((method, uri))
        if answer is None:
            answer = self._route_scopes(method, uri)
            if len(uri) <= LONGEST_KEPT:  # the memory kept stays small whatever clients send
                if len(self._answers) >= ANSWERS_KEPT:
                    self._answers.clear()
                self._answers[(method, uri)] = answer
        return answer

    def _route_scopes(self, method: str, uri: str) -> tuple[str, ...] | Refused:
        try:
            path = normalize_path(uri)
        except InvalidRequest as ambiguous:
            return Refused("invalid_request", ambiguous.detail)
        for rule in self.rules:
            if rule.matches(method.upper(), path):
                return rule.scopes
        if self.authenticate_unmatched:
            return ()
        return Refused("forbidden", f"No route allows {method.upper()} {path}.")
