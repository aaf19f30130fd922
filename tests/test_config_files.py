"""The config_files module (roles/common), run for real by ansible-playbook against a scratch directory.

It must write what differs and nothing else, keep a file whose new text fails validation untouched,
change nothing in check mode, and say every changed path; in another package's file, only the lines it is
given.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import sys
from pathlib import Path

import yaml
from playbook_run import ROOT, ansible_playbook


def converge(tmp_path: Path, directories: list, files: list, *options: str, **more: list) -> dict:
    """One config_files task on this machine (more: its other lists, attributes and edits); the task's
    result (its JSON as the playbook recorded it). The playbook's output is kept in tmp_path/output.txt."""
    result_file = tmp_path / "result.json"
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "roles": [{"role": "common"}],
                    "tasks": [
                        {
                            "name": "The files",
                            "config_files": {"directories": directories, "files": files, **more},
                            "register": "outcome",
                            "ignore_errors": True,
                        },
                        {
                            "name": "Keep the result",
                            "ansible.builtin.copy": {
                                "content": "{{ outcome | to_json }}",
                                "dest": str(result_file),
                                "mode": "0600",
                            },
                            "check_mode": False,
                        },
                    ],
                }
            ]
        )
    )
    run = ansible_playbook(
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        str(playbook),
        *options,
        env={"ANSIBLE_ROLES_PATH": str(ROOT / "roles")},
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (tmp_path / "output.txt").write_text(run.stdout + run.stderr)
    return json.loads(result_file.read_text())


def owner_and_group() -> dict:
    return {"owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name}


def mode_of(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_writes_missing_directories_and_files_then_reports_nothing_on_a_second_run(tmp_path: Path) -> None:
    home = tmp_path / "etc" / "app"
    directories = [{"path": str(home / "conf.d"), "mode": "0750", **owner_and_group()}]
    files = [
        {"path": str(home / "conf.d" / "a.conf"), "content": "a = 1\n", "mode": "0640", **owner_and_group()},
        {"path": str(home / "conf.d" / "b.conf"), "content": "b = 2\n", "mode": "0600", **owner_and_group()},
    ]

    first = converge(tmp_path, directories, files)
    second = converge(tmp_path, directories, files)

    assert first["changed"] is True
    assert first["changed_paths"] == [str(home / "conf.d"), *(f["path"] for f in files)]
    assert (home / "conf.d" / "a.conf").read_text() == "a = 1\n"
    assert mode_of(home / "conf.d") == "0o750"
    assert mode_of(home / "conf.d" / "b.conf") == "0o600"
    assert second["changed"] is False
    assert second["changed_paths"] == []


def test_corrects_only_the_file_that_differs_in_text_or_mode(tmp_path: Path) -> None:
    files = [
        {"path": str(tmp_path / name), "content": f"{name}\n", "mode": "0644", **owner_and_group()}
        for name in ("same", "edited", "loosened")
    ]
    converge(tmp_path, [], files)
    (tmp_path / "edited").write_text("edited by hand\n")
    (tmp_path / "loosened").chmod(0o666)

    again = converge(tmp_path, [], files)

    assert again["changed_paths"] == [str(tmp_path / "edited"), str(tmp_path / "loosened")]
    assert (tmp_path / "edited").read_text() == "edited\n"
    assert mode_of(tmp_path / "loosened") == "0o644"


def test_a_file_failing_validation_is_left_as_it_was_and_the_error_names_it(tmp_path: Path) -> None:
    target = tmp_path / "service.json"
    target.write_text('{"good": true}\n')
    files = [
        {
            "path": str(target),
            "content": "{not json\n",
            "mode": "0644",
            "validate": f"{sys.executable} -m json.tool %s",
            **owner_and_group(),
        }
    ]

    outcome = converge(tmp_path, [], files)

    assert outcome["failed"] is True
    assert str(target) in outcome["msg"]
    assert "validation failed" in outcome["msg"]
    assert target.read_text() == '{"good": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".service.json")) == []


def test_check_mode_reports_the_change_and_its_diff_without_writing(tmp_path: Path) -> None:
    target = tmp_path / "app.conf"
    target.write_text("old\n")
    files = [{"path": str(target), "content": "new\n", "mode": "0644", **owner_and_group()}]
    directories = [{"path": str(tmp_path / "missing"), "mode": "0755", **owner_and_group()}]

    outcome = converge(tmp_path, directories, files, "--check", "--diff")

    assert outcome["changed_paths"] == [str(tmp_path / "missing"), str(target)]
    assert outcome["diff"] == [
        {"before_header": str(target), "after_header": str(target), "before": "old\n", "after": "new\n"}
    ]
    assert target.read_text() == "old\n"
    assert not (tmp_path / "missing").exists()


def test_a_file_where_a_directory_is_wanted_is_refused(tmp_path: Path) -> None:
    (tmp_path / "conf.d").write_text("")

    wanted = [{"path": str(tmp_path / "conf.d"), "mode": "0755", **owner_and_group()}]

    outcome = converge(tmp_path, wanted, [])

    assert outcome["failed"] is True
    assert "is not a directory" in outcome["msg"]


def test_the_contents_are_not_echoed_back_since_they_may_carry_a_token(tmp_path: Path) -> None:
    files = [
        {
            "path": str(tmp_path / "alertmanager.yml"),
            "content": "url: https://hooks.example/T0KEN-1234\n",
            "mode": "0600",
            **owner_and_group(),
        }
    ]

    outcome = converge(tmp_path, [], files, "-vvv")

    assert outcome["changed_paths"] == [files[0]["path"]]
    assert "T0KEN-1234" not in json.dumps(outcome)
    assert "T0KEN-1234" not in (tmp_path / "output.txt").read_text()


def test_a_link_in_place_of_a_file_is_replaced_and_a_link_to_a_directory_stands_for_it(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    (tmp_path / "conf.d").symlink_to(elsewhere)
    # The same text as wanted, another mode: only replacing the link gives the file its own attributes.
    (elsewhere / "shared.conf").write_text("own\n")
    (elsewhere / "shared.conf").chmod(0o600)
    (tmp_path / "app.conf").symlink_to(elsewhere / "shared.conf")
    directories = [{"path": str(tmp_path / "conf.d"), "mode": "0700", **owner_and_group()}]
    files = [{"path": str(tmp_path / "app.conf"), "content": "own\n", "mode": "0644", **owner_and_group()}]

    first = converge(tmp_path, directories, files)
    second = converge(tmp_path, directories, files, "--check")

    assert first["changed_paths"] == [str(tmp_path / "conf.d"), str(tmp_path / "app.conf")]
    assert mode_of(elsewhere) == "0o700"
    assert not (tmp_path / "app.conf").is_symlink()
    assert mode_of(tmp_path / "app.conf") == "0o644"
    assert mode_of(elsewhere / "shared.conf") == "0o600"
    assert second["changed"] is False


def test_a_failure_part_way_still_reports_what_was_written_before_it(tmp_path: Path) -> None:
    files = [
        {"path": str(tmp_path / "first.conf"), "content": "1\n", "mode": "0644", **owner_and_group()},
        {"path": str(tmp_path / "second.conf"), "content": "2\n", "mode": "0644", "validate": "false %s"},
    ]

    outcome = converge(tmp_path, [], files)

    assert outcome["failed"] is True
    assert outcome["changed"] is True
    assert outcome["changed_paths"] == [str(tmp_path / "first.conf")]
    assert not (tmp_path / "second.conf").exists()


def test_a_malformed_entry_is_named_without_echoing_any_contents(tmp_path: Path) -> None:
    files = [
        {"path": str(tmp_path / "a.conf"), "content": "T0KEN-1234\n", "mode": "0600", **owner_and_group()},
        {"path": str(tmp_path / "b.conf"), "content": "T0KEN-5678\n", "mode": "0600", "ownr": "root"},
    ]

    outcome = converge(tmp_path, [], files, "-vvv")

    assert outcome["failed"] is True
    assert "files entry 2" in outcome["msg"]
    assert "ownr" in outcome["msg"]
    assert "T0KEN" not in (tmp_path / "output.txt").read_text()
    assert not (tmp_path / "a.conf").exists()


def test_an_unquoted_octal_mode_means_what_it_says(tmp_path: Path) -> None:
    files = [{"path": str(tmp_path / "a.conf"), "content": "a\n", "mode": 0o640, **owner_and_group()}]

    converge(tmp_path, [], files)

    assert mode_of(tmp_path / "a.conf") == "0o640"


def test_attributes_are_corrected_on_paths_that_exist_and_absent_ones_stay_absent(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# m h dom mon dow user command\n")
    (tmp_path / "crontab").chmod(0o644)
    (tmp_path / "home").mkdir(mode=0o755)
    wanted = [
        {"path": str(tmp_path / "crontab"), "mode": "0600"},
        {"path": str(tmp_path / "home"), "mode": "0750"},
        {"path": str(tmp_path / "absent"), "mode": "0700"},
    ]

    first = converge(tmp_path, [], [], attributes=wanted)
    second = converge(tmp_path, [], [], attributes=wanted)

    assert first["changed_paths"] == [str(tmp_path / "crontab"), str(tmp_path / "home")]
    assert first["changed_files"] == []
    assert mode_of(tmp_path / "crontab") == "0o600"
    assert mode_of(tmp_path / "home") == "0o750"
    assert not (tmp_path / "absent").exists()
    assert second["changed"] is False


LOGIN_DEFS = """# the distribution's comments stay
#PASS_MAX_DAYS 99999
PASS_MAX_DAYS\t99999
UMASK\t\t022
ENCRYPT_METHOD SHA512
"""


def test_edits_set_only_the_given_lines_and_keep_the_rest_of_the_file_and_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "login.defs"
    target.write_text(LOGIN_DEFS)
    target.chmod(0o640)
    edits = [
        {
            "path": str(target),
            "lines": [
                {"regexp": r"^#?\s*PASS_MAX_DAYS\s", "line": "PASS_MAX_DAYS\t90"},
                {"regexp": r"^#?\s*UMASK\s", "line": "UMASK\t\t027"},
                {"regexp": r"^#?\s*SHA_CRYPT_MIN_ROUNDS\s", "line": "SHA_CRYPT_MIN_ROUNDS\t640000"},
                {"line": "# managed in part by Ansible", "first": True},
            ],
        }
    ]

    first = converge(tmp_path, [], [], edits=edits)
    second = converge(tmp_path, [], [], edits=edits)

    assert first["changed_files"] == [str(target)]
    assert target.read_text() == (
        "# managed in part by Ansible\n"
        "# the distribution's comments stay\n"
        "#PASS_MAX_DAYS 99999\n"
        "PASS_MAX_DAYS\t90\n"
        "UMASK\t\t027\n"
        "ENCRYPT_METHOD SHA512\n"
        "SHA_CRYPT_MIN_ROUNDS\t640000\n"
    )
    assert mode_of(target) == "0o640"
    assert second["changed"] is False


def test_an_edit_failing_validation_or_of_a_missing_file_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "sshd_config"
    target.write_text("Port 22\n")
    rejected = [
        {"path": str(target), "lines": [{"line": "Include x", "first": True}], "validate": "false %s"}
    ]
    optional = [{"path": str(tmp_path / "50-cloud-init.conf"), "lines": [{"line": "a"}], "missing": "skip"}]
    required = [{"path": str(tmp_path / "login.defs"), "lines": [{"line": "a"}]}]

    refused = converge(tmp_path, [], [], edits=rejected)
    skipped = converge(tmp_path, [], [], edits=optional)
    missing = converge(tmp_path, [], [], edits=required)

    assert refused["failed"] is True
    assert "validation failed" in refused["msg"]
    assert target.read_text() == "Port 22\n"
    assert skipped["changed"] is False
    assert not (tmp_path / "50-cloud-init.conf").exists()
    assert missing["failed"] is True
    assert "login.defs does not exist" in missing["msg"]


def test_check_mode_shows_an_edit_without_making_it(tmp_path: Path) -> None:
    target = tmp_path / "sysstat"
    target.write_text('ENABLED="false"\n')
    edits = [{"path": str(target), "lines": [{"regexp": "^ENABLED=", "line": 'ENABLED="true"'}]}]

    outcome = converge(tmp_path, [], [], "--check", "--diff", edits=edits)

    assert outcome["diff"] == [
        {
            "before_header": str(target),
            "after_header": str(target),
            "before": 'ENABLED="false"\n',
            "after": 'ENABLED="true"\n',
        }
    ]
    assert target.read_text() == 'ENABLED="false"\n'


def test_a_drop_in_for_a_package_the_host_lacks_is_left_out_when_asked(tmp_path: Path) -> None:
    files = [
        {
            "path": str(tmp_path / "cloud.cfg.d" / "99-ssh.cfg"),
            "content": "ssh_pwauth: false\n",
            "mode": "0644",
            "only_if_directory_exists": True,
            **owner_and_group(),
        }
    ]

    absent = converge(tmp_path, [], files)
    (tmp_path / "cloud.cfg.d").mkdir()
    present = converge(tmp_path, [], files)

    assert absent["changed"] is False
    assert absent["left_out"] == [files[0]["path"]]
    assert present["changed_files"] == [files[0]["path"]]
    assert present["left_out"] == []
    assert (tmp_path / "cloud.cfg.d" / "99-ssh.cfg").read_text() == "ssh_pwauth: false\n"


def test_unwanted_files_and_links_are_removed_and_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "default").write_text("server {}\n")
    (tmp_path / "enabled").symlink_to(tmp_path / "default")
    (tmp_path / "conf.d").mkdir()

    first = converge(tmp_path, [], [], absent=[str(tmp_path / "enabled"), str(tmp_path / "default")])
    second = converge(tmp_path, [], [], absent=[str(tmp_path / "enabled"), str(tmp_path / "default")])
    refused = converge(tmp_path, [], [], absent=[str(tmp_path / "conf.d")])

    assert first["changed_files"] == [str(tmp_path / "enabled"), str(tmp_path / "default")]
    assert not (tmp_path / "default").exists()
    assert not (tmp_path / "enabled").is_symlink()
    assert second["changed"] is False
    assert refused["failed"] is True
    assert (tmp_path / "conf.d").is_dir()


def test_a_drop_in_whose_directory_the_same_task_makes_is_written(tmp_path: Path) -> None:
    directories = [{"path": str(tmp_path / "jail.d"), "mode": "0755", **owner_and_group()}]
    files = [
        {
            "path": str(tmp_path / "jail.d" / "nginx.local"),
            "content": "[nginx-limit-req]\n",
            "mode": "0644",
            "only_if_directory_exists": True,
            **owner_and_group(),
        }
    ]

    checked = converge(tmp_path, directories, files, "--check")
    written = converge(tmp_path, directories, files)

    assert checked["changed_paths"] == [directories[0]["path"], files[0]["path"]]
    assert written["left_out"] == []
    assert (tmp_path / "jail.d" / "nginx.local").read_text() == "[nginx-limit-req]\n"
