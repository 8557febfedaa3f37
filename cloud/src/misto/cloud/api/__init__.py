"""The HTTP API and the public page."""

from misto.cloud.api.app import create_app

__all__ = ["create_app"]
