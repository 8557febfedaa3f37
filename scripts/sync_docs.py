"""Keep the files that docs quote in step with the docs.

A block in a Markdown file under docs/ of the form

    <!-- include: path/from/repo/root -->
    ```lang
    ...
    ```

holds that file's text verbatim. ``python scripts/sync_docs.py`` rewrites every such block;
``--check`` only reports stale blocks and exits 1 (the test suite runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- include: (?P<path>\S+) -->\n```[\w-]*\n)(?P<body>.*?)(```)", re.DOTALL)


def refreshed(text: str) -> str:
    def body(match: re.Match[str]) -> str:
        included = (ROOT / match["path"]).read_text(encoding="utf-8")
        if not included.endswith("\n"):
            included += "\n"
        return match.group(1) + included + match.group(4)

    return BLOCK.sub(body, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report stale blocks, change nothing")
    args = parser.parse_args(argv)
    stale = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text(encoding="utf-8")
        new = refreshed(text)
        if new != text:
            stale.append(doc.relative_to(ROOT))
            if not args.check:
                doc.write_text(new, encoding="utf-8")
    for path in stale:
        print(f"{path}: {'stale include block(s); run `make docs`' if args.check else 'refreshed'}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
