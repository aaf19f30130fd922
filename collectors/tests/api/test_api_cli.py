"""`python -m marketdash.api` as Ansible and operators run it, settings from the environment.

The first two tests run it as a subprocess (the real entry point, stdin and all); the others call its
main() in this process, which is the same code without two seconds of interpreter start per call.
"""

import io
import json
import os
import subprocess
import sys

import psycopg
import pytest

from marketdash.api.cli import main
from marketdash.api.migrations import available_migrations
from marketdash_testing.api_server import PASSWORD, cli_env, run_cli

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


@pytest.fixture
def in_process(monkeypatch, capsys):
    def run(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
        for key in [k for k in os.environ if k.startswith("MARKETDASH_API_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith("MARKETDASH_API_"):
                monkeypatch.setenv(key, value)
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse refusing its arguments
            code = exit.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def _result(completed):
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_migrate_from_empty_then_again(postgres_db):
    env = cli_env(postgres_db)
    first = _result(run_cli("migrate", env=env))
    assert first["applied"][0] == "0001_users"
    assert first["applied"] == [m.name for m in available_migrations()]
    assert _result(run_cli("migrate", env=env)) == {"applied": []}


def test_ensure_user_is_idempotent_and_reports_what_changed(in_process, migrated_db):
    env = cli_env(migrated_db)
    stdin = PASSWORD + "\n"
    ensure = ("ensure-user", "dana", "--password-stdin")
    assert _result(run_cli(*ensure, env=env, stdin=stdin))["action"] == "created"
    assert _result(in_process(*ensure, env=env, stdin=stdin)) == {
        "username": "dana",
        "role": "member",
        "action": "unchanged",
        "changed": False,
    }
    assert _result(in_process(*ensure, "--role", "admin", env=env, stdin=stdin))["action"] == "updated"
    from_env = cli_env(migrated_db, user_password="a rotated password")
    assert _result(in_process("ensure-user", "dana", "--role", "admin", env=from_env))["changed"] is True
    with psycopg.connect(migrated_db) as conn:
        role, password_hash = conn.execute(
            "SELECT role, password_hash FROM users WHERE username = 'dana'"
        ).fetchone()
    assert role == "admin"
    assert password_hash.startswith("$argon2id$")


def test_passwords_never_come_from_the_command_line(in_process, migrated_db):
    env = cli_env(migrated_db)
    on_argv = in_process("ensure-user", "eve", "--password", PASSWORD, env=env)
    assert on_argv.returncode == 2
    assert "unrecognized arguments" in on_argv.stderr
    missing = in_process("ensure-user", "eve", env=env)
    assert missing.returncode == 2
    assert "set MARKETDASH_API_USER_PASSWORD or pass --password-stdin" in missing.stderr
    short = in_process("create-user", "eve", "--password-stdin", env=env, stdin="short\n")
    assert short.returncode == 2
    assert "8 to 1024 characters" in short.stderr
    bad_name = in_process("create-user", "eve smith", "--password-stdin", env=env, stdin=PASSWORD)
    assert bad_name.returncode == 2
    assert "must be 1-64 characters" in bad_name.stderr


def test_create_user_refuses_an_existing_name(in_process, migrated_db):
    env = cli_env(migrated_db)
    assert _result(in_process("create-user", "frank", "--password-stdin", env=env, stdin=PASSWORD))["changed"]
    again = in_process("create-user", "frank", "--password-stdin", env=env, stdin=PASSWORD)
    assert again.returncode == 2
    assert "user frank already exists" in again.stderr


def accounts_json(users: list[tuple[str, str, str]], assets: list[str] | None = None) -> str:
    """The inventory's accounts as the collectors role sends them (Grafana's fields included)."""
    watchlist = None if assets is None else {"name": "Markets", "assets": assets}
    team = [
        {
            "login": login,
            "password": password,
            "role": role,
            "name": login.title(),
            "email": f"{login}@x.test",
        }
        for login, password, role in users
    ]
    return json.dumps({"users": team, "watchlist": watchlist})


def test_the_inventorys_accounts_get_their_starting_watchlist_once(in_process, migrated_db):
    env = cli_env(migrated_db)
    team = [("ann", PASSWORD, "Admin"), ("ben", PASSWORD, "Editor")]
    stdin = accounts_json(team, ["BTC/USDT", "PEPE/USDT", "SPX"])
    assert _result(run_cli("ensure-accounts", env=env, stdin=stdin)) == {
        "users": {"ann": "created", "ben": "created"},
        "watchlist_given_to": ["ann", "ben"],
        "changed": True,
    }
    assert _result(in_process("ensure-accounts", env=env, stdin=stdin)) == {
        "users": {"ann": "unchanged", "ben": "unchanged"},
        "watchlist_given_to": [],
        "changed": False,
    }
    # A password is the list's when the account is made, then the person's own (as in Grafana): a new one
    # in the list changes nothing; a role does change, and api_role may set the API's apart from Grafana's.
    with psycopg.connect(migrated_db) as conn:
        hashes = conn.execute("SELECT username, password_hash FROM users ORDER BY 1").fetchall()
    promoted = json.loads(accounts_json([("ann", "a new password", "Admin"), ("ben", PASSWORD, "Editor")]))
    promoted["users"][1]["api_role"] = "admin"
    assert _result(in_process("ensure-accounts", env=env, stdin=json.dumps(promoted)))["users"] == {
        "ann": "unchanged",
        "ben": "updated",
    }
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT username, password_hash FROM users ORDER BY 1").fetchall() == hashes
        assert conn.execute("SELECT role FROM users WHERE username = 'ben'").fetchone() == ("admin",)
    # A member's own lists stay theirs: ben renames his and empties it; a newcomer gets the starting one.
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(
            "UPDATE watchlists SET name = 'Mine', assets = '[]' WHERE user_id = "
            "(SELECT id FROM users WHERE username = 'ben')"
        )
    later = accounts_json([*team, ("cleo", "another password", "Viewer")], ["BTC/USDT", "PEPE/USDT", "SPX"])
    assert _result(in_process("ensure-accounts", env=env, stdin=later))["watchlist_given_to"] == ["cleo"]
    with psycopg.connect(migrated_db) as conn:
        lists = conn.execute(
            "SELECT username, role, name, assets FROM watchlists JOIN users ON users.id = user_id ORDER BY 1"
        ).fetchall()
        pepe = conn.execute("SELECT asset_class FROM assets WHERE symbol = 'PEPE/USDT'").fetchone()
    assert lists == [
        ("ann", "admin", "Markets", ["BTC/USDT", "PEPE/USDT", "SPX"]),
        ("ben", "member", "Mine", []),  # back to a member: the list below gives no api_role
        ("cleo", "member", "Markets", ["BTC/USDT", "PEPE/USDT", "SPX"]),
    ]
    assert pepe == ("crypto",)
    # ben leaves: his API user goes with what he owns, as his Grafana login does; the others stay as they are.
    gone = json.dumps({"users": [{"login": "ben", "state": "absent"}], "watchlist": None})
    assert _result(in_process("ensure-accounts", env=env, stdin=gone))["users"] == {"ben": "deleted"}
    assert _result(in_process("ensure-accounts", env=env, stdin=gone))["changed"] is False
    with psycopg.connect(migrated_db) as conn:
        owners = conn.execute("SELECT username FROM users JOIN watchlists ON users.id = user_id ORDER BY 1")
        assert [row[0] for row in owners] == ["ann", "cleo"]


def test_refused_accounts_change_nothing_and_never_echo_a_password(in_process, migrated_db):
    env = cli_env(migrated_db)
    for stdin, message in (
        (
            accounts_json([("ann", PASSWORD, "Viewer")], ["BTC/USDT", "bad symbol"]),
            "unknown asset symbol(s): bad symbol",
        ),
        (accounts_json([("ann", "secret!", "Viewer")]), "users.0.password: String should have at least 8"),
        (accounts_json([("ann smith", PASSWORD, "Viewer")]), "users.0.login: String should match pattern"),
        (
            accounts_json([("ann", PASSWORD, "root")]),
            "users.0.role: Input should be 'Viewer', 'Editor' or 'Admin'",
        ),
        (accounts_json([("ann", PASSWORD, "Viewer")], []), "watchlist.assets: List should have at least 1"),
        ('{"users": [{"login": "ann"}]}', "users.0: Value error, a present account needs its password"),
        ("not json", "accounts on stdin refused"),
    ):
        refused = in_process("ensure-accounts", env=env, stdin=stdin)
        assert refused.returncode == 2, stdin
        assert message in refused.stderr, refused.stderr
        assert PASSWORD not in refused.stderr
        assert "secret!" not in refused.stderr
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_seed_demo_creates_a_demo_team_once(in_process, migrated_db):
    env = cli_env(migrated_db, demo_password="demo password 1")
    first = _result(in_process("seed-demo", env=env))
    assert first == {"created": ["demo-admin", "alice", "bob", "carol"], "changed": True}
    assert _result(in_process("seed-demo", env=env)) == {"created": [], "changed": False}
    with psycopg.connect(migrated_db) as conn:
        counts = conn.execute(
            """SELECT (SELECT count(*) FROM watchlists), (SELECT count(*) FROM alert_rules),
                      (SELECT count(*) FROM portfolio_positions), (SELECT count(*) FROM alert_events),
                      (SELECT count(*) FROM user_layouts WHERE is_default)"""
        ).fetchone()
    assert counts == (6, 8, 8, 8, 4)


def test_seed_demo_without_a_password_generates_one_and_prints_it(in_process, migrated_db):
    result = _result(in_process("seed-demo", env=cli_env(migrated_db)))
    assert len(result["password"]) >= 16


def test_serve_refuses_to_start_without_a_strong_jwt_secret(in_process, migrated_db):
    for secret in ("", "too short"):
        completed = in_process("serve", env=cli_env(migrated_db, jwt_secret=secret))
        assert completed.returncode == 2
        assert "MARKETDASH_API_JWT_SECRET must be set to at least 32 bytes" in completed.stderr
