"""The [smtp] configuration and the SMTP adapter, against a real local SMTP server."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tessera.config import load_config
from tessera.errors import ConfigError, ServiceUnavailable
from tessera.mail import Mail
from tessera.mail.smtp import SmtpMailer
from tests.mailbox import Mailbox
from tests.servers import free_port

SECRET = "s3cret-smtp-pass"


def _config(**smtp: Any) -> Any:
    return load_config(environ={}, overrides={"smtp": smtp})


def test_smtp_config_is_read_and_its_password_kept_out_of_repr() -> None:
    """A valid table loads; the URL (which holds the password) is not in the config's repr."""
    config = _config(url=f"smtp://mailer:{SECRET}@mail.example.com:587", sender="Acme <a@b.io>")
    assert config.smtp.enabled and config.smtp.sender == "Acme <a@b.io>"
    assert SECRET not in repr(config)
    assert not load_config(environ={}).smtp.enabled


@pytest.mark.parametrize(
    ("smtp", "named"),
    [
        ({"url": "http://mail.example.com", "sender": "a@b.io"}, "smtp.url"),
        ({"url": "smtp://", "sender": "a@b.io"}, "smtp.url"),
        ({"url": "smtp://mail.example.com"}, "smtp.sender"),
        ({"url": "smtp://mail.example.com", "sender": "nobody"}, "smtp.sender"),
        ({"url": "smtp://mail.example.com", "sender": "a@b.io", "port": 1}, "smtp.port"),
    ],
)
def test_bad_smtp_config_names_the_key(smtp: dict[str, Any], named: str) -> None:
    """Each unusable table stops the start with the key named and no secret shown."""
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        _config(**smtp)


def test_environment_sets_the_smtp_url() -> None:
    """TESSERA_SMTP__URL configures the server without a file."""
    config = load_config(
        environ={"TESSERA_SMTP__URL": "smtps://mail.example.com", "TESSERA_SMTP__SENDER": "a@b.io"}
    )
    assert config.smtp.url == "smtps://mail.example.com"


def test_login_reaches_the_server_and_no_log_line_holds_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With user and password in the URL the adapter logs in (plain text only on loopback);
    the logs name the server without its credentials."""
    box = Mailbox(free_port())

    def authenticate(
        _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> Any:
        assert isinstance(data, LoginPassword)
        box.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password.decode() == SECRET)

    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        caplog.set_level(logging.INFO, logger="tessera.mail")
        good = SmtpMailer(f"smtp://mailer:{SECRET}@127.0.0.1:{box.port}", "a@b.io")
        good.send(Mail("bob@example.com", "Hello", "text"))
        assert box.wait_for("bob@example.com")["Subject"] == "Hello"
        bad = SmtpMailer(f"smtp://mailer:wrong-{SECRET}@127.0.0.1:{box.port}", "a@b.io")
        with pytest.raises(ServiceUnavailable):
            bad.send(Mail("bob@example.com", "Hello", "text"))
    finally:
        controller.stop()
    assert box.logins == [("mailer", SECRET), ("mailer", f"wrong-{SECRET}")]
    logged = caplog.text + repr([r.__dict__ for r in caplog.records])
    assert "mail sent" in logged and "mail not sent" in logged
    assert SECRET not in logged and "mailer:" not in logged


def test_unreachable_server_is_unavailable() -> None:
    """Nothing listening: the send fails with ServiceUnavailable, not a raw socket error."""
    mailer = SmtpMailer(f"smtp://127.0.0.1:{free_port()}", "a@b.io", timeout=2)
    with pytest.raises(ServiceUnavailable):
        mailer.send(Mail("bob@example.com", "Hello", "text"))


def test_password_is_not_sent_in_clear_to_another_host() -> None:
    """A password over plain SMTP to a host that is not this machine is refused before login."""
    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.2", port=box.port)
    controller.start()
    try:
        mailer = SmtpMailer(f"smtp://u:{SECRET}@127.0.0.2:{box.port}", "a@b.io")
        with pytest.raises(ServiceUnavailable):
            mailer.send(Mail("bob@example.com", "Hello", "text"))
    finally:
        controller.stop()
    assert box.messages == []
