"""Grafana provisioning as code: the contract the Grafana role renders from, and a validator of its output.

`python -m marketdash_dashboards.provisioning contract [--check]` writes roles/grafana/vars/contract.yml:
the datasource UIDs and types, the pinned plugins, the dashboard files per look and the InfluxQL names the
alert rules query, all taken from the generator and the collectors' schema, so the role never restates them.

`python -m marketdash_dashboards.provisioning validate CONFIG_DIR --mount CONTAINER_PATH=HOST_DIR ...` checks
what the role rendered (grafana.ini and provisioning/ as mounted at /etc/grafana) against Grafana's documented
provisioning format and against the contract: every problem is printed, exit status 1 if there is any.
Grafana itself cannot run here, so this is the gate every rendered file passes before it lands.
"""

from __future__ import annotations

import argparse
import configparser
import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from marketdash.core.schema import BUCKETS, CANDLE, CHANGE, MEASUREMENTS, TICKER, Measurement

from . import queries
from .datasources import INFLUXDB, MIXED, POSTGRES, PROMETHEUS, PROVISIONED
from .frame import MAIN, theme_tag, uid
from .palette import PALETTES
from .plugins import PINNED_PLUGINS
from .render import dashboards

DEFAULT_CONTRACT = Path("roles/grafana/vars/contract.yml")

# Where Grafana's image reads its configuration (GF_PATHS_CONFIG, GF_PATHS_PROVISIONING defaults).
CONTAINER_CONFIG_DIR = PurePosixPath("/etc/grafana")
# Compose file secrets are mounted here; a `$__file{}` outside it would read the image's own files.
SECRETS_DIR = PurePosixPath("/run/secrets")

# Datasource UIDs that are Grafana's own, never provisioned.
BUILTIN_DATASOURCE_UIDS = frozenset({MIXED.uid, "-- Grafana --", "-- Dashboard --", "grafana"})
EXPRESSION_UID = "__expr__"
EXPRESSION_TYPES = frozenset({"math", "reduce", "threshold", "resample", "classic_conditions", "sql"})
# Receiver types of Grafana's alerting (pkg/services/ngalert/notifier/channels_config) and the settings
# each one cannot work without.
RECEIVER_REQUIRED_SETTINGS: dict[str, tuple[str, ...]] = {
    "telegram": ("bottoken", "chatid"),
    "email": ("addresses",),
    "webhook": ("url",),
    "discord": ("url",),
    "slack": (),
    "pagerduty": ("integrationKey",),
    "opsgenie": ("apiKey",),
    "teams": ("url",),
    "googlechat": ("url",),
    "pushover": ("userKey", "apiToken"),
}
# Settings that carry a credential: they must come from a file, never sit in the provisioning YAML.
SECRET_SETTINGS = frozenset({"bottoken", "password", "token", "apiKey", "integrationKey", "apiToken"})
ALERTING_KEYS = frozenset(
    {
        "apiVersion",
        "groups",
        "deleteRules",
        "contactPoints",
        "deleteContactPoints",
        "policies",
        "resetPolicies",
        "templates",
        "deleteTemplates",
        "muteTimes",
        "deleteMuteTimes",
    }
)
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w))+$")
RULE_UID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")
NO_DATA_STATES = frozenset({"NoData", "Alerting", "OK", "KeepLast"})
EXEC_ERR_STATES = frozenset({"Error", "Alerting", "OK", "KeepLast"})
# `$__file{path}` is expanded by Grafana; `$$` is a literal dollar. Any other `$` is an environment lookup.
FILE_REF = re.compile(r"\$__file\{([^}]*)\}")
INFLUX_SOURCE = re.compile(r'FROM\s+"(\w+)"\."(\w+)"\."(\w+)"', re.IGNORECASE)
INFLUX_ALIAS = re.compile(r'\bAS\s+"([^"]+)"', re.IGNORECASE)
QUOTED_IDENT = re.compile(r'"([^"]+)"')
SINGLE_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
MATH_REF = re.compile(r"\$\{?(\w+)\}?")


# --- The contract ------------------------------------------------------------------------------------------


def _alert_source(measurement: Measurement, value: str, *tags: str) -> dict[str, str]:
    """The quoted InfluxQL names of one alert query, through the generator's own name checks."""
    source = {"from": queries.source(measurement), "value": queries.name(measurement, value)}
    for tag in tags:
        source[tag] = queries.name(measurement, tag)
    return source


