"""Email Tessera sends: what a message is, and the port that sends one.

The core composes messages (:mod:`tessera.mail.messages`); an adapter delivers them
(:mod:`tessera.mail.smtp`). A deployment without ``[smtp]`` has no mailer, and the services
then hand their links to a person instead (the inviter, the operator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str


class Mailer(Protocol):
    def send(self, mail: Mail) -> None:
        """Deliver ``mail``; raises :class:`tessera.errors.ServiceUnavailable` when the mail
        server cannot take it. Blocking: call it off the event loop."""
        ...
