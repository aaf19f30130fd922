"""`python -m marketdash.news`: run the news feeder until SIGTERM/SIGINT."""

from marketdash.core.service import run_service
from marketdash.news.service import NewsFeeder
from marketdash.news.settings import NewsSettings

if __name__ == "__main__":
    run_service(
        "marketdash.news",
        "news",
        NewsSettings,
        NewsFeeder,
        "Poll RSS/Atom feeds, CryptoPanic and NewsAPI, score each headline's sentiment, tag the assets it "
        "names, write to InfluxDB. Settings: MARKETDASH_NEWS_* and MARKETDASH_INFLUX_* environment "
        "variables (docs/news.md).",
    )
