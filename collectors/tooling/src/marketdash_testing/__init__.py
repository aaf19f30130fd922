"""The outside world at the protocol level, for the tests and the benchmarks alike: real servers
(PostgreSQL, InfluxDB 2, VictoriaMetrics) started on 127.0.0.1, local exchanges that speak Binance's, Bybit's
and Kraken's REST and websocket protocols to the real ccxt, HTTP servers for feeds, webhooks and SMTP, and
the API served as deployed. Nothing here is imported by the services; the collectors image does not carry it.
"""
