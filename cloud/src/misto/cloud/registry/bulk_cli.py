"""``misto-cloud registry import|export``: bulk devices, gateways and device models as CSV or
GeoJSON (device models: CSV only), see docs/registry.md. ``--entity`` chooses; devices by default.

Exit codes as ``misto-cloud``: 0 success, 1 bad rows (each printed on stderr), a conflict or the
registry unavailable, 2 invalid configuration or usage.
"""

from __future__ import annotations

import asyncio
import getpass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from misto.cloud.errors import CloudError, ConfigError
from misto.cloud.registry.bulk import MAX_BYTES, BulkFormat
from misto.cloud.registry.bulk_apply import ImportMode, ImportReport, Outcome, export_records, import_records
from misto.cloud.registry.bulk_entities import ENTITIES, BulkEntity
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.settings import load_settings

EXIT_FAILURE = 1
EXIT_CONFIG = 2

app = typer.Typer(
    name="registry",
    help="The asset registry: import and export devices, gateways and device models as CSV or GeoJSON.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML settings file (the registry.url to use).", dir_okay=False),
]
FormatOption = Annotated[
    BulkFormat | None,
    typer.Option("--format", "-f", help="csv or geojson [default: from the file name's extension, else csv]."),
]


class EntityName(StrEnum):
    DEVICES = "devices"
    GATEWAYS = "gateways"
    DEVICE_MODELS = "device-models"


EntityOption = Annotated[
    EntityName,
    typer.Option(
        "--entity",
        "-e",
        help="What the file holds: devices, gateways or device-models (CSV only). "
        "For a whole city import device-models, then gateways, then devices.",
    ),
]


def _format(chosen: BulkFormat | None, path: Path | None, entity: BulkEntity) -> BulkFormat:
    if chosen is None:
        located = path is not None and path.suffix.lower() in {".geojson", ".json"}
        chosen = BulkFormat.GEOJSON if located else BulkFormat.CSV
    if chosen not in entity.table.formats:
        typer.echo(f"misto-cloud: --format: {entity.table.noun}s have no location, so no {chosen}: use csv", err=True)
        raise typer.Exit(EXIT_CONFIG)
    return chosen


def _url(config: Path | None) -> str:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"misto-cloud: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    return settings.registry.database_url(settings.store)


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


@app.command("import")
def import_command(  # noqa: PLR0917 - typer passes options by keyword
    file: Annotated[Path, typer.Argument(help="The CSV or GeoJSON file of records.", dir_okay=False, exists=True)],
    entity: EntityOption = EntityName.DEVICES,
    fmt: FormatOption = None,
    mode: Annotated[
        ImportMode, typer.Option("--mode", help="create: only new ids; upsert: also update existing records.")
    ] = ImportMode.CREATE,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row; write nothing.")] = False,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who the audit log names [default: cli:<user name>].")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Import devices, gateways or device models; every bad row is printed and nothing is written
    unless all rows are good."""
    kind = ENTITIES[entity.value]
    chosen = _format(fmt, file, kind)
    if file.stat().st_size > MAX_BYTES:
        typer.echo(f"{file}: file: is over {MAX_BYTES} bytes; split it", err=True)
        raise typer.Exit(EXIT_FAILURE)
    data = file.read_bytes()
    url = _url(config)
    try:
        report = asyncio.run(_import(kind, url, data, chosen, mode, dry_run, actor or _default_actor()))
    except CloudError as exc:
        typer.echo(f"misto-cloud: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    _print(file, report)
    if report.outcome not in {Outcome.VALIDATED, Outcome.IMPORTED}:
        raise typer.Exit(EXIT_FAILURE)


async def _import(  # noqa: PLR0917 - the command's options
    entity: BulkEntity, url: str, data: bytes, fmt: BulkFormat, mode: ImportMode, dry_run: bool, actor: str
) -> ImportReport:
    registry = await SqlRegistry.open(url)
    try:
        return await import_records(entity, registry, data, fmt=fmt, mode=mode, dry_run=dry_run, actor=actor)
    finally:
        await registry.close()


def _print(file: Path, report: ImportReport) -> None:
    for error in report.errors:
        typer.echo(f"{file}: {error}", err=True)
    verb = {
        Outcome.VALIDATED: "dry run OK, would write",
        Outcome.IMPORTED: "imported",
        Outcome.REFUSED: f"refused ({len(report.errors)} error(s)), nothing written; the good rows would give",
        Outcome.CONFLICT: "conflict: the registry changed during the import, nothing kept; planned",
    }[report.outcome]
    typer.echo(
        f"{file}: {verb}: {report.created} created, {report.updated} updated, {report.unchanged} unchanged "
        f"({report.rows} {report.entity}, {report.format}, mode {report.mode})"
    )


@app.command("export")
def export_command(
    entity: EntityOption = EntityName.DEVICES,
    fmt: FormatOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here [default: standard output].", dir_okay=False)
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="Only public records, without private fields (open data).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Export every device, gateway or device model (CSV cells that a spreadsheet would run as a
    formula are escaped with ')."""
    kind = ENTITIES[entity.value]
    chosen = _format(fmt, output, kind)
    url = _url(config)
    try:
        text = asyncio.run(_export(kind, url, chosen, public))
    except CloudError as exc:
        typer.echo(f"misto-cloud: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8", newline="")
        typer.echo(f"{output}: written ({chosen})")


async def _export(entity: BulkEntity, url: str, fmt: BulkFormat, public: bool) -> str:
    registry = await SqlRegistry.open(url)
    try:
        return await export_records(entity, registry, fmt, public=public)
    finally:
        await registry.close()
