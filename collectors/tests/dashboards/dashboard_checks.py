"""Static checks of a dashboard model; each returns the list of problems it finds (empty = fine).

They read only the JSON, so they judge the committed files whatever produced them; the tests run them on
the committed dashboards and on deliberately broken copies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from grafana_sim import is_global, queries, used_variables, walk

from marketdash.core.schema import BUCKET_MARKETS, MEASUREMENTS
from marketdash_dashboards.datasources import MIXED, PROVISIONED
from marketdash_dashboards.palette import PALETTES
from marketdash_dashboards.plugins import NATIVE_PANELS, PINNED_PLUGINS
from marketdash_dashboards.queries import RETENTION_POLICY, TIER_VARIABLE

Model = Mapping[str, Any]
_PROVISIONED = {ds.uid: ds.type for ds in PROVISIONED}


def datasource_problems(model: Model) -> list[str]:
    problems = []
    for path, node in walk(model):
        if not isinstance(node, Mapping) or not isinstance(node.get("datasource"), Mapping):
            continue
        ref = node["datasource"]
        if ref.get("uid") == MIXED.uid and ref.get("type") == MIXED.type and "targets" in node:
            continue  # each of its targets is checked on its own
        if _PROVISIONED.get(ref.get("uid")) != ref.get("type"):
            problems.append(f"{path}: datasource {dict(ref)} is not provisioned ({_PROVISIONED})")
    for panel in model.get("panels", []):
        for target in panel.get("targets", []):
            if not isinstance(target.get("datasource"), Mapping):
                problems.append(
                    f"panel {panel.get('title')!r} {target.get('refId')}: target names no datasource"
                )
        if panel.get("targets") and not isinstance(panel.get("datasource"), Mapping):
            problems.append(f"panel {panel.get('title')!r}: no panel datasource")
    return problems


def variable_problems(model: Model) -> list[str]:
    defined = {variable["name"] for variable in model.get("templating", {}).get("list", [])}
    problems = []
    for path, node in walk(model):
        if isinstance(node, str):
            for name in sorted(used_variables(node) - defined):
                if not is_global(name) or (name.startswith("tag_") and not path.endswith(".alias")):
                    problems.append(f"{path}: ${name} is used but not defined")
    return problems


def panel_type_problems(model: Model) -> list[str]:
    allowed = NATIVE_PANELS | set(PINNED_PLUGINS)
    return [
        f"panel {panel.get('title')!r}: type {panel.get('type')!r} is neither native nor a pinned plugin"
        for panel in model.get("panels", [])
        if panel.get("type") not in allowed
    ]


_QUALIFIED = re.compile(r'"(\$?\w+)"\."(\w+)"\."(\w+)"')
# "$tier" stands for the markets bucket or one of its downsampled tiers (variables.tier picks it).
_TIERED = {f"${TIER_VARIABLE}": BUCKET_MARKETS}
_SHOW_TAG_VALUES = re.compile(r'SHOW TAG VALUES ON "(\w+)" FROM "(\w+)" WITH KEY = "(\w+)"')
_QUOTED = re.compile(r'"([^"]*)"')
# After quoted names, literals, variables, numbers and aliases are taken out, only these words may remain: an
# unquoted identifier would escape the schema check, so it is reported.
_INFLUXQL_WORDS = frozenset(
    (
        "select",
        "from",
        "where",
        "and",
        "or",
        "as",
        "group",
        "by",
        "order",
        "desc",
        "asc",
        "limit",
        "fill",
        "none",
        "previous",
        "null",
        "linear",
        "time",
        "show",
        "tag",
        "values",
        "on",
        "with",
        "key",
        "first",
        "last",
        "max",
        "min",
        "sum",
        "mean",
        "count",
        "median",
        "spread",
        "stddev",
        "moving_average",
        "difference",
        "derivative",
    )
)
_NOT_IDENTIFIERS = (
    re.compile(r"'(?:[^'\\]|\\.)*'"),  # string literals
    re.compile(r"[=!]~\s*/(?:[^/\\]|\\.)*/"),  # regex literals
    re.compile(r"\$\w+"),  # Grafana variables and macros
    re.compile(r"\b\d+(?:\.\d+)?[a-z]*\b"),  # numbers and durations
    re.compile(r"\bAS\s+\w+", re.IGNORECASE),  # aliases
)


def _unquoted_identifiers(rest: str) -> set[str]:
    for pattern in _NOT_IDENTIFIERS:
        rest = pattern.sub(" ", rest)
    return {word for word in re.findall(r"[A-Za-z_]\w*", rest) if word.lower() not in _INFLUXQL_WORDS}


def influxql_schema_problems(query: str) -> list[str]:
    """Every measurement, bucket, tag and field an InfluxQL query names must be in marketdash.core.schema."""
    problems, referenced, names = [], [], set()
    rest = query
    for bucket, rp, measurement in _QUALIFIED.findall(query):
        known = MEASUREMENTS.get(measurement)
        if known is None:
            problems.append(f"measurement {measurement!r} is not in the schema")
            continue
        if _TIERED.get(bucket, bucket) != known.bucket or rp != RETENTION_POLICY:
            problems.append(f"{measurement} lives in {known.bucket}.{RETENTION_POLICY}, not {bucket}.{rp}")
        referenced.append(known)
    rest = _QUALIFIED.sub(" ", rest)
    for bucket, measurement, key in _SHOW_TAG_VALUES.findall(query):
        known = MEASUREMENTS.get(measurement)
        if known is None or known.bucket != bucket:
            problems.append(f"measurement {bucket}.{measurement} is not in the schema")
            continue
        referenced.append(known)
        names.add(key)
    rest = _SHOW_TAG_VALUES.sub(" ", rest)
    if not referenced:
        problems.append('names no measurement as "bucket"."rp"."measurement" or SHOW TAG VALUES ON … FROM …')
    names |= set(_QUOTED.findall(rest))
    declared = {name for m in referenced for name in (*m.tags, *m.fields)}
    problems += [
        f"{name!r} is not a tag or field of {[m.name for m in referenced]}" for name in names - declared
    ]
    rest = _QUOTED.sub(" ", rest)
    problems += [f"unquoted identifier {word!r}: quote it" for word in sorted(_unquoted_identifiers(rest))]
    return problems


def schema_problems(model: Model) -> list[str]:
    return [
        f"{where}: {problem}"
        for where, kind, query in queries(model)
        if kind == "influxql"
        for problem in influxql_schema_problems(query)
    ]


_COLOR = re.compile(r"#[0-9a-fA-F]{6}\b")


def palette_problems(model: Model) -> list[str]:
    """Every colour literal comes from the dashboard's own palette: one palette module, one look per file."""
    looks = [p for p in PALETTES if f"theme-{p.key}" in model.get("tags", [])]
    if len(looks) != 1:
        return [f"tags {model.get('tags')} name {len(looks)} looks, expected exactly one"]
    look = looks[0]
    allowed = {
        c.lower()
        for c in (
            look.background,
            look.text,
            look.gain,
            look.loss,
            look.flat,
            look.border,
            look.sma_fast,
            look.sma_slow,
            look.volume,
        )
    }
    problems = []
    for path, node in walk(model):
        if isinstance(node, str):
            problems += [
                f"{path}: {c} is not in {look.name}" for c in _COLOR.findall(node) if c.lower() not in allowed
            ]
    return problems


