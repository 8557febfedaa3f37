"""The counting camera driver. This package is the only place in ``misto.edge`` that imports
numpy (installed with ``pip install 'misto-edge[camera]'``); it is imported only when a device
uses ``driver: camera``."""

try:
    import numpy  # noqa: F401 - fail early, with the fix in the message
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("the camera driver needs numpy: pip install 'misto-edge[camera]'") from exc
