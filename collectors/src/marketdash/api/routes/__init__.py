"""HTTP routes, one module per concern."""

from __future__ import annotations

from typing import Any

from marketdash.api.models import Error

# Documented on every authenticated route so clients (and schemathesis) know them.
AUTHENTICATED_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "Body is not parseable JSON (or nested too deeply)"},
    401: {"model": Error, "description": "Missing, malformed, forged or expired token"},
    403: {"model": Error, "description": "The caller may not act on this user's data"},
    404: {"model": Error, "description": "No such object (or not the caller's)"},
    409: {"model": Error, "description": "Conflicts with existing data"},
    422: {"model": Error, "description": "Invalid input; the message says what"},
    429: {"model": Error, "description": "Rate limit exceeded; see Retry-After"},
    503: {"model": Error, "description": "Database unavailable"},
}
