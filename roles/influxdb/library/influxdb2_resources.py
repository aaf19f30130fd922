#!/usr/bin/python
"""Converge an InfluxDB 2 organisation's buckets, tasks and consumer tokens through its HTTP API."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: influxdb2_resources
short_description: Buckets, Flux tasks and per-consumer tokens of one InfluxDB 2 organisation
description:
  - Creates what is missing and corrects what differs, through the /api/v2 HTTP API with an operator
    token; reports changed only when it writes. Check mode reports what it would write.
  - Buckets are matched by name; their retention and description are corrected in place.
  - Tasks are matched by name (InfluxDB does not keep names unique; duplicates are deleted); their Flux,
    description and status are corrected in place.
  - Tokens are matched by the description C(ansible:<consumer>). Permissions of a token cannot be changed,
    so a token whose permissions differ is deleted and created again; a managed token whose consumer is no
    longer listed is deleted.
options:
  url: {description: Base URL of the server, e.g. http://172.18.0.2:8086., type: str, required: true}
  token: {description: An operator (all-access) token., type: str, required: true}
  org: {description: Organisation name; created when missing., type: str, required: true}
  buckets:
    description: List of {name, retention_seconds (0 = infinite), description}.
    type: list
    elements: dict
    default: []
  tasks:
    description: List of {name, flux, description, status (active|inactive)}; the Flux's task option names it.
    type: list
    elements: dict
    default: []
  tokens:
    description: List of {consumer, permissions [{action read|write, buckets [names]}]}.
    type: list
    elements: dict
    default: []
  timeout: {description: Seconds per request., type: int, default: 30}
"""

RETURN = r"""
tokens:
  description: Token value per consumer (absent in check mode for a token not yet created).
  type: dict
changes: {description: What was (or would be) written, one line each., type: list}
"""

DESCRIPTION_PREFIX = "ansible:"
PAGE = 100
# The largest page /tasks serves; an organisation of ours has a handful.
TASK_LIMIT = 500


class ApiError(Exception):
    pass


