import psycopg
from api_fixtures import api_settings, running_app
from prometheus_client import REGISTRY

from marketdash_testing.servers import free_port

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


async def test_probes_and_metrics_of_a_healthy_api(api_client):
    assert (await api_client.get("/healthz")).json() == {"status": "ok"}
    ready = await api_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    # Labelled by route template, not by URL: one series however many ids are asked for.
    labels = {"method": "GET", "route": "/api/watchlists/{id}", "status": "401"}
    before = REGISTRY.get_sample_value("marketdash_api_requests_total", labels) or 0.0
    await api_client.get("/api/watchlists/7")
    await api_client.get("/api/watchlists/8")
    assert REGISTRY.get_sample_value("marketdash_api_requests_total", labels) == before + 2
    metrics = await api_client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'route="/api/watchlists/{id}",status="401"}' in metrics.text
    assert 'marketdash_api_request_duration_seconds_count{method="GET",route="/readyz"}' in metrics.text


async def test_not_ready_until_migrated_and_when_a_migration_is_pending(postgres_db, migrated_db):
    async with running_app(api_settings(postgres_db)) as api_client:
        assert (await api_client.get("/healthz")).status_code == 200
        unmigrated = await api_client.get("/readyz")
        assert unmigrated.status_code == 503
        assert "schema_migrations" in unmigrated.json()["reason"]
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE name = '0007_portfolio_positions'")
    async with running_app(api_settings(migrated_db)) as api_client:
        pending = await api_client.get("/readyz")
        assert pending.status_code == 503
        assert pending.json()["reason"] == "migrations pending: ['0007_portfolio_positions']"


async def test_database_outage_gives_503_not_500():
    nowhere = f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1"
    async with running_app(api_settings(nowhere, pool_timeout_seconds=0.5)) as api_client:
        assert (await api_client.get("/healthz")).status_code == 200
        assert (await api_client.get("/readyz")).status_code == 503
        response = await api_client.post("/api/auth/token", json={"username": "a", "password": "b"})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"


async def test_malformed_bodies_get_4xx_and_no_input_is_echoed(api_team):
    headers = {**api_team.alice.headers, "Content-Type": "application/json"}
    for content, status in (
        (b"{", 422),
        (b"\xff\xfe not utf-8", 422),
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (b'"just a string"', 422),
    ):
        response = await api_team.client.post("/api/layouts", content=content, headers=headers)
        assert response.status_code == status, content[:20]
    secret = "my real password\x00"
    refused = await api_team.client.post("/api/auth/token", json={"username": "alice", "password": secret})
    assert refused.status_code == 422
    assert "my real password" not in refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "password"]


async def test_openapi_is_published_with_bearer_auth_and_every_roadmap_endpoint(api_client):
    schema = (await api_client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token from POST /api/auth/token",
    }
    paths = schema["paths"]
    for path, method in (
        ("/watchlist", "post"),
        ("/watchlist/{user_id}", "get"),
        ("/api/watchlists/{id}", "get"),
        ("/api/watchlists", "post"),
        ("/api/watchlists/{id}", "put"),
        ("/api/watchlists/{id}", "delete"),
        ("/api/assets/search", "get"),
    ):
        assert method in paths[path], (method, path)
    assert (await api_client.get("/docs")).status_code == 200
