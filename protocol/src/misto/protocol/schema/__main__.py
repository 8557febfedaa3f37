"""Write the JSON Schema files: ``python -m misto.protocol.schema [DIR]``."""

from __future__ import annotations

import sys
from pathlib import Path

from misto.protocol.schema import MESSAGES, render


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else Path(__file__).parent
    for name in MESSAGES:
        path = target / f"{name}-v1.schema.json"
        path.write_text(render(name), encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
