"""Write the JSON Schema files shipped in this package: ``python -m misto.protocol.schema``."""

from __future__ import annotations

from pathlib import Path

from misto.protocol.schema import MESSAGES, render


def main() -> int:
    target = Path(__file__).parent
    for name in MESSAGES:
        path = target / f"{name}-v1.schema.json"
        path.write_text(render(name), encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
