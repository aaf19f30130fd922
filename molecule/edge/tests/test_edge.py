"""The edge on a converged target, seen from outside: certificate, TLS profile, redirect, headers,
routing, limits, bans and the open ports."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from marketdash_dashboards.traffic import of_directory

LIVE = "/etc/letsencrypt/live"
# The digest of the nginx.conf nginx last took (the edge role's reload script writes it).
LOADED = "/run/bloomberg-nginx.loaded"
REPO = Path(__file__).resolve().parents[3]
SSLYZE = REPO / ".cache" / "sslyze-venv" / "bin" / "sslyze"
ROLE_DEFAULTS = yaml.safe_load((REPO / "roles" / "edge" / "defaults" / "main.yml").read_text())
DASHBOARD_TRAFFIC = of_directory(REPO / "files" / "grafana" / "dashboards")


def served_fingerprint(prober, edge) -> str:
    shown = prober.run(
        f"echo | openssl s_client -connect {edge.address}:443 -servername {edge.domain} 2>/dev/null"
        " | openssl x509 -noout -fingerprint -sha256",
        timeout=20,
    )
    assert shown.rc == 0, shown.stderr
    return shown.stdout.strip()


def test_pebble_issued_the_certificate_that_nginx_serves(host, edge, prober):
    issuer = host.run(f"openssl x509 -in {LIVE}/{edge.domain}/cert.pem -noout -issuer")
    assert issuer.rc == 0, issuer.stderr
    assert "Pebble" in issuer.stdout
    issued = host.run(f"openssl x509 -in {LIVE}/{edge.domain}/cert.pem -noout -fingerprint -sha256")
    assert served_fingerprint(prober, edge) == issued.stdout.strip()


def test_the_chain_verifies_against_pebbles_root(edge, prober):
    answer = prober.run(edge.curl("-o /dev/null -w '%{http_code} %{ssl_verify_result}'"))
    assert answer.rc == 0, answer.stderr
    assert answer.stdout.split()[1] == "0"


def test_renewal_dry_run_succeeds_against_the_configured_server(host, edge):
    # The server comes from cli.ini, as for the timer's renewals; no --server here.
    renew = host.run(
        f"REQUESTS_CA_BUNDLE={edge.acme_ca_bundle} certbot renew --dry-run --no-random-sleep-on-renew 2>&1"
    )
    assert renew.rc == 0, renew.stdout
    assert "all simulated renewals succeeded" in renew.stdout.lower()


def test_renewal_runs_from_a_timer_with_a_reload_hook(host):
    assert host.service("certbot.timer").is_enabled
    assert host.service("certbot.timer").is_running
    hook = host.file("/etc/letsencrypt/renewal-hooks/deploy/50-reload-nginx")
    assert hook.mode & 0o111
    assert "exec /usr/local/sbin/bloomberg-nginx-reload" in hook.content_string


def test_a_reload_that_nginx_refuses_fails_and_the_old_configuration_keeps_serving(host, edge, prober):
    """`nginx -t` passes a rate-limit zone given another key; the running master refuses it at reload."""
    conf = "/etc/nginx/nginx.conf"
    master = host.run("cat /run/nginx.pid").stdout.strip()
    host.run(f"cp {conf} /run/edge-test-nginx.conf")
    try:
        changed = host.run(
            f"sed -i 's/limit_req_zone $edge_rate_key /limit_req_zone $binary_remote_addr /' {conf}"
            f" && grep -c 'limit_req_zone $binary_remote_addr zone=edge_requests_per_client' {conf}"
        )
        assert changed.stdout.strip() == "1", changed.stdout + changed.stderr
        assert host.run("nginx -t -q").rc == 0
        refused = host.run("/usr/local/sbin/bloomberg-nginx-reload")
        assert refused.rc != 0
        assert "refused the new configuration" in refused.stderr
        assert 'uses the "$binary_remote_addr" key' in refused.stderr
        # So does the unit's reload, which operators and certbot use.
        assert host.run("systemctl reload nginx").rc != 0
        # What nginx runs is not the file: the edge role's next run reloads again instead of passing.
        assert host.run(f"sha256sum --check --status {LOADED}").rc != 0
    finally:
        host.run(f"cp /run/edge-test-nginx.conf {conf} && rm -f /run/edge-test-nginx.conf")
    assert host.run("/usr/local/sbin/bloomberg-nginx-reload").rc == 0
    assert host.run(f"sha256sum --check --status {LOADED}").rc == 0
    assert host.run("cat /run/nginx.pid").stdout.strip() == master
    assert prober.run(edge.curl("-o /dev/null -w '%{http_code}'")).stdout in {"200", "502"}


def test_a_renewal_reloads_nginx_without_dropping_a_request_in_flight(host, edge, prober, upstreams):
    master = host.run("cat /run/nginx.pid").stdout.strip()
    before = served_fingerprint(prober, edge)
    # Held open by the stand-in API until the renewal (and its reload) is over.
    hold = edge.curl("-o /dev/null -w '%{http_code}' --max-time 60", "/market/api/hold")
    in_flight = subprocess.Popen(
        ["docker", "exec", prober.name, "sh", "-c", hold], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1)
        assert in_flight.poll() is None, "the held request ended before the renewal"
        renew = host.run(
            f"REQUESTS_CA_BUNDLE={edge.acme_ca_bundle} "
            "certbot renew --force-renewal --no-random-sleep-on-renew 2>&1"
        )
        assert renew.rc == 0, renew.stdout
        # The hook reloads in the background (graceful: old workers keep their connections).
        time.sleep(2)
        assert in_flight.poll() is None, "the reload dropped the request in flight"
    finally:
        host.run("touch /run/edge-test-release")
        status, _ = in_flight.communicate(timeout=30)
    assert status == "200"
    assert host.run("cat /run/nginx.pid").stdout.strip() == master, "nginx restarted instead of reloading"
    assert served_fingerprint(prober, edge) != before, "nginx still serves the old certificate"


def test_tls_meets_mozilla_intermediate(edge, pebble_root, tmp_path):
    root = tmp_path / "pebble-root.pem"
    root.write_text(pebble_root)
    command = [str(SSLYZE), "--mozilla_config=intermediate", f"--certinfo_ca_file={root}"]
    scan = subprocess.run(
        [*command, f"{edge.domain}:443{{{edge.address}}}"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # sslyze gives its verdict only in the exit code; the output says what failed.
    assert scan.returncode == 0, scan.stdout[-4000:]


def test_http_redirects_to_https_keeping_the_path(edge, prober):
    location = "-o /dev/null -w '%{http_code} %{redirect_url}'"
    answer = prober.run(edge.curl(location, "/d/abc?from=now-1h", "http"))
    assert answer.rc == 0, answer.stderr
    assert answer.stdout == f"301 https://{edge.domain}/d/abc?from=now-1h"


def test_the_acme_challenge_path_is_served_over_http(host, edge, prober):
    token = "edge-test-token"
    host.run(f"echo {token} > /var/www/acme/.well-known/acme-challenge/{token}")
    try:
        answer = prober.run(edge.curl("-w ' %{http_code}'", f"/.well-known/acme-challenge/{token}", "http"))
    finally:
        host.run(f"rm -f /var/www/acme/.well-known/acme-challenge/{token}")
    assert answer.stdout.split() == [token, "200"]


def response_headers(prober, edge, path: str) -> tuple[int, dict[str, list[str]]]:
    answer = prober.run(edge.curl("-o /dev/null -D -", path))
    assert answer.rc == 0, answer.stderr
    lines = answer.stdout.replace("\r", "").splitlines()
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers


@pytest.mark.parametrize("path", ["/", "/market/api/assets"])
def test_security_headers_are_sent_once_even_on_errors(edge, prober, path):
    # No upstream runs here: nginx answers 502 itself, and must still send the headers.
    status, headers = response_headers(prober, edge, path)
    assert status == 502
    expected = {
        "strict-transport-security": "max-age=63072000",
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "strict-origin-when-cross-origin",
    }
    for name, value in expected.items():
        assert headers.get(name) == [value], (name, headers.get(name))
    csp = headers["content-security-policy"]
    assert len(csp) == 1
    assert "frame-ancestors 'none'" in csp[0]
    assert "default-src 'self'" in csp[0]
    assert "camera=()" in headers["permissions-policy"][0]
    # server_tokens off: no version number.
    assert headers["server"] == ["nginx"]


def test_grafana_the_api_and_grafana_live_reach_their_upstreams(edge, prober, upstreams):
    def echo(path: str, extra: str = "") -> dict:
        answer = prober.run(edge.curl(extra, path))
        assert answer.rc == 0, answer.stderr
        return json.loads(answer.stdout)

    assert echo("/d/markets")["port"] == 3000
    # The API's prefix is removed on the way: the API sees R4.2's own paths.
    api = echo("/market/api/watchlists/1")
    assert (api["port"], api["path"]) == (8000, "/api/watchlists/1")
    # Grafana's REST API keeps /api/ (users exist in both: Grafana must win).
    assert (echo("/api/users")["port"], echo("/api/users")["path"]) == (3000, "/api/users")
    # Browsers open websockets over HTTP/1.1 (nginx 1.22 has no websockets over HTTP/2).
    live = echo("/api/live/ws", "--http1.1 -H 'Connection: Upgrade' -H 'Upgrade: websocket'")
    assert live["port"] == 3000
    assert live["headers"]["Upgrade"] == "websocket"
    assert live["headers"]["Connection"].lower() == "upgrade"
    assert api["headers"]["X-Forwarded-Proto"] == "https"
    assert api["headers"]["X-Real-IP"] == prober.address
    # The upstream's own X-Frame-Options is replaced by the edge's.
    _, headers = response_headers(prober, edge, "/d/markets")
    assert headers["x-frame-options"] == ["DENY"]


@pytest.mark.parametrize("path", ["/metrics", "/market/metrics", "/market/readyz"])
def test_operational_endpoints_stay_off_the_internet(edge, prober, upstreams, path):
    # The upstreams answer every path: a 404 comes from the edge itself.
    answer = prober.run(edge.curl("-o /dev/null -w '%{http_code}'", path))
    assert answer.stdout == "404", (path, answer.stdout, answer.stderr)


def test_the_apis_liveness_stays_reachable_for_uptime_checks(edge, prober, upstreams):
    answer = prober.run(edge.curl("", "/market/healthz"))
    assert answer.rc == 0, answer.stderr
    assert json.loads(answer.stdout)["path"] == "/healthz"


def test_an_oversized_request_body_gets_413(edge, prober):
    upload = edge.curl("-o /dev/null -w '%{http_code}' --data-binary @/tmp/big", "/api/x")
    answer = prober.run(f"head -c 11000000 /dev/zero > /tmp/big && {upload}")
    assert answer.stdout == "413"


def test_the_market_api_takes_no_body_over_its_own_cap(edge, prober, upstreams):
    upload = edge.curl("-o /dev/null -w '%{http_code}' --data-binary @/tmp/api-body", "/market/api/layouts")
    answer = prober.run(f"head -c 2000000 /dev/zero > /tmp/api-body && {upload}")
    assert answer.stdout == "413"
    small = prober.run(
        "head -c 500000 /dev/zero > /tmp/api-small && "
        + edge.curl("-o /dev/null -w '%{http_code}' --data-binary @/tmp/api-small", "/market/api/layouts")
    )
    assert small.stdout == "200", small.stderr


def banned(host, jail: str) -> list[str]:
    """The addresses fail2ban's `jail` bans now."""
    status = host.run(f"fail2ban-client status {jail}").stdout
    return status.split("Banned IP list:")[-1].split()


