"""Write the JSON Schema files and refresh the schema block of docs/protocol.md:
``python -m misto.protocol.schema [--docs PATH]``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from misto.protocol.schema import MESSAGES, render

_BLOCK = re.compile(r"(<!-- telemetry-schema -->\n```json\n)(.*?)(```)", re.DOTALL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m misto.protocol.schema")
    parser.add_argument("--docs", type=Path, help="markdown file whose telemetry-schema block to refresh")
    args = parser.parse_args(argv)
    target = Path(__file__).parent
    for name in MESSAGES:
        path = target / f"{name}-v1.schema.json"
        path.write_text(render(name), encoding="utf-8")
        print(path)
    if args.docs:
        text = args.docs.read_text(encoding="utf-8")
        new, count = _BLOCK.subn(lambda m: m.group(1) + render("telemetry") + m.group(3), text)
        if count != 1:
            parser.error(f"{args.docs}: expected one telemetry-schema block followed by ```json, found {count}")
        args.docs.write_text(new, encoding="utf-8")
        print(args.docs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
