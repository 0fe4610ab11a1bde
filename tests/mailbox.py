"""A real SMTP server on a loopback port (aiosmtpd), and the mail it received."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from tests.servers import free_port

LINK = re.compile(r"https?://\S+")


class Mailbox:
    """What the server received, each message parsed; :meth:`wait_for` reads the next one
    sent to an address."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.logins: list[tuple[str, str]] = []
        self._arrived = threading.Condition()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._arrived:
            self.messages.append(parsed)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, to: str, subject: str = "", seconds: float = 10) -> EmailMessage:
        """The first message to ``to`` whose subject holds ``subject``, taken out of the box."""
        deadline = time.monotonic() + seconds
        with self._arrived:
            while True:
                found = [m for m in self.messages if _matches(m, to, subject)]
                if found:
                    self.messages.remove(found[0])
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no mail to {to} within {seconds} s")
                self._arrived.wait(left)

    def sent_to(self, to: str) -> list[EmailMessage]:
        with self._arrived:
            return [m for m in self.messages if to.lower() in str(m["To"]).lower()]


def _matches(message: EmailMessage, to: str, subject: str) -> bool:
    return to.lower() in str(message["To"]).lower() and subject in str(message["Subject"])


def link_in(message: EmailMessage) -> str:
    """The one link in a message's text."""
    body = message.get_body(("plain",))
    assert body is not None
    links = LINK.findall(body.get_content())
    assert len(links) == 1, links
    return str(links[0])


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    mailbox = Mailbox(free_port())
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
