"""Misto gateway agent: reads devices, batches readings into telemetry, stores and forwards them over MQTT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("misto-edge")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["__version__"]