def wait_for_ban(host, jail: str, address: str) -> list[str]:
    """The addresses `jail` bans once it bans `address`, or after 30 s."""
    deadline = time.monotonic() + 30
    while address not in (addresses := banned(host, jail)) and time.monotonic() < deadline:
        time.sleep(1)
    return addresses


def test_a_burst_beyond_the_limit_gets_429_and_a_ban(host, edge, prober, flooder):
    # Far more than the burst at once: the rate lets a few more through while they arrive.
    flood = ROLE_DEFAULTS["edge_rate_limit_burst"] + 200
    parallel = "-o /dev/null -w '%{http_code}\\n' --parallel --parallel-immediate --parallel-max 100"
    burst = flooder.run(edge.curl(parallel, f"/api/[1-{flood}]"), timeout=60)
    codes = burst.stdout.split()
    assert len(codes) == flood, burst.stderr
    assert codes.count("429") >= 50, Counter(codes)
    # fail2ban's nginx-limit-req jail reads the error log's "limiting requests" lines.
    assert flooder.address in wait_for_ban(host, "nginx-limit-req", flooder.address)
    shut_out = flooder.run(edge.curl("-o /dev/null --max-time 3"), timeout=20)
    assert shut_out.rc != 0
    # Only the misbehaving address: another client still gets through.
    assert prober.run(edge.curl("-o /dev/null -w '%{http_code}'")).stdout in {"200", "502"}


