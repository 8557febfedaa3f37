"""``misto-cloud dashboards``: build the Grafana dashboards' JSON, check the committed copies,
push them to a running Grafana. Exit codes as ``misto-cloud``: 1 a failure, 2 usage."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from misto.cloud.dashboards.generate import DEFAULT_DIR, dashboards, differences, sqlite_dashboards, write
from misto.cloud.dashboards.model import Flavour
from misto.cloud.settings import check_secret, read_secret_file

EXIT_FAILURE = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="dashboards",
    help="Grafana dashboards: build the JSON, check the committed copies, push to Grafana.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show formats like ADDRESS[/UNIT] literally
)

DirOption = Annotated[Path, typer.Option("--dir", help="The dashboards folder (InfluxDB).", file_okay=False)]
SqliteDirOption = Annotated[
    Path | None,
    typer.Option(
        "--sqlite-dir",
        help="The SQLite flavour's folder [default: DIR/../sqlite/dashboards].",
        file_okay=False,
    ),
]


def _sqlite_folder(folder: Path, sqlite_folder: Path | None) -> Path:
    return sqlite_folder if sqlite_folder is not None else folder.parent / "sqlite" / "dashboards"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"misto-cloud dashboards: {message}", err=True)
    return typer.Exit(code)


@app.command()
def build(folder: DirOption = DEFAULT_DIR, sqlite_folder: SqliteDirOption = None) -> None:
    """Write every dashboard's JSON into the folders (the generator's output, to commit): the
    InfluxDB dashboards, and the SQLite flavour of those that have one."""
    for path in write(folder) + write(_sqlite_folder(folder, sqlite_folder), Flavour.SQLITE):
        typer.echo(f"wrote {path}")


@app.command()
def check(folder: DirOption = DEFAULT_DIR, sqlite_folder: SqliteDirOption = None) -> None:
    """Exit 1 if the folders' JSON differs from what the generator makes now."""
    sqlite_dir = _sqlite_folder(folder, sqlite_folder)
    problems = differences(folder) + differences(sqlite_dir, Flavour.SQLITE)
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(EXIT_FAILURE)
    typer.echo(f"{folder}: {len(dashboards())} dashboards up to date")
    typer.echo(f"{sqlite_dir}: {len(sqlite_dashboards())} SQLite dashboards up to date")


def _secret(value: str | None, file: Path | None, what: str) -> str | None:
    if value is not None and file is not None:
        raise _fail(f"give --{what} or --{what}-file, not both", EXIT_USAGE)
    if file is not None:
        try:
            value = read_secret_file(file)
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"--{what}-file {str(file)!r}: {exc}", EXIT_USAGE) from None
    if value is None:
        return None
    try:
        return check_secret(value, f"--{what}")
    except ValueError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None


@app.command()
def push(  # noqa: PLR0917 - typer maps parameters to options
    url: Annotated[str, typer.Option(help="Grafana's base URL, e.g. http://127.0.0.1:3000.")],
    token_file: Annotated[
        Path | None, typer.Option(help="File holding a service-account token (or set GRAFANA_TOKEN).", dir_okay=False)
    ] = None,
    user: Annotated[str | None, typer.Option(help="Grafana user (HTTP Basic), with --password-file.")] = None,
    password_file: Annotated[
        Path | None, typer.Option(help="File holding the user's password.", dir_okay=False)
    ] = None,
    folder: Annotated[str, typer.Option(help="Title of the folder the dashboards go into.")] = "Misto",
    folder_uid: Annotated[str, typer.Option(help="Uid of that folder.")] = "misto",
    create_folder: Annotated[bool, typer.Option(help="Create the folder if it does not exist.")] = True,
    influx_url: Annotated[
        str | None,
        typer.Option(
            help="Also create or update the InfluxDB datasource, reaching InfluxDB at this URL (from Grafana)."
        ),
    ] = None,
    influx_database: Annotated[str, typer.Option(help="The datasource's database.")] = "misto",
    influx_user: Annotated[str | None, typer.Option(help="The datasource's InfluxDB user.")] = None,
    influx_password_file: Annotated[
        Path | None, typer.Option(help="File holding that user's password.", dir_okay=False)
    ] = None,
) -> None:
    """Upload every dashboard to Grafana (saved by uid, overwriting), into one folder."""
    from misto.cloud.dashboards.push import Credentials, DashboardPushError, DatasourceSpec
    from misto.cloud.dashboards.push import push as push_dashboards

    token = _secret(os.environ.get("GRAFANA_TOKEN") if token_file is None else None, token_file, "token")
    password = _secret(None, password_file, "password")
    if token is None and (user is None or password is None):
        raise _fail("give --token-file (or GRAFANA_TOKEN), or --user with --password-file", EXIT_USAGE)
    source = None
    if influx_url is not None:
        influx_password = _secret(None, influx_password_file, "influx-password")
        source = DatasourceSpec(influx_url, influx_database, influx_user, influx_password)
    credentials = Credentials(token=token) if token is not None else Credentials(user=user, password=password)
    try:
        report = push_dashboards(
            url,
            credentials,
            dashboards(),
            folder_title=folder,
            folder_uid=folder_uid,
            create_folder=create_folder,
            datasource=source,
        )
    except DashboardPushError as exc:
        raise _fail(str(exc), EXIT_FAILURE) from None
    typer.echo(f"Grafana {report.grafana_version or '(version unknown)'} at {url}")
    if report.folder_created:
        typer.echo(f"created folder {folder!r} ({folder_uid})")
    if report.datasource:
        typer.echo(f"{report.datasource} datasource misto-influxdb -> {influx_url}")
    for line in report.dashboards:
        typer.echo(f"saved {line}")
