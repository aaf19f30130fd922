#!/usr/bin/python
"""Put a concern's directories and text files in place in one module run: write only what differs."""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

DOCUMENTATION = r"""
module: config_files
short_description: A concern's directories and text files, checked and corrected in one module run
description:
  - The builtin template or copy task costs four round trips to the host even when nothing changed
    (a temporary directory, a stat, a file module run for the attributes, the clean-up); a directory
    one more. This module takes every directory and file of a concern at once, rendered on the controller
    (C(content: "{{ lookup('ansible.builtin.template', 'x.j2') }}")), and compares them on the host in one
    run.
  - Directories are made first (with their parents), then their mode, owner and group corrected.
  - A file whose bytes differ is written to a temporary file beside it, its I(validate) command run on
    that file (the file in place is left untouched when it fails: the error names the file and gives the
    command's output), then moved over the old one atomically, its mode, owner and group already set.
  - Check mode reports what would change; diff mode shows each changed file's old and new text.
options:
  directories:
    description: List of {path, mode, owner (root), group (root)}.
    type: list
    elements: dict
    default: []
  files:
    description:
      - List of {path, content, mode, owner (root), group (root), validate (a command with %s)}.
      - A symbolic link at I(path) is replaced by the file, as the copy module does.
    type: list
    elements: dict
    default: []
notes:
  - A task's C(notify) fires when any of its paths changed, a directory's mode included; a restart that
    should follow only a file reads I(changed_files).
"""

RETURN = r"""
changed_paths:
  description: The directories and files written or whose attributes were corrected, in the given order.
  type: list
changed_files:
  description: The files among them.
  type: list
"""

DIRECTORY_SPEC = {
    "path": {"type": "path", "required": True},
    # As the file module takes it: "0644", or an octal YAML integer.
    "mode": {"type": "raw", "required": True},
    "owner": {"type": "str", "default": "root"},
    "group": {"type": "str", "default": "root"},
}
FILE_SPEC = {
    **DIRECTORY_SPEC,
    "content": {"type": "str", "required": True},
    "validate": {"type": "str"},
}


class PathRefusedError(Exception):
    """A path this run cannot put in place; what was done before it is still reported."""

    def __init__(self, msg: str, **details: str) -> None:
        super().__init__(msg)
        self.details = details


def attributes(module: AnsibleModule, entry: dict) -> dict:
    return module.load_file_common_arguments(
        {"path": entry["path"], "mode": entry["mode"], "owner": entry["owner"], "group": entry["group"]}
    )


def directory_in_place(module: AnsibleModule, entry: dict) -> bool:
    # A link to a directory stands for it, as with the file module: its target gets the attributes.
    path = os.path.realpath(entry["path"])
    if os.path.lexists(path) and not os.path.isdir(path):
        raise PathRefusedError(f"{entry['path']} exists and is not a directory; move it away or remove it")
    entry = {**entry, "path": path}
    created = not os.path.isdir(path)
    if created and not module.check_mode:
        os.makedirs(path)
    if created and module.check_mode:
        return True
    return module.set_fs_attributes_if_different(attributes(module, entry), created)


def current_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def staged_copy(module: AnsibleModule, entry: dict, data: bytes) -> str:
    """The new content beside the destination with its final attributes (never readable by more than its
    mode allows, even for an instant), checked by the entry's validate command."""
    path = entry["path"]
    fd, staged = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        module.set_fs_attributes_if_different(attributes(module, {**entry, "path": staged}), True)
        validate = entry["validate"]
        if validate:
            if "%s" not in validate:
                raise PathRefusedError(f"{path}: validate must contain %s (the file to check): {validate}")
            rc, out, err = module.run_command(validate % staged)
            if rc != 0:
                raise PathRefusedError(
                    f"{path} not written: its validation failed ({validate}, exit {rc})",
                    stdout=out,
                    stderr=err,
                )
    except BaseException:
        os.unlink(staged)
        raise
    return staged


def file_in_place(module: AnsibleModule, entry: dict, diffs: list[dict]) -> bool:
    path = entry["path"]
    if os.path.isdir(path) and not os.path.islink(path):
        raise PathRefusedError(f"{path} is a directory; a file is expected there")
    # Any text a lookup can return, byte for byte (undecodable bytes come back as lone surrogates).
    data = entry["content"].encode(errors="surrogateescape")
    before = None if os.path.islink(path) else current_bytes(path)
    rewrite = before != data
    if rewrite and module._diff:
        diffs.append(
            {
                "before_header": path,
                "after_header": path,
                "before": "" if before is None else before.decode(errors="replace"),
                "after": entry["content"],
            }
        )
    if rewrite:
        if module.check_mode:
            return True
        if not os.path.isdir(os.path.dirname(path)):
            raise PathRefusedError(f"{path}: its directory does not exist; list it under directories")
        # Same directory, so the rename is atomic: a reader sees the old file or the new one, never half.
        os.replace(staged_copy(module, entry, data), path)
    return module.set_fs_attributes_if_different(attributes(module, entry), rewrite)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "directories": {"type": "list", "elements": "dict", "default": [], "options": DIRECTORY_SPEC},
            # Its entries are checked below, once their contents are out of the module's parameters: an
            # error found by AnsibleModule itself would echo every file's contents in its result.
            "files": {"type": "list", "elements": "dict", "default": []},
        },
        supports_check_mode=True,
        # The contents may carry a token (a webhook URL): they stay out of the host's journal, where a
        # module's arguments are otherwise logged, and out of the result unless a diff is asked for.
        no_log=True,
    )
    given = module.params["files"]
    module.params["files"] = [
        {key: value for key, value in entry.items() if key != "content"} for entry in given
    ]
    files = []
    for number, entry in enumerate(given, start=1):
        checked = ArgumentSpecValidator(FILE_SPEC).validate(entry)
        if checked.error_messages:
            module.fail_json(msg=f"files entry {number}: {'; '.join(checked.error_messages)}")
        files.append(checked.validated_parameters)
    changed_paths: list[str] = []
    changed_files: list[str] = []
    diffs: list[dict] = []
    try:
        for entry in module.params["directories"]:
            if directory_in_place(module, entry):
                changed_paths.append(entry["path"])
        for entry in files:
            if file_in_place(module, entry, diffs):
                changed_paths.append(entry["path"])
                changed_files.append(entry["path"])
    except PathRefusedError as refused:
        module.fail_json(
            msg=str(refused),
            changed=bool(changed_paths),
            changed_paths=changed_paths,
            changed_files=changed_files,
            **refused.details,
        )
    module.exit_json(
        changed=bool(changed_paths), changed_paths=changed_paths, changed_files=changed_files, diff=diffs
    )


if __name__ == "__main__":
    main()