def browsers(client, edge, people: int, requests_each: int) -> list[str]:
    """`people` browsers, each sending `requests_each` panel queries at the same instant as streams of
    its own HTTP/2 connection; the status of every answer."""
    query = "-X POST -H 'Content-Type: application/json' -d '{}' -o /dev/null -w '%{http_code}\\n'"
    parallel = f"{query} --parallel --parallel-max 100"
    each = [
        edge.curl(parallel, f"/api/ds/query?browser={browser}&panel=[1-{requests_each}]")
        for browser in range(people)
    ]
    done = client.run(" & ".join(each) + " & wait", timeout=60)
    return done.stdout.split()


def test_ten_people_behind_one_address_on_the_main_dashboard_are_never_refused_nor_banned(
    host, edge, team, upstreams
):
    """The worst a team does: every browser refreshes and loads the heaviest dashboard at the same
    instant, then they refresh Main together, three times at its interval (request counts from the
    dashboards' JSON)."""
    people = 10
    main = next(one for one in DASHBOARD_TRAFFIC if one.uid == "md-main-classic")
    heaviest_load = max(one.on_load for one in DASHBOARD_TRAFFIC)
    at_once = heaviest_load + max(one.per_refresh for one in DASHBOARD_TRAFFIC)
    log_lines = int(host.run("wc -l < /var/log/nginx/error.log").stdout)
    codes = browsers(team, edge, people, at_once)
    started = time.monotonic()
    for refresh in range(1, 4):
        time.sleep(max(0.0, started + refresh * main.refresh_seconds - time.monotonic()))
        codes += browsers(team, edge, people, main.per_refresh)
    assert len(codes) == people * (at_once + 3 * main.per_refresh)
    assert Counter(codes) == {"200": len(codes)}
    limited = host.run(
        f"tail -n +{log_lines + 1} /var/log/nginx/error.log | grep -c 'limiting .* client: {team.address},'"
    )
    assert limited.stdout.strip() == "0", limited.stdout
    assert team.address not in banned(host, "nginx-limit-req")


