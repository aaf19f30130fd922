#!/usr/bin/python
"""Put a concern's directories, text files and the lines it owns in others' files in place in one module
run: write only what differs."""

from __future__ import annotations

import os
import re
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
  - The same run corrects the attributes of paths other packages made (I(attributes)), sets the lines
    the concern owns in files other packages own (I(edits)) and removes files it does not want
    (I(absent)), as several C(file) and C(lineinfile) tasks would, each file read and written once however
    many of its lines are set.
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
      - With I(only_if_directory_exists), a file whose directory is absent is left out (a drop-in for a
        package the host may not have; I(left_out) lists it); without it, that is an error.
    type: list
    elements: dict
    default: []
  attributes:
    description:
      - List of {path, mode, owner, group}; owner and group are left as they are when not given.
      - Paths another package or person made (the system crontab, a home directory) whose attributes are
        corrected when they exist; an absent path stays absent. A link stands for its target.
    type: list
    elements: dict
    default: []
  edits:
    description:
      - List of {path, lines, validate, missing (fail or skip)}, for a file another package owns (its
        conffile): only the given lines are set, the rest of the file and its attributes are kept.
      - Each of I(lines) is {line, regexp, first}, applied in order as the lineinfile module does: the
        last line matching I(regexp) becomes I(line); without a match the line is added unless it is
        there already, at the end or, with I(first), at the beginning.
      - The edited text is validated and moved in as a file of I(files) is. A missing file is an error,
        or, with I(missing=skip), left absent.
    type: list
    elements: dict
    default: []
  absent:
    description: Files or links the concern does not want (a package's default site); removed if present.
    type: list
    elements: path
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
  description: The files among them (written, edited or removed).
  type: list
left_out:
  description: The files of I(files) not written because their directory is absent.
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
    "only_if_directory_exists": {"type": "bool", "default": False},
}
# Owner and group are left as they are unless given.
ATTRIBUTES_SPEC = {**DIRECTORY_SPEC, "owner": {"type": "str"}, "group": {"type": "str"}}
LINE_SPEC = {
    "line": {"type": "str", "required": True},
    "regexp": {"type": "str"},
    "first": {"type": "bool", "default": False},
}
EDIT_SPEC = {
    "path": {"type": "path", "required": True},
    "lines": {"type": "list", "elements": "dict", "required": True, "options": LINE_SPEC},
    "validate": {"type": "str"},
    "missing": {"type": "str", "choices": ["fail", "skip"], "default": "fail"},
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
        validate = entry.get("validate")
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


def text_in_place(
    module: AnsibleModule, entry: dict, before: bytes | None, text: str, diffs: list[dict]
) -> bool:
    """Whether the file at entry's path must be (or was) rewritten with text; written as a staged,
    validated copy moved over it."""
    path = entry["path"]
    # Any text a lookup can return, byte for byte (undecodable bytes come back as lone surrogates).
    data = text.encode(errors="surrogateescape")
    if before == data:
        return False
    if module._diff:
        diffs.append(
            {
                "before_header": path,
                "after_header": path,
                "before": "" if before is None else before.decode(errors="replace"),
                "after": text,
            }
        )
    if not module.check_mode:
        # Same directory, so the rename is atomic: a reader sees the old file or the new one, never half.
        os.replace(staged_copy(module, entry, data), path)
    return True


def file_in_place(module: AnsibleModule, entry: dict, diffs: list[dict]) -> bool:
    path = entry["path"]
    if os.path.isdir(path) and not os.path.islink(path):
        raise PathRefusedError(f"{path} is a directory; a file is expected there")
    # In check mode the directory may be one this run would make first.
    if not os.path.isdir(os.path.dirname(path)) and not module.check_mode:
        raise PathRefusedError(f"{path}: its directory does not exist; list it under directories")
    before = None if os.path.islink(path) else current_bytes(path)
    rewrite = text_in_place(module, entry, before, entry["content"], diffs)
    if rewrite and module.check_mode:
        return True
    return module.set_fs_attributes_if_different(attributes(module, entry), rewrite)


def removed(module: AnsibleModule, path: str) -> bool:
    if os.path.isdir(path) and not os.path.islink(path):
        raise PathRefusedError(f"{path} is a directory; only files and links are removed")
    if not os.path.lexists(path):
        return False
    if not module.check_mode:
        os.unlink(path)
    return True


def attributes_in_place(module: AnsibleModule, entry: dict) -> bool:
    path = os.path.realpath(entry["path"])
    if not os.path.exists(path):
        return False
    wanted = {"path": path, "mode": entry["mode"], "owner": entry["owner"], "group": entry["group"]}
    return module.set_fs_attributes_if_different(module.load_file_common_arguments(wanted), False)


def with_lines(text: str, lines: list[dict]) -> str:
    """text with each wanted line set, in order: the last line matching its regexp replaced; else, unless
    the line is there already, the line added at the end (or at the beginning with `first`). Text whose
    lines are all set already comes back as it was, byte for byte."""
    rows = text.split("\n")
    # "a\nb\n" is the rows a and b; a last line without its newline gets one only if the text changes.
    if rows[-1] == "":
        rows.pop()
    edited = list(rows)
    for wanted in lines:
        pattern = re.compile(wanted["regexp"]) if wanted["regexp"] else None
        matching = [number for number, row in enumerate(edited) if pattern and pattern.search(row)]
        if matching:
            edited[matching[-1]] = wanted["line"]
        elif wanted["line"] not in edited:
            edited.insert(0 if wanted["first"] else len(edited), wanted["line"])
    return text if edited == rows else "".join(f"{row}\n" for row in edited)


def edit_in_place(module: AnsibleModule, entry: dict, diffs: list[dict]) -> bool:
    # A link stands for its target, as with lineinfile: the package's file is edited where it lies.
    path = os.path.realpath(entry["path"])
    before = current_bytes(path)
    if before is None:
        if entry["missing"] == "skip":
            return False
        raise PathRefusedError(
            f"{entry['path']} does not exist; its package is not installed (lines to set in it)"
        )
    try:
        text = with_lines(before.decode(errors="surrogateescape"), entry["lines"])
    except re.error as bad:
        raise PathRefusedError(f"{entry['path']}: a regexp of its lines does not compile: {bad}") from None
    # The file keeps the attributes it has: it is the package's.
    held = os.stat(path)
    kept = {"mode": f"{held.st_mode & 0o7777:04o}", "owner": str(held.st_uid), "group": str(held.st_gid)}
    return text_in_place(module, {**entry, **kept, "path": path}, before, text, diffs)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "directories": {"type": "list", "elements": "dict", "default": [], "options": DIRECTORY_SPEC},
            # Its entries are checked below, once their contents are out of the module's parameters: an
            # error found by AnsibleModule itself would echo every file's contents in its result.
            "files": {"type": "list", "elements": "dict", "default": []},
            "attributes": {"type": "list", "elements": "dict", "default": [], "options": ATTRIBUTES_SPEC},
            "edits": {"type": "list", "elements": "dict", "default": [], "options": EDIT_SPEC},
            "absent": {"type": "list", "elements": "path", "default": []},
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
    left_out: list[str] = []
    # In check mode, the directories this run would make count as made.
    planned = {os.path.realpath(entry["path"]) for entry in module.params["directories"]}
    try:
        for entry in module.params["directories"]:
            if directory_in_place(module, entry):
                changed_paths.append(entry["path"])
        for entry in files:
            directory = os.path.realpath(os.path.dirname(entry["path"]))
            if entry["only_if_directory_exists"] and not (
                os.path.isdir(directory) or (module.check_mode and directory in planned)
            ):
                # A drop-in for a package the host does not have.
                left_out.append(entry["path"])
            elif file_in_place(module, entry, diffs):
                changed_paths.append(entry["path"])
                changed_files.append(entry["path"])
        for entry in module.params["attributes"]:
            if attributes_in_place(module, entry):
                changed_paths.append(entry["path"])
        for entry in module.params["edits"]:
            if edit_in_place(module, entry, diffs):
                changed_paths.append(entry["path"])
                changed_files.append(entry["path"])
        for path in module.params["absent"]:
            if removed(module, path):
                changed_paths.append(path)
                changed_files.append(path)
    except PathRefusedError as refused:
        module.fail_json(
            msg=str(refused),
            changed=bool(changed_paths),
            changed_paths=changed_paths,
            changed_files=changed_files,
            **refused.details,
        )
    module.exit_json(
        changed=bool(changed_paths),
        changed_paths=changed_paths,
        changed_files=changed_files,
        left_out=left_out,
        diff=diffs,
    )


if __name__ == "__main__":
    main()
