"""Assemble the collectors image's build context on the control node: one reproducible tar, and its digest.

roles/collectors runs this with the controller's Python, then unpacks the tar on the target and builds
the image there with no package index at all. The tar holds collectors/ (Dockerfile, .dockerignore,
pyproject.toml, src/ without caches), the lock (requirements/constraints.txt), the entrypoint and a
wheelhouse: every pinned dependency as a wheel for the target's CPU and Python, downloaded once per lock
and kept in a cache. Entries are sorted, with fixed owner, mode and time, so the same inputs give the
same bytes: the digest names the image tag, and an unchanged context builds nothing.

Prints one JSON object: {"digest": sha256 of the tar, "tar": its path, "wheelhouse": the cache used}.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

# The glibc of bookworm is 2.36: any manylinux wheel up to that runs in the image.
GLIBC_MINORS = range(36, 4, -1)
LEGACY_MANYLINUX = ("manylinux2014", "manylinux2010", "manylinux1")
SKIPPED_PARTS = frozenset({"__pycache__", ".pytest_cache"})


def _platforms(arch: str) -> list[str]:
    return [f"manylinux_2_{minor}_{arch}" for minor in GLIBC_MINORS] + [
        f"{name}_{arch}" for name in LEGACY_MANYLINUX
    ]


def ensure_wheelhouse(args: argparse.Namespace) -> Path:
    """Download the lock's wheels for the image's platform, once per (lock, package, platform)."""
    key = hashlib.sha256()
    for part in (
        args.constraints.read_bytes(),
        (args.collectors / "pyproject.toml").read_bytes(),
        args.arch.encode(),
        args.python_version.encode(),
        " ".join(args.build_requirement).encode(),
    ):
        key.update(hashlib.sha256(part).digest())
    wheelhouse = args.cache / f"wheelhouse-{key.hexdigest()[:16]}"
    done = wheelhouse / ".complete"
    if done.exists():
        return wheelhouse
    target = [f"--platform={name}" for name in _platforms(args.arch)] + [
        f"--python-version={args.python_version}",
        "--implementation=cp",
        f"--abi=cp{args.python_version.replace('.', '')}",
        "--abi=abi3",
        "--abi=none",
        # Every dependency of the lock ships a wheel (pure Python or manylinux): no sdist is built
        # here, so nothing compiled on this machine ends up in the image.
        "--only-binary=:all:",
    ]
    common = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheelhouse), *target]
    # The arguments are this script's own, given by the role: no shell, no untrusted input.
    subprocess.run(  # noqa: S603
        [*common, "--constraint", str(args.constraints), str(args.collectors)],
        check=True,
        stdout=sys.stderr,
    )
    # marketdash's own build backend: the image builds the package from source, offline.
    subprocess.run([*common, *args.build_requirement], check=True, stdout=sys.stderr)  # noqa: S603
    done.touch()
    return wheelhouse


def _sources(collectors: Path) -> list[tuple[str, Path]]:
    members = [(name, collectors / name) for name in ("Dockerfile", ".dockerignore", "pyproject.toml")]
    for path in sorted((collectors / "src").rglob("*")):
        relative = path.relative_to(collectors)
        if path.is_dir() or SKIPPED_PARTS.intersection(relative.parts):
            continue
        if path.suffix == ".pyc" or any(part.endswith(".egg-info") for part in relative.parts):
            continue
        members.append((relative.as_posix(), path))
    return members


def build_tar(args: argparse.Namespace, wheelhouse: Path) -> bytes:
    members = _sources(args.collectors)
    members.append(("constraints.txt", args.constraints))
    members.append(("docker-entrypoint.sh", args.entrypoint))
    members += [(f"wheels/{path.name}", path) for path in sorted(wheelhouse.glob("*.whl"))]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in sorted(members):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--collectors", type=Path, required=True, help="the collectors/ directory")
    parser.add_argument("--constraints", type=Path, required=True, help="requirements/constraints.txt")
    parser.add_argument("--entrypoint", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True, help="where wheelhouses and the tar are kept")
    parser.add_argument("--arch", required=True, help="target CPU as in wheel tags: x86_64, aarch64")
    parser.add_argument("--python-version", required=True, help="the image's Python, e.g. 3.11")
    parser.add_argument(
        "--build-requirement", action="append", default=[], help="a pinned build backend (repeatable)"
    )
    args = parser.parse_args()
    # pip reads a bare relative directory name as a package name.
    for name in ("collectors", "constraints", "entrypoint", "cache"):
        setattr(args, name, getattr(args, name).resolve())
    args.cache.mkdir(parents=True, exist_ok=True)
    wheelhouse = ensure_wheelhouse(args)
    data = build_tar(args, wheelhouse)
    digest = hashlib.sha256(data).hexdigest()
    tar = args.cache / f"context-{args.arch}.tar"
    if not tar.exists() or tar.read_bytes() != data:
        partial = tar.with_suffix(".tar.partial")
        partial.write_bytes(data)
        partial.replace(tar)
    print(json.dumps({"digest": digest, "tar": str(tar), "wheelhouse": str(wheelhouse)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
