"""Watchlist and alert-rules API (FastAPI + psycopg 3): owns the bloomberg_config schema."""
