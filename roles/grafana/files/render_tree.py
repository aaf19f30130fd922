#!/usr/bin/env python3
"""Lay out Grafana's files on the control node as the target will hold them, and say what that is.

Reads JSON on stdin: {"files": {"config/<path>": content},
                      "dashboards": {"dashboards/<look>/<file>": source path}}.
Writes each file under ROOT (dashboards as links to their source: the validator reads them through the
links, nothing is copied), then prints the manifest of the tree the target must hold, in the form of the
role's remote listing (`find -printf '%y %m %u:%g %p'`, then `sha256sum` of every file, each sorted):
two equal manifests mean nothing on the target differs, not even a mode or an extra file.

Usage: render_tree.py ROOT < spec.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

TOP = ("config", "dashboards")


def main() -> None:
    root = Path(sys.argv[1])
    spec = json.load(sys.stdin)
    contents: dict[str, bytes] = {}
    for relative, text in spec["files"].items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        contents[relative] = text.encode()
    for relative, source in spec["dashboards"].items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(source)
        contents[relative] = Path(source).read_bytes()
    directories = {str(parent) for name in contents for parent in Path(name).parents if str(parent) != "."}
    entries = [f"d 755 root:root {name}" for name in directories | set(TOP)]
    entries += [f"f 644 root:root {name}" for name in contents]
    sums = [f"{hashlib.sha256(contents[name]).hexdigest()}  {name}" for name in sorted(contents)]
    print("\n".join(sorted(entries) + sums))


if __name__ == "__main__":
    main()
