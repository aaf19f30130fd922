from api_fixtures import add_user, api_settings, login, running_app

from marketdash.api.ratelimit import RateLimiter
from marketdash_testing.api_server import PASSWORD

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_one_request_per_interval():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)  # one a second, bursts of 60
    assert [limiter.hit("a") for _ in range(60)] == [0] * 60
    assert limiter.hit("a") == 1
    assert limiter.hit("b") == 0  # keys are independent
    clock.now += 1.0
    assert limiter.hit("a") == 0
    assert limiter.hit("a") == 1


def test_retry_after_is_the_wait_for_the_next_token_in_whole_seconds():
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)  # a token every 30 s
    assert limiter.hit("a") == 0
    assert limiter.hit("a") == 0
    assert limiter.hit("a") == 30
    clock.now += 29.5
    assert limiter.hit("a") == 1


def test_memory_is_bounded_by_forgetting_idle_and_oldest_keys():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock, max_keys=100)
    for n in range(1000):
        limiter.hit(f"spoofed-{n}")
    assert len(limiter._buckets) == 100
    clock.now += 61.0  # every bucket refilled: nothing worth keeping
    limiter.hit("fresh")
    assert list(limiter._buckets) == ["fresh"]


async def test_per_user_limit_answers_429_with_retry_after(migrated_db):
    async with running_app(api_settings(migrated_db, rate_limit_user_per_minute=3)) as client:
        await add_user(migrated_db, "alice")
        await add_user(migrated_db, "bob")
        alice, bob = await login(client, "alice"), await login(client, "bob")
        statuses = [(await client.get("/api/me", headers=alice)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await client.get("/api/me", headers=alice)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) == 20
        assert "rate limit exceeded (user)" in refused.json()["detail"]
        assert (await client.get("/api/me", headers=bob)).status_code == 200  # per user
        metrics = (await client.get("/metrics")).text
        assert 'marketdash_api_rate_limited_total{scope="user"}' in metrics


async def test_per_ip_limit_covers_anonymous_requests_but_not_probes(migrated_db):
    async with running_app(api_settings(migrated_db, rate_limit_ip_per_minute=5)) as client:
        statuses = [(await client.get("/api/assets")).status_code for _ in range(6)]
        assert statuses == [401] * 5 + [429]
        refused = await client.post("/api/auth/token", json={"username": "a", "password": "b"})
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) == 12
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(probe)).status_code == 200


async def test_login_attempts_have_their_own_stricter_limit(migrated_db):
    async with running_app(api_settings(migrated_db, rate_limit_login_per_minute=2)) as client:
        await add_user(migrated_db, "alice")
        wrong = {"username": "alice", "password": "guess"}
        assert [(await client.post("/api/auth/token", json=wrong)).status_code for _ in range(3)] == [
            401,
            401,
            429,
        ]
        right = await client.post("/api/auth/token", json={"username": "alice", "password": PASSWORD})
        assert right.status_code == 429  # even the right password: guessing must not get through
