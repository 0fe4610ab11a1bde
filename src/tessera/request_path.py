"""The path of a proxied request as the upstream will route it (SPEC section 5).

Forward auth decides on the URI the proxy passes on (nginx's ``$request_uri``, Traefik's
``X-Forwarded-Uri``): the client's own spelling, which the upstream decodes, and often cleans
up, before it routes. Comparing that spelling as written would let ``/v1/%63ontacts`` or
``/V1//contacts`` past a route for ``/v1/contacts*``, so routes are compared on one canonical
form: percent-escapes decoded, dot segments resolved, repeated slashes collapsed, the query and
fragment dropped, letters case-folded.

Some spellings mean different paths to different upstreams, and have no canonical form: an
encoded ``/`` (one segment or two), a backslash (a separator on some servers), a ``;`` (path
parameters, which servlet containers strip, so that ``/public/..;/admin`` is ``/admin`` there),
a NUL or another control character, an escape whose decoding is another escape (decoded twice
by some servers), an invalid escape, bytes that are not UTF-8, and characters outside printable
ASCII that were sent unescaped. Those are refused.

Route patterns go through the same function, so that ``/V1/Contacts*`` in the config means what
``/v1/contacts*`` does.
"""

from __future__ import annotations

import re
from string import punctuation
from urllib.parse import quote, unquote_to_bytes

from tessera.errors import InvalidRequest

# What a proxy may pass on unescaped: printable ASCII, less the characters refused anywhere.
_RAW_PATH = re.compile(r"/[!-\[\]-~]*")
_INVALID_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_AMBIGUOUS_DECODED = re.compile(r"[/\\;\x00-\x1f\x7f]|%[0-9A-Fa-f]{2}")
_EMPTY_OR_DOT = {"", ".", ".."}


def normalize_path(uri: str) -> str:
    """The path of ``uri`` in canonical form; :class:`InvalidRequest` when it is ambiguous."""
    raw = _raw_path(uri)
    if "%" not in raw and "//" not in raw and "/." not in raw:
        return raw.casefold()  # most requests: canonical already, but for the case
    segments = [_decode(segment) for segment in raw.split("/")[1:]]
    resolved = _without_dot_segments(segments)
    trailing_slash = bool(resolved) and segments[-1] in _EMPTY_OR_DOT
    return ("/" + "/".join(resolved) + ("/" if trailing_slash else "")).casefold()


def _raw_path(uri: str) -> str:
    """The path of an origin-form request target, as sent: before its query or fragment."""
    path = uri.partition("?")[0].partition("#")[0]
    if ";" in path:
        raise InvalidRequest("The request path contains a ';', which servers read differently.")
    if not _RAW_PATH.fullmatch(path):
        raise InvalidRequest(
            "The request path must start with '/' and hold only printable ASCII, with no backslash."
        )
    return path


def _without_dot_segments(segments: list[str]) -> list[str]:
    """RFC 3986 section 5.2.4 on decoded segments, empty ones (repeated slashes) dropped too."""
    resolved: list[str] = []
    for segment in segments:
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment not in _EMPTY_OR_DOT:
            resolved.append(segment)
    return resolved


def _decode(segment: str) -> str:
    if "%" not in segment:
        return segment
    if _INVALID_ESCAPE.search(segment):
        raise InvalidRequest("The request path contains an invalid percent-escape.")
    try:
        decoded = unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The request path does not decode to UTF-8.") from None
    if _AMBIGUOUS_DECODED.search(decoded):
        raise InvalidRequest(
            "The request path encodes a '/', a '\\', a ';', a control character "
            "or another escape, which servers read differently."
        )
    return decoded


def route_pattern(pattern: str) -> re.Pattern[str]:
    """A ``[[route]]`` path as a regular expression over canonical paths, with ``*`` (any run of
    characters, ``/`` included) its only wildcard; :class:`InvalidRequest` when it cannot be one."""
    if "?" in pattern or "#" in pattern:
        raise InvalidRequest("A route pattern matches paths, not queries: no '?' or '#'.")
    # Written by the operator, not sent: characters a request would escape may be written as is.
    written = quote("/" + pattern if pattern.startswith("*") else pattern, safe=punctuation)
    canonical = normalize_path(written)
    pieces = re.split(r"(\*)", canonical)
    return re.compile("".join(".*" if p == "*" else re.escape(p) for p in pieces), re.DOTALL)
