"""Market feeder: crypto streams (ccxt.pro), polled markets, following the active watchlists."""
