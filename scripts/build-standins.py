#!/usr/bin/env python3
"""Build the test stand-ins of the official images and save them in one archive for the targets.

No registry can be reached here, so each directory molecule/standins/<name>/ holds a Dockerfile that
rebuilds what an official image does from Debian's packages (or from a binary built here). Its first
line names the role variable that pins the official image (`# stand-in for: postgres_image`): the
stand-in is tagged with that very reference, so the production Compose fragments run unchanged.

An image is rebuilt only when its directory's content changed (a hash label), and the archive that the
docker role loads into a target (docker_image_archives) only when an image changed.
Usage: scripts/build-standins.py [OUTPUT_TAR]   (default .cache/standins/standins.tar)
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STANDINS = ROOT / "molecule" / "standins"
DEFAULT_ARCHIVE = ROOT / ".cache" / "standins" / "standins.tar"
HEADER = re.compile(r"#\s*stand-in for:\s*(?P<variable>[a-z0-9_]+)\s*$")
LABEL = "org.bloomberg.standin-recipe"


def pinned_reference(variable: str) -> str:
    for defaults in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        values = yaml.safe_load(defaults.read_text()) or {}
        if variable in values:
            return str(values[variable])
    raise SystemExit(f"build-standins: no role defines {variable} in roles/*/defaults/main.yml")


def recipe_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def docker(*args: str, capture: bool = False) -> str:
    # Progress goes to stderr: stdout carries only the archive's path, for the scripts that call this.
    done = subprocess.run(
        ["docker", *args], check=True, text=True, stdout=subprocess.PIPE if capture else sys.stderr
    )
    return done.stdout if capture else ""


def current_recipe(reference: str) -> str | None:
    done = subprocess.run(
        ["docker", "image", "inspect", "-f", f'{{{{ index .Config.Labels "{LABEL}" }}}}', reference],
        text=True,
        capture_output=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def build(directory: Path) -> tuple[str, bool]:
    first_line = (directory / "Dockerfile").read_text().splitlines()[0]
    header = HEADER.match(first_line)
    if not header:
        raise SystemExit(
            f"build-standins: {directory}/Dockerfile must start with '# stand-in for: <role_var>'"
        )
    reference = pinned_reference(header["variable"])
    context_script = directory / "prepare-context.sh"
    if context_script.exists():
        subprocess.run(["bash", str(context_script)], check=True, stdout=sys.stderr)
    recipe = recipe_hash(directory)
    if current_recipe(reference) == recipe:
        print(f"build-standins: {reference} is up to date ({directory.name})", file=sys.stderr)
        return reference, False
    print(f"build-standins: building {reference} from {directory.relative_to(ROOT)}", file=sys.stderr)
    docker("build", "--pull=false", "--label", f"{LABEL}={recipe}", "-t", reference, str(directory))
    return reference, True


def main() -> None:
    archive = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ARCHIVE
    archive.parent.mkdir(parents=True, exist_ok=True)
    # Molecule scenarios run side by side and each prepare calls this: one builds, the others wait and
    # find everything current (two `docker save` into one file would corrupt it).
    with archive.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build_all(archive)
    print(archive)


def build_all(archive: Path) -> None:
    built = [build(d) for d in sorted(STANDINS.iterdir()) if (d / "Dockerfile").exists()]
    if not built:
        raise SystemExit(f"build-standins: no stand-in under {STANDINS}")
    references = [reference for reference, _ in built]
    stamp = archive.with_suffix(".refs")
    wanted = "\n".join([*references, docker("image", "inspect", "-f", "{{.Id}}", *references, capture=True)])
    if archive.exists() and stamp.exists() and stamp.read_text() == wanted:
        print(f"build-standins: {archive} is up to date", file=sys.stderr)
    else:
        partial = archive.with_suffix(".partial")
        docker("save", "-o", str(partial), *references)
        partial.replace(archive)
        stamp.write_text(wanted)


if __name__ == "__main__":
    main()
