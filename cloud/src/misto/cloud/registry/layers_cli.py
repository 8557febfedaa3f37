"""``misto-cloud layers``: import a GeoJSON file into a layer of the registry (with a dry run),
export a layer, and load the synthetic Kherson sample base. See docs/geospatial.md.

Exit codes as ``misto-cloud``: 0 done, 1 a failure at run time (the database), 2 invalid input
(every problem of the file is listed on stderr with its path) or configuration."""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from misto.cloud.errors import CloudError, ConfigError
from misto.cloud.geo.errors import GeoJSONError
from misto.cloud.geo.layers import Layer
from misto.cloud.geo.sample import load_sample_base
from misto.cloud.registry.errors import InvalidFieldError, RegistryError
from misto.cloud.registry.layers import MAX_LIMIT, ImportMode, ImportResult, SqlLayers
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.settings import CloudSettings, load_settings

EXIT_FAILURE = 1
EXIT_INVALID = 2
SAMPLE_SOURCE = "misto kherson sample (synthetic)"

app = typer.Typer(
    name="layers",
    help="Geospatial layers in the registry: import GeoJSON (with a dry run), export, load the sample base.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show formats like EPSG:<code> literally
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML settings file; the registry is registry.url.", dir_okay=False),
]
LayerOption = Annotated[Layer, typer.Option("--layer", "-l", help="The layer to import into.")]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (containers)
        return "cli"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"misto-cloud layers: {message}", err=True)
    return typer.Exit(code)


def _url(config: Path | None) -> str:
    try:
        settings: CloudSettings = load_settings(config)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_INVALID) from None
    return settings.registry.database_url(settings.store)


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except GeoJSONError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise _fail(f"{len(exc.problems)} problem(s) in layer {exc.layer!r}: nothing imported", EXIT_INVALID) from None
    except InvalidFieldError as exc:
        raise _fail(str(exc), EXIT_INVALID) from None
    except (RegistryError, CloudError) as exc:
        raise _fail(str(exc), EXIT_FAILURE) from None


def _summary(result: ImportResult) -> str:
    if result.dry_run:
        return f"{result.layer}: dry run: {result.valid_features} feature(s) valid, nothing written"
    return (
        f"{result.layer}: {result.written} feature(s) written ({result.mode}), {result.removed} removed, "
        f"{result.feature_count} in the layer"
    )


@app.command("import")
def import_file(  # noqa: PLR0917 - typer passes options by keyword
    file: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection to import.", dir_okay=False, exists=True)],
    layer: LayerOption,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file and list every problem; write nothing.")
    ] = False,
    crs: Annotated[
        str | None, typer.Option("--crs", help="The file's CRS when it declares none: EPSG:<code> (e.g. EPSG:32636).")
    ] = None,
    mode: Annotated[
        ImportMode, typer.Option("--mode", help="replace: the layer becomes the file; upsert: add or replace by id.")
    ] = ImportMode.REPLACE,
    config: ConfigOption = None,
) -> None:
    """Import FILE into a layer, all or nothing: any problem (listed with its path) imports nothing."""
    url = _url(config)
    data = file.read_bytes()

    async def run() -> ImportResult:
        async with await SqlRegistry.open(url) as registry:
            return await SqlLayers(registry).import_geojson(
                data, layer, actor=_actor(), mode=mode, source_crs=crs, source=file.name[:500], dry_run=dry_run
            )

    result: ImportResult = _run(run())
    for problem in result.problems:
        typer.echo(str(problem), err=True)
    if result.problems:
        raise _fail(f"{len(result.problems)} problem(s) in {file}", EXIT_INVALID)
    typer.echo(_summary(result))


@app.command()
def export(
    layer: Annotated[Layer, typer.Argument(help="The layer to export.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write [default: stdout].", dir_okay=False)
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write a layer as a GeoJSON FeatureCollection (WGS 84), every feature, ordered by id."""
    url = _url(config)

    async def run() -> dict[str, Any]:
        features: list[dict[str, Any]] = []
        async with await SqlRegistry.open(url) as registry:
            layers = SqlLayers(registry)
            after = None
            while True:
                page = await layers.get_layer(layer, after=after, limit=MAX_LIMIT)
                features += [f.to_geojson() for f in page.features]
                if page.next_after is None:
                    return {"type": "FeatureCollection", "name": layer.value, "features": features}
                after = page.next_after

    text = json.dumps(_run(run()), ensure_ascii=False, indent=1) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{output}: layer {layer.value}", err=True)


@app.command("load-sample")
def load_sample(config: ConfigOption = None) -> None:
    """Load the synthetic Kherson sample base (every layer it has, replacing them) into the registry."""
    url = _url(config)

    async def run() -> list[ImportResult]:
        async with await SqlRegistry.open(url) as registry:
            layers = SqlLayers(registry)
            return [
                await layers.import_layer(data, actor=_actor(), source=SAMPLE_SOURCE)
                for data in load_sample_base().values()
            ]

    results: list[ImportResult] = _run(run())
    for result in results:
        typer.echo(_summary(result))
    typer.echo(f"loaded the Kherson sample base (synthetic): {sum(r.written for r in results)} features")
