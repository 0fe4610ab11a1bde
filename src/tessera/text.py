"""What Tessera accepts in the text people send it (SPEC section 2).

No string may hold a NUL (PostgreSQL cannot store one) or a lone surrogate (no encoding can
carry one to the database or back in a response). Names have length limits. The web edge
refuses such input before a route runs; the services check again for their other callers
(the dashboard, the command line).
"""

from __future__ import annotations

import re

from tessera.errors import FieldError, ValidationFailed

NAME_MAX_LENGTH = 100  # keys, organizations, workspaces
PERSON_NAME_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 254  # RFC 5321's limit on a forward path
UNCLEAN_MESSAGE = "must not contain NUL or a lone surrogate"

_UNCLEAN = re.compile("[\x00\ud800-\udfff]")


def is_clean(value: str) -> bool:
    """No NUL and no lone surrogate."""
    return _UNCLEAN.search(value) is None


def check_clean(value: str, field: str) -> str:
    if not is_clean(value):
        raise ValidationFailed(
            f"The {field} {UNCLEAN_MESSAGE}.", errors=[FieldError(field, UNCLEAN_MESSAGE)]
        )
    return value


def checked_name(value: str, field: str = "name", *, most: int = NAME_MAX_LENGTH) -> str:
    """``value`` without surrounding blanks, when that is 1 to ``most`` clean characters."""
    cleaned = check_clean(value.strip(), field)
    if not 1 <= len(cleaned) <= most:
        raise ValidationFailed(
            f"The {field} must be 1 to {most} characters.",
            errors=[FieldError(field, f"1 to {most} characters")],
        )
    return cleaned
