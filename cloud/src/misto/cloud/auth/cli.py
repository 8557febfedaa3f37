"""``misto-cloud users ...`` and ``misto-cloud api-keys ...``: people and API keys in the configured
registry database, for the first admin and for scripts. Passwords come from a prompt (typed twice)
or ``--password-file``, never from an argument (which ``ps`` and shell history would show). Changes
are audited as made by ``cli:<os user>``."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from misto.cloud.auth.models import DEFAULT_RATE_LIMIT, MAX_RATE_LIMIT
from misto.cloud.auth.roles import Role
from misto.cloud.auth.store import AuthStore
from misto.cloud.errors import CloudError, ConfigError
from misto.cloud.registry.errors import InvalidFieldError
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.settings import load_settings, read_secret_file

EXIT_FAILURE = 1
EXIT_USAGE = 2
T = TypeVar("T")

users_app = typer.Typer(
    help="People who sign in to the API (docs/security.md).", no_args_is_help=True, rich_markup_mode=None
)
keys_app = typer.Typer(
    help="API keys for machines and partners (docs/security.md).", no_args_is_help=True, rich_markup_mode=None
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML settings file (its registry section names the database).", dir_okay=False
    ),
]
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file", help="Read the password from this file (first line); without it, prompt.", dir_okay=False
    ),
]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _run(config: Path | None, work: Callable[[AuthStore], Awaitable[T]]) -> T:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"misto-cloud: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None

    async def go() -> T:
        registry = await SqlRegistry.open(settings.registry.database_url(settings.store))
        try:
            return await work(AuthStore(registry))
        finally:
            await registry.close()

    try:
        return asyncio.run(go())
    except InvalidFieldError as exc:
        typer.echo(f"misto-cloud: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except CloudError as exc:
        typer.echo(f"misto-cloud: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None


def _password(password_file: Path | None) -> str:
    if password_file is None:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    try:
        lines = read_secret_file(password_file).splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"misto-cloud: --password-file: cannot read {str(password_file)!r}: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    return lines[0] if lines else ""


# --- users ------------------------------------------------------------------------------------


@users_app.command("add")
def add_user(
    username: Annotated[str, typer.Argument(help="Sign-in name: a-z, 0-9, '.', '-', '_'.")],
    role: Annotated[Role, typer.Option("--role", help="What they may do (docs/security.md).")],
    name: Annotated[str | None, typer.Option("--name", help="Display name (default: the username).")] = None,
    password_file: PasswordFile = None,
    config: ConfigOption = None,
) -> None:
    """Add a person (the first admin is added this way, or with the operator token over the API)."""
    password = _password(password_file)
    user = _run(
        config,
        lambda store: store.create_user(
            username, display_name=name or username, role=role, password=password, actor=_actor()
        ),
    )
    typer.echo(f"user {user.username}: added as {user.role.value}")


@users_app.command("list")
def list_users(config: ConfigOption = None) -> None:
    """Every person: username, role, state, last sign-in."""
    for user in _run(config, lambda store: store.users()):
        state = "disabled" if user.disabled else "enabled"
        last = user.last_login_at.isoformat() if user.last_login_at else "never"
        typer.echo(f"{user.username}\t{user.role.value}\t{state}\tlast sign-in {last}\t{user.display_name}")


@users_app.command("set-password")
def set_password(
    username: Annotated[str, typer.Argument(help="Whose password.")],
    password_file: PasswordFile = None,
    config: ConfigOption = None,
) -> None:
    """Set a new password (their tokens issued before it stop working)."""
    password = _password(password_file)
    _run(config, lambda store: store.update_user(username, password=password, actor=_actor()))
    typer.echo(f"user {username}: password changed")


@users_app.command("disable")
def disable_user(
    username: Annotated[str, typer.Argument(help="Who.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable the account again instead.")] = False,
    config: ConfigOption = None,
) -> None:
    """Disable an account: sign-in and its tokens are refused at once (--enable undoes it)."""
    _run(config, lambda store: store.update_user(username, disabled=not enable, actor=_actor()))
    typer.echo(f"user {username}: {'enabled' if enable else 'disabled'}")


# --- API keys ---------------------------------------------------------------------------------


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option("--name", help="What the key is for.")],
    organisation: Annotated[str, typer.Option("--organisation", help="Who holds it.")],
    role: Annotated[Role, typer.Option("--role", help="What it may do.")] = Role.PARTNER,
    rate_limit: Annotated[
        int, typer.Option("--rate-limit", help="Requests per minute.", min=1, max=MAX_RATE_LIMIT)
    ] = DEFAULT_RATE_LIMIT,
    config: ConfigOption = None,
) -> None:
    """Issue a key and print it once (only its hash is kept)."""
    issued = _run(
        config,
        lambda store: store.create_key(
            name=name, organisation=organisation, role=role, rate_limit=rate_limit, actor=_actor()
        ),
    )
    key = issued.api_key
    typer.echo(f"API key {key.id} for {key.organisation} ({key.role.value}, {key.rate_limit}/min):", err=True)
    typer.echo(issued.key)
    typer.echo("It is shown this once: store it now.", err=True)


@keys_app.command("list")
def list_keys(config: ConfigOption = None) -> None:
    """Every key (never the key itself): id, organisation, role, limit, state."""
    for key in _run(config, lambda store: store.keys()):
        state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        typer.echo(f"{key.id}\t{key.organisation}\t{key.role.value}\t{key.rate_limit}/min\t{state}\t{key.name}")


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (mst_<id>_...).")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key: refused from the next request on."""
    _run(config, lambda store: store.revoke_key(key_id, actor=_actor()))
    typer.echo(f"API key {key_id}: revoked")
