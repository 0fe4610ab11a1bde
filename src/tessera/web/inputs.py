"""What the edge refuses in the text of a request (SPEC section 2).

A NUL or a lone surrogate in the path, the query or a JSON body is refused before any route
runs: ``404`` for the path (no resource has such a name), ``422`` for the rest. ``/v1`` JSON
bodies also refuse unknown fields (:class:`ApiBody`); the OAuth endpoints, which must ignore
parameters they do not know (RFC 6749), are not to use it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator
from pydantic_core import PydanticCustomError
from starlette.types import Scope

from tessera.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from tessera.errors import FieldError, InvalidRequest, NotFound, TesseraError, ValidationFailed
from tessera.text import (
    EMAIL_MAX_LENGTH,
    NAME_MAX_LENGTH,
    PERSON_NAME_MAX_LENGTH,
    UNCLEAN_MESSAGE,
    is_clean,
)

# A NUL or a surrogate reaches a decoded path or query only as a percent-escape (%00, or %ED
# opening a surrogate's UTF-8 bytes) or as the raw byte, so most requests pass after one search.
_SUSPECT = re.compile(rb"%00|%[eE][dD]|[\x00\xed]")
# NUL, or the UTF-8 form of a surrogate (U+D800 to U+DFFF: ED, then A0 to BF).
_UNCLEAN_BYTES = re.compile(rb"\x00|\xed[\xa0-\xbf]")


def refusal(scope: Scope) -> TesseraError | None:
    """Why the edge refuses this request's path or query string, if it does."""
    if not _path_is_clean(scope):
        return NotFound("Nothing has this path: it holds a NUL or a lone surrogate.")
    # RFC 9110 forbids NUL in a field value; servers that let one through must not reach a query.
    # (One search over all the values: this runs before every request, the hot paths included.)
    if 0 in b"".join([value for _, value in scope.get("headers", ())]):  # NUL, as an int: quicker
        return InvalidRequest("A request header holds a NUL character.")
    query: bytes = scope.get("query_string", b"")
    if query and _SUSPECT.search(query):
        field = _unclean_parameter(query)
        if field is not None:
            return ValidationFailed(
                f"The query string {UNCLEAN_MESSAGE}.", errors=[FieldError(field, UNCLEAN_MESSAGE)]
            )
    return None


def _path_is_clean(scope: Scope) -> bool:
    raw: bytes | None = scope.get("raw_path")
    if raw is None:  # a server that keeps only the decoded path
        return is_clean(scope["path"])
    return not (_SUSPECT.search(raw) and _UNCLEAN_BYTES.search(unquote_to_bytes(raw)))


def _unclean_parameter(query: bytes) -> str | None:
    """The field (``query.<name>``) of the first parameter holding a NUL or a lone surrogate."""
    for pair in query.split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        name = unquote_to_bytes(raw_name.replace(b"+", b" "))
        if _UNCLEAN_BYTES.search(name):
            return "query"
        if _UNCLEAN_BYTES.search(unquote_to_bytes(raw_value.replace(b"+", b" "))):
            return "query." + name.decode("utf-8", "replace")
    return None


def unclean_field(value: Any) -> str | None:
    """The field of a string or key in a parsed JSON ``value`` that holds a NUL or a lone
    surrogate (``scopes.0``; ``body`` for the top level), or ``None`` when there is none.

    Walked with a stack of its own: a body may nest as deep as the JSON parser allows."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        at, item = pending.pop()
        if isinstance(item, str):
            if not is_clean(item):
                return at or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                if not is_clean(key):
                    return at or "body"
                pending.append((f"{at}.{key}" if at else key, child))
        elif isinstance(item, list):
            pending.extend((f"{at}.{i}" if at else str(i), child) for i, child in enumerate(item))
    return None


class ApiBody(BaseModel):
    """A ``/v1`` JSON request body: unknown fields and strings holding a NUL or a lone
    surrogate are refused with ``422 validation_error`` naming the field."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _clean_text(cls, value: Any) -> Any:
        if unclean_field(value) is not None:
            raise PydanticCustomError("unclean_text", UNCLEAN_MESSAGE)
        return value


# Text fields with SPEC section 2's limits; the services apply the same ones (``tessera.text``).
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH)
]
PersonName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=PERSON_NAME_MAX_LENGTH)
]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=EMAIL_MAX_LENGTH)]
NewPassword = Annotated[
    str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
]