def contract() -> dict[str, Any]:
    """Everything the Grafana role needs from the generator and the schema, as role variables."""
    models = dashboards()
    looks = []
    for palette in PALETTES:
        files = sorted(name for name, model in models.items() if theme_tag(palette) in model.get("tags", []))
        looks.append(
            {"key": palette.key, "name": palette.name, "theme": palette.grafana_theme, "dashboards": files}
        )
    home_uid = uid(MAIN, PALETTES[0])
    home = next(name for name, model in models.items() if model["uid"] == home_uid)
    return {
        "grafana_contract_datasources": {
            role: {"uid": ds.uid, "type": ds.type}
            for role, ds in (("influxdb", INFLUXDB), ("postgres", POSTGRES), ("prometheus", PROMETHEUS))
        },
        "grafana_contract_plugins": [
            f"{plugin}@{version}" for plugin, version in sorted(PINNED_PLUGINS.items())
        ],
        "grafana_contract_looks": looks,
        "grafana_contract_home": {"look": PALETTES[0].key, "file": home, "uid": home_uid},
        "grafana_contract_dashboard_uids": sorted(model["uid"] for model in models.values()),
        "grafana_contract_buckets": list(BUCKETS),
        "grafana_contract_alert_sources": {
            "price": _alert_source(TICKER, "last", "symbol"),
            "change": _alert_source(CHANGE, "change_pct_1h", "symbol"),
            "volume": _alert_source(CANDLE, "volume", "symbol", "interval"),
        },
    }


def contract_text() -> str:
    header = (
        "---\n# Generated by `python -m marketdash_dashboards.provisioning contract` from the dashboard\n"
        "# generator and the collectors' schema: do not edit; a test fails when it is stale.\n"
    )
    return header + yaml.dump(
        contract(), Dumper=_IndentedDumper, sort_keys=True, allow_unicode=True, width=120
    )


