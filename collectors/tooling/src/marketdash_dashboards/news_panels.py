"""News (R3.4): headlines about $asset, newest first, a sentiment icon each, a click opening the article."""

# Query text here is built from the schema's constant names for Grafana to send, never from input.
# ruff: noqa: S608

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models.common import GraphDrawStyle
from grafana_foundation_sdk.models.dashboard import DataTransformerConfig, DynamicConfigValue

from marketdash.core.schema import NEWS_MENTION

from .palette import Palette
from .panels import by_thresholds, data_table, gain_loss, sentiment_icons
from .queries import influxql, name, source

# news_mention has one point per (item, asset), so filtering by the `symbol` tag needs no string search.
FEED = (
    f"SELECT {name(NEWS_MENTION, 'sentiment')} AS sentiment, {name(NEWS_MENTION, 'title')} AS title,"
    f" {name(NEWS_MENTION, 'url')} AS url, {name(NEWS_MENTION, 'source')} AS source"
    f" FROM {source(NEWS_MENTION)} WHERE {name(NEWS_MENTION, 'symbol')} = '$asset' AND $timeFilter"
    " ORDER BY time DESC LIMIT 50"
)


def news_feed(p: Palette) -> table.Panel:
    link = dash.DashboardLink("Open the article").url("${__data.fields.url}").target_blank(True)
    return (
        data_table(p, "News · $asset")
        .with_target(influxql("NEWS", FEED, table=True))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={"indexByName": {"Time": 0, "sentiment": 1, "title": 2, "source": 3}},
            )
        )
        # Hidden, not removed: the title's link still reads it through ${__data.fields.url}.
        .override_by_name("url", [DynamicConfigValue("custom.hidden", True)])
        .override_by_name("sentiment", [DynamicConfigValue("mappings", sentiment_icons(p)), _width(36)])
        .override_by_name("Time", [DynamicConfigValue("unit", "dateTimeFromNow"), _width(90)])
        .override_by_name("source", [_width(90)])
        .override_by_name("title", [DynamicConfigValue("links", [link.build()])])
    )


def _width(pixels: int) -> DynamicConfigValue:
    return DynamicConfigValue("custom.width", pixels)


def sentiment_trend(p: Palette) -> timeseries.Panel:
    query = (
        f"SELECT mean({name(NEWS_MENTION, 'sentiment')}) AS sentiment FROM {source(NEWS_MENTION)}"
        f" WHERE {name(NEWS_MENTION, 'symbol')} = '$asset' AND $timeFilter"
        " GROUP BY time($timeframe) fill(none)"
    )
    return (
        timeseries.Panel()
        .title("News sentiment · $asset")
        .with_target(influxql("SENTIMENT", query))
        .color_scheme(by_thresholds())
        .thresholds(gain_loss(p))
        .min(-1)
        .max(1)
        .draw_style(GraphDrawStyle.BARS)
    )
