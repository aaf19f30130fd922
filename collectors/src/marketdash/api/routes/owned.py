"""Create, read, update and delete for the data each user owns (watchlists, layouts, rules, positions).

One implementation so that every kind of data gets the same authorisation: a member acts on their own
rows only (403 when naming another user, 404 for another user's object: its existence is not revealed),
an admin on all. Deliberately no ``from __future__ import annotations``: FastAPI reads the closures'
annotations, which name the resource's models.
"""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, TypeAdapter

from marketdash.api.assets_table import UnknownAssetError, known_or_added
from marketdash.api.deps import MAX_ID, Conn, CurrentUser, check_owner

ItemId = Annotated[int, Path(alias="id", ge=1, le=MAX_ID, description="The object's id")]

# (connection, id of the row being updated or None on create, owner on create or None, new values)
BeforeWrite = Callable[[AsyncConnection, int | None, int | None, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class OwnedResource:
    label: str
    table: str
    create_model: type[BaseModel]
    update_model: type[BaseModel]
    out_model: type[BaseModel]
    json_columns: frozenset[str] = frozenset()
    nullable: frozenset[str] = frozenset()
    # Fields holding an asset's symbol, or a list of them, checked against the assets table (known_or_added).
    asset_fields: tuple[str, ...] = ()
    # Checks a row as it would be after an update (partial updates can combine into an invalid whole).
    check_row: Callable[[dict[str, Any]], None] | None = None
    # Checks a written row against the deployment's settings (a ValueError is the client's mistake); run
    # inside the transaction, so a refused row is not kept.
    check_written: Callable[[Request, dict[str, Any]], Awaitable[None]] | None = None
    before_write: BeforeWrite | None = None


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def _not_found(resource: OwnedResource, item_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{resource.label} {item_id} not found")


async def _known_or_added(conn: AsyncConnection, symbols: Iterable[str]) -> bool:
    try:
        return await known_or_added(conn, symbols)
    except UnknownAssetError as error:
        raise _unprocessable(str(error)) from None


def _symbols(resource: OwnedResource, values: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for name in resource.asset_fields:
        value = values.get(name)
        if isinstance(value, list):
            found.extend(value)
        elif value is not None:
            found.append(value)
    return found


def _db_values(resource: OwnedResource, values: dict[str, Any]) -> dict[str, Any]:
    return {k: Jsonb(v) if k in resource.json_columns else v for k, v in values.items()}


def register(
    router: APIRouter,
    resource: OwnedResource,
    *,
    collection: str,
    list_path: str,
    item: str,
    extra_list_paths: tuple[str, ...] = (),
    extra_create_paths: tuple[str, ...] = (),
) -> None:
    """Add the resource's routes: GET list_path (a user's), POST collection, GET|PUT|DELETE item."""
    table = sql.Identifier(resource.table)
    out_model = resource.out_model
    create_model = resource.create_model
    update_model = resource.update_model

    listed = TypeAdapter(list[out_model])

    async def owned_json(pool: AsyncConnectionPool, owner: int) -> bytes | None:
        """The owner's rows as the response's JSON, or None when there is no such user."""
        async with pool.connection() as conn:
            cur = await conn.execute(
                sql.SQL("SELECT * FROM {} WHERE user_id = %s ORDER BY id").format(table), (owner,)
            )
            rows = await cur.fetchall()
            if not rows:
                cur = await conn.execute("SELECT 1 FROM users WHERE id = %s", (owner,))
                if await cur.fetchone() is None:
                    return None
        return listed.dump_json(listed.validate_python(rows), by_alias=True)

    def list_endpoint(param: str) -> Callable[..., Awaitable[Response]]:
        owner_type = Annotated[int, Path(alias=param, ge=1, le=MAX_ID, description="A user's id")]

        # What a dashboard polls: served from the read cache, already serialised (no connection taken).
        async def list_owned(owner: owner_type, caller: CurrentUser, request: Request) -> Response:
            check_owner(caller, owner)
            state = request.app.state
            body = await state.reads.get(
                resource.table, (resource.label, owner), lambda: owned_json(state.pool, owner)
            )
            if body is None:  # an admin naming no such user, or a member deleted since their token's check
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {owner} not found")
            return Response(body, media_type="application/json")

        return list_owned

    async def check_written(request: Request, row: dict[str, Any]) -> dict[str, Any]:
        if resource.check_written:
            try:
                await resource.check_written(request, row)
            except ValueError as error:
                raise _unprocessable(str(error)) from None
        return row

    async def create(body: create_model, caller: CurrentUser, conn: Conn, request: Request) -> dict:  # type: ignore[valid-type]
        values = body.model_dump(exclude={"user_id"}, exclude_none=True)  # type: ignore[attr-defined]
        owner = body.user_id or caller.id  # type: ignore[attr-defined]
        check_owner(caller, owner)
        async with conn.transaction():
            assets_added = await _known_or_added(conn, _symbols(resource, values))
            if resource.before_write:
                await resource.before_write(conn, None, owner, values)
            columns = ["user_id", *values]
            query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
                table,
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(map(sql.Placeholder, columns)),
            )
            cur = await conn.execute(query, {"user_id": owner, **_db_values(resource, values)})
            row = await check_written(request, await cur.fetchone())
        request.app.state.reads.changed(resource.table, *(["assets"] if assets_added else []))
        return row

    async def read(item_id: ItemId, caller: CurrentUser, conn: Conn) -> dict:
        cur = await conn.execute(
            sql.SQL("SELECT * FROM {} WHERE id = %s AND (user_id = %s OR %s)").format(table),
            (item_id, caller.id, caller.is_admin),
        )
        row = await cur.fetchone()
        if row is None:
            raise _not_found(resource, item_id)
        return row

    async def update(
        item_id: ItemId,
        body: update_model,  # type: ignore[valid-type]
        caller: CurrentUser,
        conn: Conn,
        request: Request,
    ) -> dict:
        values = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
        nulls = sorted(k for k, v in values.items() if v is None and k not in resource.nullable)
        if nulls:
            raise _unprocessable(f"{', '.join(nulls)} may not be null")
        if not values:
            raise _unprocessable("nothing to update: send at least one field")
        async with conn.transaction():
            assets_added = await _known_or_added(conn, _symbols(resource, values))
            if resource.before_write:
                await resource.before_write(conn, item_id, None, values)
            query = sql.SQL(
                "UPDATE {} SET {}, updated_at = now()"
                " WHERE id = %(id)s AND (user_id = %(caller)s OR %(admin)s) RETURNING *"
            ).format(
                table,
                sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in values
                ),
            )
            params = {
                **_db_values(resource, values),
                "id": item_id,
                "caller": caller.id,
                "admin": caller.is_admin,
            }
            cur = await conn.execute(query, params)
            row = await cur.fetchone()
            if row is None:
                raise _not_found(resource, item_id)
            if resource.check_row:
                try:
                    resource.check_row(row)
                except ValueError as error:
                    raise _unprocessable(str(error)) from None
            row = await check_written(request, row)
        request.app.state.reads.changed(resource.table, *(["assets"] if assets_added else []))
        return row

    async def delete(item_id: ItemId, caller: CurrentUser, conn: Conn, request: Request) -> Response:
        cur = await conn.execute(
            sql.SQL("DELETE FROM {} WHERE id = %s AND (user_id = %s OR %s)").format(table),
            (item_id, caller.id, caller.is_admin),
        )
        if cur.rowcount == 0:
            raise _not_found(resource, item_id)
        request.app.state.reads.changed(resource.table)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    label = resource.label
    for path in (list_path, *extra_list_paths):
        # Named `id` where it shares its template with `item` (the roadmap's /api/watchlists/{id}):
        # OpenAPI forbids two templates that differ only by a parameter's name.
        param = "id" if path == item else "user_id"
        router.add_api_route(
            path,
            list_endpoint(param),
            methods=["GET"],
            response_model=list[out_model],
            summary=f"List a user's {label}s",
            description=f"{{{param}}} is the user's id.",
        )
    for path in (collection, *extra_create_paths):
        router.add_api_route(
            path,
            create,
            methods=["POST"],
            response_model=out_model,
            status_code=201,
            summary=f"Create a {label}",
        )
    if list_path != item:
        router.add_api_route(item, read, methods=["GET"], response_model=out_model, summary=f"Read a {label}")
    router.add_api_route(item, update, methods=["PUT"], response_model=out_model, summary=f"Update a {label}")
    router.add_api_route(item, delete, methods=["DELETE"], status_code=204, summary=f"Delete a {label}")
