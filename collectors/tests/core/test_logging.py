import io
import json
import logging

import httpx

from marketdash.core.logging import configure_logging


def test_each_record_is_one_json_object_with_its_extra_fields():
    stream = io.StringIO()
    configure_logging("market", "debug", stream=stream)

    logging.getLogger("marketdash.market.stream").info(
        "reconnected to %s", "binance", extra={"exchange": "binance", "attempt": 3}
    )

    entry = json.loads(stream.getvalue())
    assert entry["service"] == "market"
    assert entry["level"] == "info"
    assert entry["event"] == "reconnected to binance"
    assert entry["exchange"] == "binance"
    assert entry["attempt"] == 3
    assert entry["ts"].endswith("+00:00")


def test_exceptions_are_kept_in_the_same_line():
    stream = io.StringIO()
    configure_logging("news", stream=stream)

    try:
        raise ValueError("feed is not XML")
    except ValueError:
        logging.getLogger("marketdash.news").exception("parse failed")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "ValueError: feed is not XML" in json.loads(lines[0])["exception"]


def test_configuring_twice_does_not_duplicate_lines():
    stream = io.StringIO()
    configure_logging("api", stream=stream)
    configure_logging("api", stream=stream)

    logging.getLogger("x").warning("once")

    assert len(stream.getvalue().splitlines()) == 1


def test_request_urls_logged_by_httpx_never_reach_the_log():
    """A Telegram bot token travels in the URL's path; httpx would log it at INFO."""
    stream = io.StringIO()
    configure_logging("alert-engine", "info", stream=stream)
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    with httpx.Client(transport=transport) as client:
        client.post("https://api.telegram.org/bot123456:SECRET/sendMessage")
    logging.getLogger("httpx").warning("a warning of httpx's still shows")
    assert "SECRET" not in stream.getvalue()
    assert "a warning of httpx's still shows" in stream.getvalue()
