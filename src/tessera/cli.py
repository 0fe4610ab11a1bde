"""The ``tessera`` command line (SPEC section 9)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from tessera import audit
from tessera.clock import rfc3339
from tessera.config import Config, load_config
from tessera.deployment import WORKERS_VARIABLE, Tessera
from tessera.errors import ConfigError, OrganizationExists, TesseraError
from tessera.keys import format as key_format
from tessera.logs import configure_logging
from tessera.origins import listening_mismatch

app = typer.Typer(
    help="Tessera: authentication for companies that sell a public API.", no_args_is_help=True
)
service_token_app = typer.Typer(
    help="Service tokens for the product's own backends.", no_args_is_help=True
)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys and token signing keys.", no_args_is_help=True)
app.add_typer(service_token_app, name="service-token")
app.add_typer(user_app, name="user")
app.add_typer(keys_app, name="keys")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML configuration file (default ./tessera.toml).")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _config(path: Path | None, listen: tuple[str, int] | None = None) -> Config:
    try:
        return load_config(path, listen=listen)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None


@contextmanager
def _deployment(path: Path | None) -> Iterator[Tessera]:
    tessera = Tessera(_config(path))
    try:
        tessera.start()
        yield tessera
    except (ConfigError, TesseraError) as exc:
        raise _fail(str(exc)) from None
    finally:
        tessera.close()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    config: ConfigOption = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Migrate the database if needed and serve the API, the dashboard and OAuth endpoints."""
    import uvicorn

    settings = _config(config, listen=(host, port))
    configure_logging(settings.log_level)
    mismatch = listening_mismatch(settings.public_url, host, port)
    if mismatch:
        logging.getLogger("tessera").warning(mismatch)
    with _deployment(config):
        pass  # migrations and the first signing key, once, before any worker starts
    if config is not None:
        os.environ["TESSERA_CONFIG"] = str(config.resolve())
    # Workers read the configuration again, without --host/--port: hand them the public_url.
    os.environ["TESSERA_PUBLIC_URL"] = settings.public_url
    os.environ[WORKERS_VARIABLE] = str(workers)
    typer.echo(
        f"Tessera listening on http://{host}:{port} ({settings.database_url.split('://')[0]})",
        err=True,
    )
    uvicorn.run(
        "tessera.web.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Apply database migrations."""
    with _deployment(config):
        typer.echo("database is up to date")


@service_token_app.command("create")
def service_token_create(
    name: Annotated[str, typer.Option(help="What the token is for.")],
    config: ConfigOption = None,
) -> None:
    """Print a new service token, once."""
    with _deployment(config) as tessera:
        token, raw = tessera.service_tokens.create(name)
    typer.echo(f"Service token {token.id} ({name}); it will not be shown again:", err=True)
    typer.echo(raw)


@service_token_app.command("list")
def service_token_list(config: ConfigOption = None) -> None:
    """List service tokens: id, name, created, revoked (never their values)."""
    with _deployment(config) as tessera:
        tokens = tessera.service_tokens.list()
    for token in tokens:
        revoked = rfc3339(token.revoked_at) if token.revoked_at else "active"
        typer.echo(f"{token.id}\t{token.name}\t{rfc3339(token.created_at)}\t{revoked}")


@service_token_app.command("revoke")
def service_token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (svc_...).")],
    config: ConfigOption = None,
) -> None:
    """Revoke a service token on every instance."""
    with _deployment(config) as tessera:
        token = tessera.service_tokens.revoke(token_id)
    typer.echo(f"revoked {token.id} ({token.name})")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="The user's email.")],
    password: Annotated[str, typer.Option(help="At least 10 characters.")],
    organization: Annotated[str, typer.Option(help="Name of the new organization.")],
    role: Annotated[str, typer.Option(help="Role in the organization.")] = "owner",
    join: Annotated[
        bool, typer.Option("--join", help="Join the existing organization of that name.")
    ] = False,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    config: ConfigOption = None,
) -> None:
    """Create a user and a new organization (or, with --join, add them to an existing one)."""
    with _deployment(config) as tessera:
        if role not in tessera.catalog.roles:
            raise _fail(f"unknown role '{role}'; roles: {', '.join(sorted(tessera.catalog.roles))}")
        try:
            account = tessera.accounts.create_user(
                email=email,
                password=password,
                name=name,
                organization_name=organization,
                role=role,
                join=join,
            )
        except OrganizationExists:
            raise _fail(
                f"an organization named {organization.strip()!r} already exists; "
                "add --join to add the user to it"
            ) from None
    user, org = account.user, account.organization
    typer.echo(f"created {user.id} <{user.email}> as {role} of {org.name} ({org.id})")


@keys_app.command("check")
def keys_check(key: str, config: ConfigOption = None) -> None:
    """Say offline whether KEY is a well-formed key of this deployment."""
    settings = _config(config)
    parsed = key_format.parse(key.strip(), settings.key_prefix)
    if parsed is None:
        typer.echo(f"not a valid {settings.key_prefix} key (prefix, environment or checksum)")
        raise typer.Exit(1)
    typer.echo(f"valid {parsed.environment} key {parsed.display_prefix}")


@keys_app.command("rotate-signing")
def keys_rotate_signing(config: ConfigOption = None) -> None:
    """Add a token signing key: published in the JWKS at once, signing after the JWKS
    max-age (jwks_max_age_seconds in [tokens])."""
    with _deployment(config) as tessera:
        kid = tessera.signing.rotate()
        tessera.audit_log.record(
            audit.event(
                "signing_key.rotated",
                now=tessera.clock.now(),
                organization_id=None,
                actor=audit.SYSTEM,
                target=("signing_key", kid),
            )
        )
    max_age = tessera.config.tokens.jwks_max_age_seconds
    typer.echo(
        f"new signing key {kid} is published now and signs new tokens in {max_age} seconds;"
        " tokens signed before stay valid until they expire"
    )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
