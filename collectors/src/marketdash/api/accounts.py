"""The team's accounts as the deployment's inventory lists them, and the watchlist each member starts with.

One list makes both the Grafana logins and the API users (same login; the same first password, which is
then the person's own, as in Grafana; Grafana's Admin is an API admin, Editor and Viewer members unless
`api_role` says otherwise), so the dashboards' `$user` variable resolves for whoever logs in. A member
who has no watchlist at all gets the starting one, so that a fresh deploy follows a market from its first
minute; a member's own lists, edits and deletions stay theirs for as long as they keep one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from marketdash.api import users
from marketdash.api.assets_table import known_or_added
from marketdash.api.models import Assets, Name, Password, Username


class Account(BaseModel):
    """One person as the inventory lists them; what only Grafana reads (name, e-mail, organisations) is
    ignored here."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    login: Username
    password: Password | None = None
    # Grafana's organisation role: an Admin administers the API too, the others are members.
    role: Literal["Viewer", "Editor", "Admin"] = "Viewer"
    # The API's role when it differs from what the Grafana role gives (a Grafana Editor who administers
    # the API).
    api_role: Literal["admin", "member"] | None = None
    # absent: the person left; their API user goes, with what they own (as their Grafana login does).
    state: Literal["present", "absent"] = "present"

    @model_validator(mode="after")
    def _present_with_a_password(self) -> Account:
        if self.state == "present" and self.password is None:
            raise ValueError("a present account needs its password")
        return self

    @property
    def role_in_api(self) -> str:
        return self.api_role or ("admin" if self.role == "Admin" else "member")


class StartingWatchlist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    assets: Annotated[Assets, Field(min_length=1)]


class Accounts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: list[Account]
    watchlist: StartingWatchlist | None = None


async def _ensure(conn: AsyncConnection, account: Account) -> str:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute("SELECT id, role FROM users WHERE username = %s FOR UPDATE", (account.login,))
    row = await cur.fetchone()
    if account.state == "absent":
        return "deleted" if row is not None and await users.delete_user(conn, row[0]) else "unchanged"
    if row is None:
        assert account.password is not None  # the model requires it of a present account
        await users.create_user(conn, account.login, account.password, account.role_in_api)
        return "created"
    if row[1] != account.role_in_api:
        await users.set_role(conn, row[0], account.role_in_api)
        return "updated"
    return "unchanged"


async def ensure_accounts(conn: AsyncConnection, accounts: Accounts) -> dict[str, Any]:
    """Makes each account exist with its role (its password only when it is created, as Grafana does:
    later it is the person's own), and gives the starting watchlist to each of them who has none; all of it
    or nothing (one transaction). Writes nothing when nothing changes, so no trigger wakes the feeder or the
    API's caches. Says what changed, for Ansible."""
    async with conn.transaction():
        actions = {account.login: await _ensure(conn, account) for account in accounts.users}
        present = [account.login for account in accounts.users if account.state == "present"]
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            """SELECT username FROM users WHERE username = ANY(%s)
                 AND NOT EXISTS (SELECT 1 FROM watchlists WHERE watchlists.user_id = users.id)
               ORDER BY username""",
            (present,),
        )
        given = [username for (username,) in await cur.fetchall()] if accounts.watchlist else []
        if accounts.watchlist and given:
            await known_or_added(conn, accounts.watchlist.assets)
            await conn.execute(
                """INSERT INTO watchlists (user_id, name, assets)
                   SELECT id, %(name)s, %(assets)s FROM users WHERE username = ANY(%(usernames)s)""",
                {
                    "name": accounts.watchlist.name,
                    "assets": Jsonb(list(dict.fromkeys(accounts.watchlist.assets))),
                    "usernames": given,
                },
            )
    changed = given or any(action != "unchanged" for action in actions.values())
    return {"users": actions, "watchlist_given_to": given, "changed": bool(changed)}