def layout_problems(model: Model) -> list[str]:
    problems, taken, ids = [], {}, set()
    for panel in model.get("panels", []):
        title = panel.get("title")
        if panel.get("id") in ids:
            problems.append(f"panel id {panel.get('id')} used twice")
        ids.add(panel.get("id"))
        pos = panel["gridPos"]
        if pos["x"] < 0 or pos["w"] < 1 or pos["x"] + pos["w"] > 24 or pos["h"] < 1:
            problems.append(f"panel {title!r}: {pos} does not fit the 24-column grid")
        cells = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        problems += [
            f"panel {title!r} overlaps {other!r}"
            for other in sorted({taken[c] for c in cells & taken.keys()})
        ]
        taken.update(dict.fromkeys(cells, title))
    return problems


def link_problems(models: Mapping[str, Model]) -> list[str]:
    uids = [model["uid"] for model in models.values()]
    problems = [f"uid {uid} used twice" for uid in set(uids) if uids.count(uid) > 1]
    titles = [model["title"] for model in models.values()]
    problems += [f"title {title!r} used twice" for title in set(titles) if titles.count(title) > 1]
    for filename, model in models.items():
        for link in model.get("links", []):
            if link["type"] == "link":
                target = re.match(r"/d/([\w-]+)", link.get("url", ""))
                if not target or target.group(1) not in uids:
                    problems.append(
                        f"{filename}: link {link['title']!r} -> {link.get('url')} reaches no dashboard"
                    )
            elif link["type"] == "dashboards":
                reached = [
                    m
                    for m in models.values()
                    if set(link["tags"]) <= set(m.get("tags", [])) and m is not model
                ]
                if not reached:
                    problems.append(
                        f"{filename}: link {link['title']!r} tags {link['tags']} reach no other dashboard"
                    )
    return problems
