"""Dashboard forms read through the API's own body models, so both refuse the same input.

A form's fields are validated by the model its ``/v1`` endpoint takes (``SignupBody``,
``CreateKeyBody``, ``WorkspaceBody``…); what the model or the service refuses comes back as
one message per field, shown beside that field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tessera.errors import TesseraError
from tessera.web.problems import invalid_body

Body = TypeVar("Body", bound=BaseModel)
CHECK_FIELDS = "Check the fields marked below."


def read(model: type[Body], form: Any, *, lists: Iterable[str] = ()) -> Body:
    """The form's fields that ``model`` knows (``lists`` are multi-valued), as that model;
    raises the API's ``422`` error, naming each field, when the model refuses them."""
    many = set(lists)
    fields: dict[str, Any] = {}
    for name in model.model_fields:
        if name in many:
            values = [str(v) for v in form.getlist(name)]
            fields[name] = values or None
        elif form.get(name) is not None:
            fields[name] = str(form.get(name))
    return validated(model, fields)


def validated(model: type[Body], fields: Mapping[str, Any]) -> Body:
    try:
        return model.model_validate(dict(fields))
    except ValidationError as invalid:
        raise invalid_body(invalid.errors(include_url=False)) from None


def field_errors(error: TesseraError) -> dict[str, str]:
    """The first message for each top-level field the error names (``scopes.0`` → ``scopes``)."""
    found: dict[str, str] = {}
    for item in error.errors:
        found.setdefault(item.field.split(".", 1)[0], _sentence(item.message))
    return found


def summary(error: TesseraError, errors: Mapping[str, str], shown: Iterable[str]) -> str:
    """What the page says at its top: the error itself, unless every field it names is shown."""
    return CHECK_FIELDS if errors and set(errors) <= set(shown) else error.detail


def _sentence(message: str) -> str:
    message = message.removeprefix("Value error, ")
    return message[:1].upper() + message[1:]