class Api:
    def __init__(self, url: str, token: str, timeout: int) -> None:
        self.base = url.rstrip("/") + "/api/v2"
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.timeout = timeout

    def call(self, method: str, path: str, body: object = None, **query: object) -> dict:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        # The scheme is checked in main(): only http(s) reaches here.
        request = urllib.request.Request(url, data=data, headers=self.headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise ApiError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(f"{method} {path}: {exc}") from exc
        return json.loads(raw) if raw else {}

    def buckets(self, org_id: str) -> list[dict]:
        # The only one of the three listings paged by offset (at most 100 a page).
        items: list[dict] = []
        while True:
            page = (
                self.call("GET", "/buckets", orgID=org_id, offset=len(items), limit=PAGE).get("buckets") or []
            )
            items.extend(page)
            if len(page) < PAGE:
                return items


class Converger:
    def __init__(self, module: AnsibleModule, api: Api) -> None:
        self.module = module
        self.api = api
        self.check = module.check_mode
        self.changes: list[str] = []

    def write(self, summary: str, method: str, path: str, body: object = None, **query: object) -> dict:
        self.changes.append(summary)
        if self.check:
            return {}
        return self.api.call(method, path, body, **query)

    def org_id(self, name: str) -> str | None:
        orgs = self.api.call("GET", "/orgs", org=name).get("orgs") or []
        if orgs:
            return orgs[0]["id"]
        return self.write(f"create org {name}", "POST", "/orgs", {"name": name}).get("id")

    def buckets(self, org_id: str | None, wanted: list[dict]) -> dict[str, str | None]:
        existing = {}
        if org_id:
            existing = {b["name"]: b for b in self.api.buckets(org_id)}
        ids: dict[str, str | None] = {}
        for spec in wanted:
            name, every = spec["name"], int(spec["retention_seconds"])
            description = spec.get("description") or ""
            rules = [{"type": "expire", "everySeconds": every}] if every else []
            current = existing.get(name)
            if current is None:
                body = {"orgID": org_id, "name": name, "description": description, "retentionRules": rules}
                ids[name] = self.write(f"create bucket {name} ({every} s)", "POST", "/buckets", body).get(
                    "id"
                )
                continue
            ids[name] = current["id"]
            current_every = next(
                (
                    r.get("everySeconds", 0)
                    for r in current.get("retentionRules") or []
                    if r["type"] == "expire"
                ),
                0,
            )
            if current_every != every or (current.get("description") or "") != description:
                self.write(
                    f"update bucket {name}: retention {current_every} s -> {every} s, {description!r}",
                    "PATCH",
                    f"/buckets/{current['id']}",
                    {
                        "description": description,
                        "retentionRules": rules or [{"type": "expire", "everySeconds": 0}],
                    },
                )
        return ids

    def tasks(self, org_id: str | None, wanted: list[dict]) -> None:
        by_name: dict[str, list[dict]] = {}
        if org_id:
            for task in self.api.call("GET", "/tasks", orgID=org_id, limit=TASK_LIMIT).get("tasks") or []:
                by_name.setdefault(task["name"], []).append(task)
        for spec in wanted:
            name, flux = spec["name"], spec["flux"]
            status, description = spec.get("status", "active"), spec.get("description") or ""
            found = by_name.get(name, [])
            for duplicate in found[1:]:
                self.write(
                    f"delete duplicate task {name} ({duplicate['id']})", "DELETE", f"/tasks/{duplicate['id']}"
                )
            if not found:
                body = {"orgID": org_id, "flux": flux, "status": status, "description": description}
                self.write(f"create task {name}", "POST", "/tasks", body)
                continue
            current = found[0]
            if (current.get("flux"), current.get("status"), current.get("description") or "") != (
                flux,
                status,
                description,
            ):
                body = {"flux": flux, "status": status, "description": description}
                self.write(f"update task {name}", "PATCH", f"/tasks/{current['id']}", body)

    def tokens(
        self, org_id: str | None, bucket_ids: dict[str, str | None], wanted: list[dict]
    ) -> dict[str, str]:
        managed: dict[str, list[dict]] = {}
        if org_id:
            for auth in self.api.call("GET", "/authorizations", orgID=org_id).get("authorizations") or []:
                if (auth.get("description") or "").startswith(DESCRIPTION_PREFIX):
                    managed.setdefault(auth["description"][len(DESCRIPTION_PREFIX) :], []).append(auth)
        tokens: dict[str, str] = {}
        for spec in wanted:
            consumer = spec["consumer"]
            permissions = [
                {"action": p["action"], "resource": {"type": "buckets", "id": bucket_ids[b], "orgID": org_id}}
                for p in spec["permissions"]
                for b in p["buckets"]
            ]
            want = {(p["action"], p["resource"]["id"]) for p in permissions}
            current = managed.pop(consumer, [])
            keep = None
            for auth in current:
                have = {(p["action"], p["resource"].get("id")) for p in auth.get("permissions") or []}
                if keep is None and auth.get("status") == "active" and have == want and None not in have:
                    keep = auth
                    continue
                self.write(
                    f"delete token of {consumer} ({auth['id']}): permissions changed",
                    "DELETE",
                    f"/authorizations/{auth['id']}",
                )
            if keep is None:
                body = {
                    "orgID": org_id,
                    "description": DESCRIPTION_PREFIX + consumer,
                    "permissions": permissions,
                }
                keep = self.write(f"create token of {consumer}", "POST", "/authorizations", body)
            if keep.get("token"):
                tokens[consumer] = keep["token"]
        for consumer, auths in managed.items():
            for auth in auths:
                self.write(
                    f"delete token of {consumer}: no longer listed", "DELETE", f"/authorizations/{auth['id']}"
                )
        return tokens


def validate(module: AnsibleModule) -> None:
    names = {b.get("name") for b in module.params["buckets"]}
    for bucket in module.params["buckets"]:
        if not bucket.get("name") or int(bucket.get("retention_seconds", -1)) < 0:
            module.fail_json(msg=f"bucket {bucket!r}: needs a name and retention_seconds >= 0 (0 = infinite)")
    for task in module.params["tasks"]:
        if not task.get("name") or "option task" not in (task.get("flux") or ""):
            module.fail_json(
                msg=f"task {task.get('name')!r}: needs a name and Flux with `option task = {{...}}`"
            )
        if task.get("status", "active") not in ("active", "inactive"):
            module.fail_json(msg=f"task {task['name']}: status must be active or inactive")
    for token in module.params["tokens"]:
        for permission in token.get("permissions") or []:
            if permission.get("action") not in ("read", "write"):
                module.fail_json(msg=f"token {token.get('consumer')}: action must be read or write")
            unknown = set(permission.get("buckets") or []) - names
            if unknown or not permission.get("buckets"):
                module.fail_json(
                    msg=f"token {token.get('consumer')}: buckets {sorted(unknown)} not in the list of buckets"
                )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "token": {"type": "str", "required": True, "no_log": True},
            "org": {"type": "str", "required": True},
            "buckets": {"type": "list", "elements": "dict", "default": []},
            "tasks": {"type": "list", "elements": "dict", "default": []},
            "tokens": {"type": "list", "elements": "dict", "default": [], "no_log": False},
            "timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    validate(module)
    if urllib.parse.urlparse(module.params["url"]).scheme not in ("http", "https"):
        module.fail_json(msg=f"url {module.params['url']!r}: must be http:// or https://")
    converger = Converger(module, Api(module.params["url"], module.params["token"], module.params["timeout"]))
    try:
        org_id = converger.org_id(module.params["org"])
        bucket_ids = converger.buckets(org_id, module.params["buckets"])
        converger.tasks(org_id, module.params["tasks"])
        tokens = converger.tokens(org_id, bucket_ids, module.params["tokens"])
    except ApiError as exc:
        module.fail_json(msg=f"InfluxDB API: {exc}", changes=converger.changes)
    changes = converger.changes
    module.exit_json(
        changed=bool(changes),
        changes=changes,
        tokens=tokens,
        diff={"before": "", "after": "".join(f"{line}\n" for line in changes)},
    )


if __name__ == "__main__":
    main()