@pytest.mark.parametrize(
    ("path", "attempt"),
    [
        ("/login", "-X POST -d '{}'"),
        ("/login/", "-X POST -d '{}'"),
        ("/market/api/auth/token", "-X POST -d '{}'"),
        # Grafana takes HTTP Basic credentials on its whole API.
        ("/api/org", "-u admin:guess"),
    ],
)
def test_password_guessing_is_refused_then_banned(host, edge, flooder, upstreams, path, attempt):
    guesses = 40
    post = f"{attempt} -o /dev/null -w '%{{http_code}}\\n' --parallel --parallel-immediate"
    codes = flooder.run(edge.curl(post, f"{path}?guess=[1-{guesses}]"), timeout=60).stdout.split()
    assert len(codes) == guesses
    # The burst, and at most one more from the rate while they arrive; the rest refused.
    assert codes.count("200") <= ROLE_DEFAULTS["edge_login_rate_limit_burst"] + 2, Counter(codes)
    assert codes.count("429") >= guesses - ROLE_DEFAULTS["edge_login_rate_limit_burst"] - 2, Counter(codes)
    assert flooder.address in wait_for_ban(host, "nginx-limit-req", flooder.address)


def test_loading_the_login_page_is_not_a_password_attempt(edge, prober, upstreams):
    pages = ROLE_DEFAULTS["edge_login_rate_limit_burst"] * 2
    load = "-o /dev/null -w '%{http_code}\\n' --parallel --parallel-immediate"
    codes = prober.run(edge.curl(load, f"/login?visit=[1-{pages}]")).stdout.split()
    assert Counter(codes) == {"200": pages}


def test_a_scan_finds_only_ssh_http_and_https_open(edge, prober):
    scan = prober.run(f"nmap -Pn -p- --min-rate 5000 -T4 -oG - {edge.address}", timeout=180)
    assert scan.rc == 0, scan.stderr
    ports = re.findall(r"(\d+)/open/tcp", scan.stdout)
    assert sorted(int(port) for port in ports) == [22, 80, 443], scan.stdout
