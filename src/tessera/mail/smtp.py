"""Delivery through an SMTP server named by ``[smtp] url`` (SPEC section 8).

``smtp://`` talks plain SMTP and upgrades with STARTTLS whenever the server offers it;
``smtps://`` uses TLS from the first byte. A password is sent only over TLS, or to a server on
this machine. Blocking (``smtplib``): callers run it off the event loop. Nothing logged here
holds the password or a message's text (which carries a one-time link).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from tessera.config import SmtpServer
from tessera.errors import ServiceUnavailable
from tessera.mail import Mail

log = logging.getLogger("tessera.mail")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class SmtpMailer:
    def __init__(self, url: str, sender: str, *, timeout: float = 10.0) -> None:
        self._server = SmtpServer.from_url(url)
        self._sender = sender
        self._timeout = timeout

    def send(self, mail: Mail) -> None:
        message = self._message(mail)
        try:
            with self._connect() as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as failure:
            # The class of the failure only: an SMTP reply may echo the credentials' user.
            log.warning(
                "mail not sent",
                extra={"server": self._server.where, "error": type(failure).__name__},
            )
            raise ServiceUnavailable("The mail server could not take the message.") from None
        log.info("mail sent", extra={"server": self._server.where, "subject": mail.subject})

    def _message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        domain = parseaddr(self._sender)[1].rpartition("@")[2] or None
        message["Message-ID"] = make_msgid(domain=domain)
        message.set_content(mail.text)
        return message

    def _connect(self) -> smtplib.SMTP:
        server = self._server
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if server.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(
                server.host, server.port, timeout=self._timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=self._timeout)
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
        if server.username:
            self._login(smtp)
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        encrypted = isinstance(smtp.sock, ssl.SSLSocket)
        if not encrypted and self._server.host not in LOOPBACK:
            smtp.close()
            raise smtplib.SMTPException("refusing to send a password without TLS")
        smtp.login(self._server.username, self._server.password)