class _IndentedDumper(yaml.SafeDumper):
    """Lists indented under their key, as yamllint's default (and the rest of the repository) wants."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


# --- The validator -----------------------------------------------------------------------------------------


class Problems(list[str]):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")


def _expanded(value: str) -> str:
    """The value as Grafana hands it on: `$$` becomes `$` (file references are left in place)."""
    return value.replace("$$", "$")


def _check_dollars(where: str, document: Any, problems: Problems) -> None:
    for path, value in _strings(document):
        rest = FILE_REF.sub("", value.replace("$$", ""))
        if "$" in rest:
            problems.add(
                f"{where} {path}",
                f"{value!r} has a bare '$': Grafana expands it as an environment variable (write $$ for a "
                "literal dollar, $__file{/run/secrets/NAME} for a secret)",
            )
        for ref in FILE_REF.findall(value.replace("$$", "")):
            if PurePosixPath(ref).parent != SECRETS_DIR:
                problems.add(
                    f"{where} {path}", f"$__file{{{ref}}} is not a Compose secret under {SECRETS_DIR}"
                )


def _load_yaml_dir(directory: Path, problems: Problems) -> list[tuple[str, dict[str, Any]]]:
    documents = []
    if not directory.is_dir():
        return documents
    for path in sorted(directory.iterdir()):
        if path.suffix not in {".yaml", ".yml"}:
            problems.add(str(path), "Grafana reads only .yaml/.yml files here")
            continue
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            problems.add(str(path), f"not YAML: {error}")
            continue
        if not isinstance(document, dict):
            problems.add(str(path), "the top level must be a mapping")
            continue
        if document.get("apiVersion") != 1:
            problems.add(str(path), f"apiVersion must be 1, got {document.get('apiVersion')!r}")
        _check_dollars(str(path), document, problems)
        documents.append((str(path), document))
    return documents


def _host_path(container_path: str, mounts: Mapping[str, Path]) -> Path | None:
    """The host file behind a container path, through the longest matching mount."""
    target = PurePosixPath(container_path)
    for prefix in sorted(mounts, key=len, reverse=True):
        base = PurePosixPath(prefix)
        if target == base or base in target.parents:
            return mounts[prefix].joinpath(*target.relative_to(base).parts)
    return None


def _check_ini(config_dir: Path, mounts: Mapping[str, Path], problems: Problems) -> None:
    where = str(config_dir / "grafana.ini")
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
    try:
        parser.read_string((config_dir / "grafana.ini").read_text(encoding="utf-8"))
    except (OSError, configparser.Error) as error:
        problems.add(where, f"not readable as INI: {error}")
        return

    def expect(section: str, key: str, wanted: str) -> None:
        got = parser.get(section, key, fallback=None)
        if got is None or got.strip().lower() != wanted:
            problems.add(where, f"[{section}] {key} must be {wanted}, got {got!r}")

    expect("unified_alerting", "enabled", "true")
    expect("auth", "disable_login_form", "false")
    expect("auth.anonymous", "enabled", "false")
    expect("users", "allow_sign_up", "false")
    expect("security", "cookie_secure", "true")
    expect("analytics", "reporting_enabled", "false")
    expect("analytics", "check_for_updates", "false")
    expect("analytics", "check_for_plugin_updates", "false")
    root_url = parser.get("server", "root_url", fallback="")
    if not root_url.startswith("https://"):
        problems.add(where, f"[server] root_url must be the https:// address nginx serves, got {root_url!r}")
    home = parser.get("dashboards", "default_home_dashboard_path", fallback="")
    host_home = _host_path(home, mounts) if home else None
    if host_home is None or not host_home.is_file():
        problems.add(
            where, f"[dashboards] default_home_dashboard_path {home!r} is not a mounted dashboard file"
        )
    for section in parser.sections():
        for key, value in parser.items(section):
            if key in {"password", "secret_key", "client_secret", "admin_password"} and value:
                problems.add(
                    where, f"[{section}] {key} is in the file: pass it as GF_..._{key.upper()}__FILE"
                )


def _check_datasources(config_dir: Path, problems: Problems) -> dict[str, str]:
    """Checks datasources/*.yaml; returns uid -> type of what they provision."""
    provisioned: dict[str, str] = {}
    defaults = []
    for where, document in _load_yaml_dir(config_dir / "provisioning" / "datasources", problems):
        entries = document.get("datasources") or []
        if not isinstance(entries, list):
            problems.add(where, "datasources must be a list")
            continue
        for index, entry in enumerate(entries):
            here = f"{where} datasources[{index}]"
            for key in ("name", "type", "uid", "url"):
                if not entry.get(key):
                    problems.add(here, f"{key} is required")
            if entry.get("access", "proxy") not in {"proxy", "direct"}:
                problems.add(here, f"access must be proxy or direct, got {entry.get('access')!r}")
            if entry.get("uid") in provisioned:
                problems.add(here, f"uid {entry['uid']!r} is provisioned twice")
            provisioned[entry.get("uid", "")] = entry.get("type", "")
            if entry.get("isDefault"):
                defaults.append(entry.get("uid"))
            for key, value in (entry.get("secureJsonData") or {}).items():
                if not FILE_REF.fullmatch(str(value).split(" ")[-1]):
                    problems.add(here, f"secureJsonData.{key} must come from a secret file ($__file{{...}})")
            if entry.get("type") == INFLUXDB.type:
                json_data = entry.get("jsonData") or {}
                if json_data.get("version") != "InfluxQL":
                    problems.add(here, "jsonData.version must be InfluxQL (docs/dashboards.md says why)")
                if not json_data.get("dbName"):
                    problems.add(
                        here, "jsonData.dbName is required for InfluxQL (top-level database is deprecated)"
                    )
    if len(defaults) > 1:
        problems.add("datasources", f"more than one isDefault: {defaults}")
    for ds in PROVISIONED:
        if provisioned.get(ds.uid) != ds.type:
            problems.add(
                "datasources",
                f"the dashboards need uid {ds.uid!r} of type {ds.type!r}; "
                f"provisioned: {provisioned.get(ds.uid)!r}",
            )
    return provisioned


def _dashboard_datasource_uids(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        ref = node.get("datasource")
        if isinstance(ref, Mapping) and isinstance(ref.get("uid"), str):
            yield ref["uid"]
        for value in node.values():
            yield from _dashboard_datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            yield from _dashboard_datasource_uids(value)


def _check_dashboard_providers(
    config_dir: Path, mounts: Mapping[str, Path], provisioned: Mapping[str, str], problems: Problems
) -> None:
    names: set[str] = set()
    seen_uids: dict[str, str] = {}
    for where, document in _load_yaml_dir(config_dir / "provisioning" / "dashboards", problems):
        for index, provider in enumerate(document.get("providers") or []):
            here = f"{where} providers[{index}]"
            name = provider.get("name")
            if not name:
                problems.add(here, "name is required")
            elif name in names:
                problems.add(here, f"provider name {name!r} is used twice")
            names.add(name)
            if provider.get("type", "file") != "file":
                problems.add(here, f"type must be file, got {provider.get('type')!r}")
            options = provider.get("options") or {}
            if options.get("foldersFromFilesStructure") and (
                provider.get("folder") or provider.get("folderUid")
            ):
                problems.add(here, "foldersFromFilesStructure needs folder and folderUid empty")
            path = options.get("path")
            host = _host_path(path, mounts) if path else None
            if host is None or not host.is_dir():
                problems.add(here, f"options.path {path!r} is not a mounted directory")
                continue
            files = sorted(host.glob("*.json"))
            if not files:
                problems.add(here, f"options.path {path!r} holds no dashboard")
            for file in files:
                try:
                    model = json.loads(file.read_text(encoding="utf-8"))
                except json.JSONDecodeError as error:
                    problems.add(str(file), f"not JSON: {error}")
                    continue
                dash_uid = model.get("uid")
                if dash_uid in seen_uids:
                    problems.add(
                        str(file),
                        f"dashboard uid {dash_uid!r} is also provisioned from {seen_uids[dash_uid]}",
                    )
                seen_uids[dash_uid] = str(file)
                for ds_uid in set(_dashboard_datasource_uids(model)):
                    if (
                        ds_uid not in provisioned
                        and ds_uid not in BUILTIN_DATASOURCE_UIDS
                        and "$" not in ds_uid
                    ):
                        problems.add(
                            str(file), f"a panel uses datasource uid {ds_uid!r}, which is not provisioned"
                        )
    if not names:
        problems.add("dashboards", "no dashboard provider is provisioned")


def _influxql_names(query: str) -> tuple[list[tuple[str, str, str]], set[str]]:
    """(bucket, retention policy, measurement) of every FROM, and every other double-quoted identifier."""
    text = SINGLE_QUOTED.sub("''", query)
    sources = INFLUX_SOURCE.findall(text)
    aliases = set(INFLUX_ALIAS.findall(text))
    without_sources = INFLUX_SOURCE.sub("FROM", text)
    identifiers = set(QUOTED_IDENT.findall(without_sources)) - aliases
    return sources, identifiers


def check_influxql(query: str) -> list[str]:
    """Names in an InfluxQL query that the collectors' schema does not define (empty when it is sound)."""
    sources, identifiers = _influxql_names(query)
    if not sources:
        return ['no FROM "bucket"."autogen"."measurement" (queries name their bucket fully)']
    problems = []
    allowed: set[str] = set()
    for bucket, policy, name in sources:
        measurement = MEASUREMENTS.get(name)
        if measurement is None:
            problems.append(f"measurement {name!r} is not in the schema")
            continue
        if bucket != measurement.bucket:
            problems.append(f"{name} lives in bucket {measurement.bucket!r}, not {bucket!r}")
        if policy != queries.RETENTION_POLICY:
            problems.append(f"retention policy must be {queries.RETENTION_POLICY!r}, got {policy!r}")
        allowed |= set(measurement.tags) | set(measurement.fields)
    for identifier in sorted(identifiers - allowed):
        problems.append(f"{identifier!r} is neither a tag nor a field of {[s[2] for s in sources]}")
    return problems


def _check_rule(
    here: str, rule: Mapping[str, Any], provisioned: Mapping[str, str], problems: Problems
) -> None:
    for key in ("uid", "title", "condition", "data"):
        if not rule.get(key):
            problems.add(here, f"{key} is required")
    if rule.get("uid") and not RULE_UID.match(str(rule["uid"])):
        problems.add(here, f"uid {rule['uid']!r} must be 1-40 letters, digits, - or _")
    if rule.get("for") and not DURATION.match(str(rule["for"])):
        problems.add(here, f"for {rule['for']!r} is not a duration")
    if rule.get("noDataState", "NoData") not in NO_DATA_STATES:
        problems.add(here, f"noDataState {rule['noDataState']!r} is not one of {sorted(NO_DATA_STATES)}")
    if rule.get("execErrState", "Error") not in EXEC_ERR_STATES:
        problems.add(here, f"execErrState {rule['execErrState']!r} is not one of {sorted(EXEC_ERR_STATES)}")
    data = rule.get("data") or []
    ref_ids = [query.get("refId") for query in data]
    if len(set(ref_ids)) != len(ref_ids):
        problems.add(here, f"refIds repeat: {ref_ids}")
    if rule.get("condition") and rule["condition"] not in ref_ids:
        problems.add(here, f"condition {rule['condition']!r} is not one of the refIds {ref_ids}")
    for query in data:
        where = f"{here} data[{query.get('refId')}]"
        ds_uid = query.get("datasourceUid")
        model = query.get("model") or {}
        if ds_uid == EXPRESSION_UID:
            kind = model.get("type")
            if kind not in EXPRESSION_TYPES:
                problems.add(where, f"expression type {kind!r} is not one of {sorted(EXPRESSION_TYPES)}")
            expression = _expanded(str(model.get("expression", "")))
            refs = MATH_REF.findall(expression) if kind == "math" else [expression]
            for ref in refs:
                if ref not in ref_ids or ref == query.get("refId"):
                    problems.add(where, f"expression refers to {ref!r}, not another refId of {ref_ids}")
            continue
        if ds_uid not in provisioned:
            problems.add(where, f"datasourceUid {ds_uid!r} is not provisioned")
            continue
        relative = query.get("relativeTimeRange") or {}
        if not isinstance(relative.get("from"), int) or relative.get("from", 0) <= relative.get("to", 0):
            problems.add(where, "relativeTimeRange needs from > to, in seconds")
        if provisioned[ds_uid] == INFLUXDB.type:
            text = _expanded(str(model.get("query", "")))
            if "$timeFilter" not in text:
                problems.add(where, "an InfluxQL rule query needs $$timeFilter (the rule's time range)")
            for problem in check_influxql(text):
                problems.add(where, problem)


def _check_alerting(config_dir: Path, provisioned: Mapping[str, str], problems: Problems) -> None:
    contact_points: set[str] = set()
    receiver_uids: set[str] = set()
    defined_templates: set[str] = set()
    used_templates: list[tuple[str, str]] = []
    rule_uids: set[str] = set()
    policies: list[tuple[str, Mapping[str, Any]]] = []
    for where, document in _load_yaml_dir(config_dir / "provisioning" / "alerting", problems):
        for key in document.keys() - ALERTING_KEYS:
            problems.add(where, f"unknown top-level key {key!r}")
        for index, template in enumerate(document.get("templates") or []):
            here = f"{where} templates[{index}]"
            if not template.get("name") or not template.get("template"):
                problems.add(here, "name and template are required")
                continue
            defined_templates |= set(re.findall(r'\{\{-?\s*define\s+"([^"]+)"', template["template"]))
        for index, point in enumerate(document.get("contactPoints") or []):
            here = f"{where} contactPoints[{index}]"
            if not point.get("name"):
                problems.add(here, "name is required")
            contact_points.add(point.get("name"))
            receivers = point.get("receivers") or []
            if not receivers:
                problems.add(here, "receivers must not be empty")
            for number, receiver in enumerate(receivers):
                spot = f"{here} receivers[{number}]"
                kind, settings = receiver.get("type"), receiver.get("settings") or {}
                if not receiver.get("uid"):
                    problems.add(spot, "uid is required")
                elif receiver["uid"] in receiver_uids:
                    problems.add(spot, f"receiver uid {receiver['uid']!r} is used twice")
                receiver_uids.add(receiver.get("uid"))
                if kind not in RECEIVER_REQUIRED_SETTINGS:
                    problems.add(spot, f"type {kind!r} is not one of {sorted(RECEIVER_REQUIRED_SETTINGS)}")
                    continue
                if not settings:
                    problems.add(spot, "settings must not be empty")
                for key in RECEIVER_REQUIRED_SETTINGS[kind]:
                    if not settings.get(key):
                        problems.add(spot, f"{kind} needs settings.{key}")
                for key in SECRET_SETTINGS & settings.keys():
                    if not FILE_REF.fullmatch(str(settings[key])):
                        problems.add(spot, f"settings.{key} must come from a secret file ($__file{{...}})")
                for _, value in _strings(settings):
                    used_templates += [(spot, name) for name in re.findall(r'template\s+"([^"]+)"', value)]
        policies += [
            (f"{where} policies[{i}]", policy) for i, policy in enumerate(document.get("policies") or [])
        ]
        for index, group in enumerate(document.get("groups") or []):
            here = f"{where} groups[{index}]"
            for key in ("name", "folder", "interval"):
                if not group.get(key):
                    problems.add(here, f"{key} is required")
            if group.get("interval") and not DURATION.match(str(group["interval"])):
                problems.add(here, f"interval {group['interval']!r} is not a duration")
            for number, rule in enumerate(group.get("rules") or []):
                spot = f"{here} rules[{number}]"
                _check_rule(spot, rule, provisioned, problems)
                if rule.get("uid") in rule_uids:
                    problems.add(spot, f"rule uid {rule['uid']!r} is used twice")
                rule_uids.add(rule.get("uid"))
                receiver = (rule.get("notification_settings") or {}).get("receiver")
                if receiver:
                    policies.append((spot, {"receiver": receiver}))
    for spot, name in used_templates:
        if name not in defined_templates:
            problems.add(spot, f"uses template {name!r}, which no provisioned template defines")

    def check_policy(spot: str, policy: Mapping[str, Any]) -> None:
        if policy.get("receiver") and policy["receiver"] not in contact_points:
            problems.add(spot, f"receiver {policy['receiver']!r} is not a provisioned contact point")
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if policy.get(key) and not DURATION.match(str(policy[key])):
                problems.add(spot, f"{key} {policy[key]!r} is not a duration")
        for number, route in enumerate(policy.get("routes") or []):
            check_policy(f"{spot} routes[{number}]", route)

    for spot, policy in policies:
        check_policy(spot, policy)


def validate(config_dir: Path, mounts: Mapping[str, Path]) -> list[str]:
    """Problems in grafana.ini and provisioning/ under `config_dir` (mounted at /etc/grafana); [] if none.

    `mounts` maps container paths to the host directories behind them, so dashboard paths can be resolved.
    """
    mounts = {str(CONTAINER_CONFIG_DIR): config_dir, **mounts}
    problems = Problems()
    _check_ini(config_dir, mounts, problems)
    provisioned = _check_datasources(config_dir, problems)
    _check_dashboard_providers(config_dir, mounts, provisioned, problems)
    _check_alerting(config_dir, provisioned, problems)
    return list(problems)


# --- Command line ------------------------------------------------------------------------------------------


def _mount(text: str) -> tuple[str, Path]:
    container, sep, host = text.partition("=")
    if not sep or not container.startswith("/") or not host:
        raise argparse.ArgumentTypeError(f"{text!r}: expected CONTAINER_PATH=HOST_DIR")
    return container, Path(host)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketdash_dashboards.provisioning", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("contract", help="write the role's contract variables")
    make.add_argument("--out", type=Path, default=DEFAULT_CONTRACT, help="default: %(default)s")
    make.add_argument("--check", action="store_true", help="change nothing; exit 1 if the file is stale")
    check = commands.add_parser("validate", help="check rendered grafana.ini and provisioning files")
    check.add_argument("config_dir", type=Path, help="the directory mounted at /etc/grafana")
    check.add_argument("--mount", type=_mount, action="append", default=[], help="CONTAINER_PATH=HOST_DIR")
    args = parser.parse_args(argv)
    if args.command == "contract":
        wanted = contract_text()
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
        if args.check:
            if current != wanted:
                print(
                    f"stale: {args.out}; regenerate with: "
                    "python -m marketdash_dashboards.provisioning contract"
                )
                return 1
            return 0
        if current != wanted:
            args.out.write_text(wanted, encoding="utf-8")
            print(f"wrote {args.out}")
        return 0
    if not args.config_dir.is_dir():
        parser.error(f"{args.config_dir} is not a directory")
    problems = validate(args.config_dir, dict(args.mount))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
