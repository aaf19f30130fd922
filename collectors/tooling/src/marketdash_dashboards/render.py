"""Every dashboard in every look, as the JSON text Grafana provisions (stable: sorted keys, fixed ids)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from . import deep_dive, infra_monitor, main_dashboard, portfolio
from .frame import DEEP_DIVE, INFRA, MAIN, PORTFOLIO, Board
from .palette import PALETTES

BUILDERS: dict[Board, Callable[..., Dashboard]] = {
    MAIN: main_dashboard.build,
    DEEP_DIVE: deep_dive.build,
    PORTFOLIO: portfolio.build,
    INFRA: infra_monitor.build,
}


def dashboards() -> dict[str, dict[str, Any]]:
    """File name -> dashboard model, e.g. `main-classic.json`."""
    out: dict[str, dict[str, Any]] = {}
    for board, build in BUILDERS.items():
        for p in PALETTES:
            model = json.loads(json.dumps(build(p).build(), cls=JSONEncoder))
            # Panel ids fixed by position in the list: links like /d/uid?viewPanel=N stay valid across runs.
            for number, panel in enumerate(model.get("panels", []), start=1):
                panel["id"] = number
                _infer_datasource(panel)
            out[f"{board.key}-{p.key}.json"] = model
    return out


def _infer_datasource(panel: dict[str, Any]) -> None:
    """A panel names the datasource its targets share, as Grafana's editor would save it."""
    if panel.get("datasource") is not None or not panel.get("targets"):
        return
    refs = {json.dumps(target["datasource"], sort_keys=True) for target in panel["targets"]}
    if len(refs) != 1:
        raise ValueError(f"panel {panel.get('title')!r} mixes datasources: make it explicitly Mixed")
    panel["datasource"] = json.loads(refs.pop())


def to_text(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    return {filename: to_text(model) for filename, model in dashboards().items()}


def stale(out_dir: Path) -> list[str]:
    """Files in `out_dir` that differ from, are missing from, or are unknown to the generator's output."""
    wanted = rendered()
    present = {path.name: path.read_text(encoding="utf-8") for path in out_dir.glob("*.json")}
    return sorted(name for name in wanted.keys() | present.keys() if wanted.get(name) != present.get(name))


def write(out_dir: Path) -> list[str]:
    """Write every dashboard and delete JSON the generator no longer makes; returns the names changed."""
    changed = stale(out_dir)
    wanted = rendered()
    for filename in changed:
        path = out_dir / filename
        if filename in wanted:
            path.write_text(wanted[filename], encoding="utf-8")
        else:
            path.unlink()
    return changed
