"""The Grafana role's templates, rendered by Ansible itself, and the validator that gates them.

The role's own templates are rendered once by `ansible-playbook` (no Grafana can run here); the validator
must pass them as they are, and must catch each kind of mistake when one file is broken on purpose.
The alert rules' InfluxQL also goes through a real InfluxQL engine (Debian's influxd 1.6).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from dashboard_fixtures import COMMITTED, REPO, influxql_url  # noqa: F401 - fixture
from grafana_sim import FROM_MS, interpolate

from marketdash.core.schema import BUCKETS, CANDLE, CHANGE, TICKER
from marketdash_dashboards import provisioning

ROLE = REPO / "roles" / "grafana"
DASHBOARDS_MOUNT = "/etc/grafana-dashboards"
# Every optional part switched on, so every template branch is rendered.
TEST_VARS: dict[str, Any] = {
    "edge_domain": "dash.example.com",
    "grafana_telegram_chat_id": "-1001234567890",
    "grafana_telegram_bot_token": "123:abc",
    "grafana_alert_email_addresses": ["desk@example.com", "ops@example.com"],
    "grafana_smtp_host": "smtp.example.com:587",
    "grafana_smtp_user": "grafana",
    "grafana_smtp_password": "smtp-secret",
    "grafana_webhook_url": "https://hooks.example.com/T0/B0/x",
    "grafana_oauth_github_client_id": "gh-client",
    "grafana_oauth_github_client_secret": "gh-secret",
    "grafana_oauth_github_allowed_organizations": ["example"],
    "grafana_oauth_google_client_id": "google-client",
    "grafana_oauth_google_client_secret": "google-secret",
    "grafana_oauth_google_allowed_domains": ["example.com"],
    "grafana_alert_price_levels": [
        {"symbol": "BTC/USDT", "above": 70000, "below": 60000},
        {"symbol": "ETH/USDT", "above": 4000.5},
    ],
}

RENDER_PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files: [{defaults}, {vars}, {contract}, {test_vars}]
  tasks:
    - ansible.builtin.file:
        path: "{{{{ out }}}}/{{{{ item.dest | dirname }}}}"
        state: directory
        mode: "0700"
      loop: "{{{{ grafana_config_files | selectattr('enabled') }}}}"
    - ansible.builtin.template:
        src: "{templates}/{{{{ item.src }}}}"
        dest: "{{{{ out }}}}/{{{{ item.dest }}}}"
        mode: "0600"
      loop: "{{{{ grafana_config_files | selectattr('enabled') }}}}"
"""


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The role's grafana.ini and provisioning files as Ansible renders them, plus the dashboard folders."""
    root = tmp_path_factory.mktemp("grafana")
    test_vars = root / "test-vars.yml"
    test_vars.write_text(yaml.safe_dump(TEST_VARS))
    playbook = root / "render.yml"
    playbook.write_text(
        RENDER_PLAYBOOK.format(
            defaults=ROLE / "defaults" / "main.yml",
            vars=ROLE / "vars" / "main.yml",
            contract=ROLE / "vars" / "contract.yml",
            test_vars=test_vars,
            templates=ROLE / "templates",
        )
    )
    ansible = Path(sys.executable).parent / "ansible-playbook"
    result = subprocess.run(
        [
            str(ansible),
            *("-i", "localhost,", str(playbook)),
            *("-e", f"out={root / 'config'}", "-e", f"ansible_python_interpreter={sys.executable}"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for look in provisioning.contract()["grafana_contract_looks"]:
        (root / "dashboards" / look["key"]).mkdir(parents=True)
        for name in look["dashboards"]:
            shutil.copy(COMMITTED / name, root / "dashboards" / look["key"] / name)
    return root


@pytest.fixture
def tree(rendered: Path, tmp_path: Path) -> Path:
    """A private copy of the rendered tree, for one test to break."""
    copy = tmp_path / "tree"
    shutil.copytree(rendered, copy)
    return copy


def problems(tree: Path) -> list[str]:
    return provisioning.validate(tree / "config", {DASHBOARDS_MOUNT: tree / "dashboards"})


def edit_yaml(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, allow_unicode=True))


def edit_ini(tree: Path, old: str, new: str) -> None:
    ini = tree / "config" / "grafana.ini"
    text = ini.read_text()
    assert old in text, f"{old!r} is not in grafana.ini"
    ini.write_text(text.replace(old, new, 1))


def datasources(tree: Path) -> Path:
    return tree / "config" / "provisioning" / "datasources" / "marketdash.yaml"


def alerting(tree: Path, name: str) -> Path:
    return tree / "config" / "provisioning" / "alerting" / f"{name}.yaml"


def rules(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["groups"][0]["rules"]


def assert_caught(found: list[str], *fragments: str) -> None:
    assert found, "the validator let the broken file through"
    for fragment in fragments:
        assert any(fragment in problem for problem in found), f"no problem mentions {fragment!r}: {found}"


# --- The contract ------------------------------------------------------------------------------------------


def test_the_committed_contract_is_what_the_generator_writes() -> None:
    committed = (ROLE / "vars" / "contract.yml").read_text(encoding="utf-8")
    assert committed == provisioning.contract_text(), (
        "roles/grafana/vars/contract.yml is stale: python -m marketdash_dashboards.provisioning contract"
    )


def test_the_contract_check_command_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "contract.yml"
    stale.write_text("---\n{}\n")
    assert provisioning.main(["contract", "--out", str(stale), "--check"]) == 1
    assert provisioning.main(["contract", "--out", str(stale)]) == 0
    assert provisioning.main(["contract", "--out", str(stale), "--check"]) == 0


def test_the_contract_names_every_committed_dashboard_once() -> None:
    looks = provisioning.contract()["grafana_contract_looks"]
    listed = [name for look in looks for name in look["dashboards"]]
    assert sorted(listed) == sorted(path.name for path in COMMITTED.glob("*.json"))


# --- The role's own output passes --------------------------------------------------------------------------


def test_the_rendered_role_output_is_valid(rendered: Path) -> None:
    assert problems(rendered) == []


def test_the_rendered_files_provision_what_the_dashboards_need(rendered: Path) -> None:
    document = yaml.safe_load(datasources(rendered).read_text())
    by_uid = {entry["uid"]: entry for entry in document["datasources"]}
    assert {uid: entry["type"] for uid, entry in by_uid.items()} == {
        "influxdb": "influxdb",
        "postgres": "grafana-postgresql-datasource",
        "prometheus": "prometheus",
    }
    assert by_uid["influxdb"]["jsonData"]["version"] == "InfluxQL"
    assert by_uid["postgres"]["user"] == "grafana_reader"
    ini = (rendered / "config" / "grafana.ini").read_text()
    assert "root_url = https://dash.example.com/\n" in ini
    assert "serve_from_sub_path = false\n" in ini
    assert "default_home_dashboard_path = /etc/grafana-dashboards/classic/main-classic.json\n" in ini


def test_every_receiver_is_rendered_with_its_secret_from_a_file(rendered: Path) -> None:
    points = yaml.safe_load(alerting(rendered, "contact-points").read_text())["contactPoints"]
    receivers = {receiver["type"]: receiver["settings"] for receiver in points[0]["receivers"]}
    assert set(receivers) == {"telegram", "email", "webhook"}
    assert receivers["telegram"]["bottoken"] == "$__file{/run/secrets/grafana-telegram-bot-token}"
    assert receivers["telegram"]["chatid"] == "-1001234567890"
    assert receivers["email"]["addresses"] == "desk@example.com;ops@example.com"
    assert receivers["webhook"]["url"] == "$__file{/run/secrets/grafana-webhook-url}"
    text = "".join(path.read_text() for path in (rendered / "config").rglob("*") if path.is_file())
    for secret in ("123:abc", "smtp-secret", "hooks.example.com", "gh-secret", "google-secret"):
        assert secret not in text


def test_a_rule_per_price_bound_plus_change_and_volume(rendered: Path) -> None:
    document = yaml.safe_load(alerting(rendered, "rules").read_text())
    assert [rule["uid"] for rule in rules(document)] == [
        "md-price-above-btc-usdt",
        "md-price-below-btc-usdt",
        "md-price-above-eth-usdt",
        "md-change-pct",
        "md-volume-spike",
    ]
    below = rules(document)[1]
    threshold = next(query for query in below["data"] if query["refId"] == "C")["model"]
    assert threshold["conditions"][0]["evaluator"] == {"type": "lt", "params": [60000.0]}
    assert below["annotations"]["condition"] == 'Below {{ "\\x24" }}60000'


def test_the_notification_template_renders_the_r43_message(rendered: Path) -> None:
    template = yaml.safe_load(alerting(rendered, "templates").read_text())["templates"][0]["template"]
    assert "RESOLVED{{ else }}🚨 ALERT{{ end }}: {{ .Labels.symbol }}" in template
    assert 'Price: {{ "\\x24" }}{{ .Annotations.price }} ({{ .Annotations.change }}% in 1h)' in template
    assert "Condition: {{ .Annotations.condition }}" in template
    assert 'Time: {{ .StartsAt.UTC.Format "2006-01-02 15:04" }} UTC' in template


def test_a_channel_left_unset_is_left_out(tmp_path: Path) -> None:
    """Without any channel the contact point file is not rendered: grafana_config_files says so."""
    variables = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    contact = next(f for f in variables["grafana_config_files"] if "contact-points" in f["dest"])
    assert contact["enabled"] == "{{ grafana_contact_point_enabled }}"


# --- Each kind of mistake is caught ------------------------------------------------------------------------


def test_catches_an_ini_that_is_not_ini(tree: Path) -> None:
    (tree / "config" / "grafana.ini").write_text("[server\nroot_url = https://x/\n")
    assert_caught(problems(tree), "not readable as INI")


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("[auth.anonymous]\nenabled = false", "[auth.anonymous]\nenabled = true", "[auth.anonymous] enabled"),
        ("[unified_alerting]\nenabled = true", "[unified_alerting]\nenabled = false", "[unified_alerting]"),
        ("allow_sign_up = false", "allow_sign_up = true", "allow_sign_up"),
        ("cookie_secure = true", "cookie_secure = false", "cookie_secure"),
        ("disable_login_form = false", "disable_login_form = true", "disable_login_form"),
        ("check_for_updates = false", "check_for_updates = true", "check_for_updates"),
        ("root_url = https://", "root_url = http://", "root_url"),
        ("classic/main-classic.json", "classic/main-nowhere.json", "default_home_dashboard_path"),
        ("[security]\n", "[security]\nadmin_password = hunter2hunter2\n", "admin_password is in the file"),
    ],
)
def test_catches_an_unsafe_or_broken_grafana_ini(tree: Path, old: str, new: str, fragment: str) -> None:
    edit_ini(tree, old, new)
    assert_caught(problems(tree), fragment)


def test_catches_a_wrong_api_version(tree: Path) -> None:
    edit_yaml(datasources(tree), lambda d: d.update(apiVersion=2))
    assert_caught(problems(tree), "apiVersion must be 1")


def test_catches_a_file_that_is_not_yaml(tree: Path) -> None:
    alerting(tree, "rules").write_text("groups: [unclosed\n")
    assert_caught(problems(tree), "not YAML")


def test_catches_a_file_grafana_would_not_read(tree: Path) -> None:
    shutil.copy(datasources(tree), datasources(tree).with_suffix(".yaml.bak"))
    assert_caught(problems(tree), "only .yaml/.yml")


def test_catches_a_datasource_uid_the_dashboards_do_not_use(tree: Path) -> None:
    edit_yaml(datasources(tree), lambda d: d["datasources"][0].update(uid="influx"))
    assert_caught(problems(tree), "the dashboards need uid 'influxdb'", "datasource uid 'influxdb'")


def test_catches_a_datasource_of_the_wrong_type(tree: Path) -> None:
    edit_yaml(datasources(tree), lambda d: d["datasources"][1].update(type="postgres"))
    assert_caught(problems(tree), "'grafana-postgresql-datasource'")


def test_catches_flux_instead_of_influxql(tree: Path) -> None:
    edit_yaml(datasources(tree), lambda d: d["datasources"][0]["jsonData"].update(version="Flux"))
    assert_caught(problems(tree), "jsonData.version must be InfluxQL")


def test_catches_a_password_written_in_clear(tree: Path) -> None:
    edit_yaml(datasources(tree), lambda d: d["datasources"][1]["secureJsonData"].update(password="pw"))
    assert_caught(problems(tree), "secureJsonData.password must come from a secret file")


def test_catches_a_secret_file_outside_the_compose_secrets(tree: Path) -> None:
    edit_yaml(
        datasources(tree),
        lambda d: d["datasources"][1]["secureJsonData"].update(password="$__file{/etc/passwd}"),
    )
    assert_caught(problems(tree), "is not a Compose secret")


def test_catches_two_default_datasources(tree: Path) -> None:
    edit_yaml(datasources(tree), lambda d: d["datasources"][2].update(isDefault=True))
    assert_caught(problems(tree), "more than one isDefault")


def test_catches_a_bare_dollar_grafana_would_expand(tree: Path) -> None:
    def single_dollar(document: dict[str, Any]) -> None:
        model = rules(document)[0]["data"][0]["model"]
        model["query"] = model["query"].replace("$$timeFilter", "$timeFilter")

    edit_yaml(alerting(tree, "rules"), single_dollar)
    assert_caught(problems(tree), "bare '$'")


def test_catches_a_dashboard_path_that_is_not_mounted(tree: Path) -> None:
    path = tree / "config" / "provisioning" / "dashboards" / "marketdash.yaml"
    edit_yaml(path, lambda d: d["providers"][0]["options"].update(path="/var/lib/grafana/dashboards"))
    assert_caught(problems(tree), "is not a mounted directory")


def test_catches_an_empty_dashboard_folder(tree: Path) -> None:
    for file in (tree / "dashboards" / "light").glob("*.json"):
        file.unlink()
    assert_caught(problems(tree), "holds no dashboard")


def test_catches_two_providers_of_one_name(tree: Path) -> None:
    path = tree / "config" / "provisioning" / "dashboards" / "marketdash.yaml"
    edit_yaml(path, lambda d: d["providers"][1].update(name=d["providers"][0]["name"]))
    assert_caught(problems(tree), "is used twice")


def test_catches_a_dashboard_provisioned_twice(tree: Path) -> None:
    shutil.copy(
        tree / "dashboards" / "classic" / "main-classic.json", tree / "dashboards" / "light" / "copy.json"
    )
    assert_caught(problems(tree), "is also provisioned from")


def test_catches_a_panel_on_an_unprovisioned_datasource(tree: Path) -> None:
    path = tree / "dashboards" / "classic" / "main-classic.json"
    model = json.loads(path.read_text())
    model["panels"][1]["datasource"] = {"type": "loki", "uid": "loki"}
    path.write_text(json.dumps(model))
    assert_caught(problems(tree), "datasource uid 'loki', which is not provisioned")


def test_catches_an_unknown_receiver_type(tree: Path) -> None:
    edit_yaml(
        alerting(tree, "contact-points"),
        lambda d: d["contactPoints"][0]["receivers"][0].update(type="carrier-pigeon"),
    )
    assert_caught(problems(tree), "type 'carrier-pigeon' is not one of")


def test_catches_a_receiver_without_its_required_setting(tree: Path) -> None:
    edit_yaml(
        alerting(tree, "contact-points"),
        lambda d: d["contactPoints"][0]["receivers"][0]["settings"].pop("chatid"),
    )
    assert_caught(problems(tree), "telegram needs settings.chatid")


def test_catches_a_bot_token_in_clear(tree: Path) -> None:
    edit_yaml(
        alerting(tree, "contact-points"),
        lambda d: d["contactPoints"][0]["receivers"][0]["settings"].update(bottoken="123:abc"),
    )
    assert_caught(problems(tree), "settings.bottoken must come from a secret file")


def test_catches_a_policy_to_a_missing_contact_point(tree: Path) -> None:
    edit_yaml(alerting(tree, "contact-points"), lambda d: d["policies"][0].update(receiver="nobody"))
    assert_caught(problems(tree), "receiver 'nobody' is not a provisioned contact point")


def test_catches_a_message_using_an_undefined_template(tree: Path) -> None:
    edit_yaml(
        alerting(tree, "templates"),
        lambda d: d["templates"][0].update(template='{{ define "other" }}x{{ end }}'),
    )
    assert_caught(problems(tree), "uses template 'marketdash.message'")


def test_catches_a_rule_condition_that_is_no_query(tree: Path) -> None:
    edit_yaml(alerting(tree, "rules"), lambda d: rules(d)[0].update(condition="Z"))
    assert_caught(problems(tree), "condition 'Z' is not one of the refIds")


def test_catches_a_rule_on_an_unprovisioned_datasource(tree: Path) -> None:
    edit_yaml(alerting(tree, "rules"), lambda d: rules(d)[0]["data"][0].update(datasourceUid="influx"))
    assert_caught(problems(tree), "datasourceUid 'influx' is not provisioned")


def test_catches_an_expression_on_a_missing_query(tree: Path) -> None:
    def dangling(document: dict[str, Any]) -> None:
        condition = next(q for q in rules(document)[3]["data"] if q["refId"] == "C")
        condition["model"]["expression"] = "abs($$NOPE) > 5"

    edit_yaml(alerting(tree, "rules"), dangling)
    assert_caught(problems(tree), "expression refers to 'NOPE'")


def test_catches_a_field_the_schema_does_not_define(tree: Path) -> None:
    def renamed(document: dict[str, Any]) -> None:
        model = rules(document)[0]["data"][0]["model"]
        model["query"] = model["query"].replace('last("last")', 'last("price")')

    edit_yaml(alerting(tree, "rules"), renamed)
    assert_caught(problems(tree), "'price' is neither a tag nor a field of ['ticker']")


def test_catches_a_measurement_the_schema_does_not_define(tree: Path) -> None:
    def renamed(document: dict[str, Any]) -> None:
        volume = next(q for q in rules(document)[4]["data"] if q["refId"] == "volume")
        volume["model"]["query"] = volume["model"]["query"].replace('"candle"', '"candles"')

    edit_yaml(alerting(tree, "rules"), renamed)
    assert_caught(problems(tree), "measurement 'candles' is not in the schema")


def test_catches_a_measurement_in_the_wrong_bucket(tree: Path) -> None:
    def moved(document: dict[str, Any]) -> None:
        model = rules(document)[3]["data"][1]["model"]
        model["query"] = model["query"].replace('"markets"."autogen"', '"news"."autogen"')

    edit_yaml(alerting(tree, "rules"), moved)
    assert_caught(problems(tree), "price_change lives in bucket 'markets', not 'news'")


def test_catches_a_rule_query_without_the_time_filter(tree: Path) -> None:
    def unbounded(document: dict[str, Any]) -> None:
        model = rules(document)[0]["data"][0]["model"]
        model["query"] = model["query"].replace(" AND $$timeFilter", "")

    edit_yaml(alerting(tree, "rules"), unbounded)
    assert_caught(problems(tree), "needs $$timeFilter")


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("uid", "x" * 41, "must be 1-40 letters"),
        ("for", "two minutes", "is not a duration"),
        ("noDataState", "Panic", "noDataState 'Panic'"),
        ("execErrState", "Ignore", "execErrState 'Ignore'"),
        ("title", "", "title is required"),
    ],
)
def test_catches_a_malformed_rule(tree: Path, key: str, value: str, fragment: str) -> None:
    edit_yaml(alerting(tree, "rules"), lambda d: rules(d)[0].update({key: value}))
    assert_caught(problems(tree), fragment)


def test_catches_a_group_interval_grafana_cannot_parse(tree: Path) -> None:
    edit_yaml(alerting(tree, "rules"), lambda d: d["groups"][0].update(interval="every minute"))
    assert_caught(problems(tree), "interval 'every minute' is not a duration")


def test_catches_an_unknown_alerting_key(tree: Path) -> None:
    edit_yaml(alerting(tree, "rules"), lambda d: d.update(rules=[]))
    assert_caught(problems(tree), "unknown top-level key 'rules'")


def test_the_command_line_reports_and_fails(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mount = f"{DASHBOARDS_MOUNT}={tree / 'dashboards'}"
    assert provisioning.main(["validate", str(tree / "config"), "--mount", mount]) == 0
    edit_yaml(datasources(tree), lambda d: d["datasources"][0].update(uid="influx"))
    assert provisioning.main(["validate", str(tree / "config"), "--mount", mount]) == 1
    assert "the dashboards need uid 'influxdb'" in capsys.readouterr().err


def test_the_command_line_refuses_a_malformed_mount(tree: Path) -> None:
    with pytest.raises(SystemExit):
        provisioning.main(["validate", str(tree / "config"), "--mount", "relative=dir"])


# --- The rules' InfluxQL through a real engine ------------------------------------------------------------


def influxql(url: str, query: str) -> list[dict[str, Any]]:
    body = httpx.post(f"{url}/query", data={"q": query, "epoch": "ms"}, timeout=10).json()
    errors = [body.get("error")] + [result.get("error") for result in body.get("results", [])]
    assert not any(errors), f"{errors}\n  in: {query}"
    return body["results"]


def rule_queries(rendered: Path) -> dict[str, dict[str, str]]:
    document = yaml.safe_load(alerting(rendered, "rules").read_text())
    return {
        rule["uid"]: {
            query["refId"]: provisioning._expanded(query["model"]["query"])
            for query in rule["data"]
            if query["datasourceUid"] != "__expr__"
        }
        for rule in rules(document)
    }


def test_every_rule_query_parses_and_runs_on_influxql(rendered: Path, influxql_url: str) -> None:  # noqa: F811
    for bucket in BUCKETS:
        influxql(influxql_url, f'CREATE DATABASE "{bucket}"')
    # One hour of 1-minute candles at volume 1, then a last 5 minutes at volume 10: a spike of 10x.
    lines = [
        CANDLE.line(
            {"source": "binance", "symbol": "BTC/USDT", "asset_class": "crypto", "interval": "1m"},
            {"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 10.0 if minute >= 355 else 1.0},
            FROM_MS + minute * 60_000,
        )
        for minute in range(300, 360)
    ]
    lines.append(
        TICKER.line(
            {"source": "binance", "symbol": "BTC/USDT", "asset_class": "crypto"}, {"last": 71000.0}, FROM_MS
        )
    )
    lines.append(
        CHANGE.line(
            {"source": "binance", "symbol": "BTC/USDT", "asset_class": "crypto"},
            {"change_pct_1h": 3.2},
            FROM_MS,
        )
    )
    response = httpx.post(
        f"{influxql_url}/write", params={"db": "markets", "precision": "ms"}, content="\n".join(lines)
    )
    assert response.status_code == 204, response.text
    results = {}
    for uid, by_ref in rule_queries(rendered).items():
        for ref, query in by_ref.items():
            results[uid, ref] = influxql(influxql_url, interpolate(query, "influxql"))
    assert len(results) == 2 * 5 + 2

    def single_value(uid: str, ref: str) -> float:
        series = results[uid, ref][0]["series"]
        assert [s["tags"] for s in series] == [{"symbol": "BTC/USDT"}]
        return series[0]["values"][-1][1]

    assert single_value("md-price-above-btc-usdt", "price") == 71000.0
    assert single_value("md-change-pct", "change") == 3.2
    # The simulated range is 6 h; the last window holds 5 spiking candles, the 1 h baseline averages
    # 5-minute sums of 5 (quiet) and 50 (spike).
    assert single_value("md-volume-spike", "volume") == 50 + 55 * 1.0
    assert single_value("md-volume-spike", "baseline") == pytest.approx((11 * 5 + 50) / 12)


# --- The notification through Go's text/template (the engine Grafana renders it with) ---------------------

GO_RENDER = """package main

import (
	"encoding/json"
	"os"
	"strings"
	"text/template"
	"time"
)

type Value struct{ Value float64 }

type Alert struct {
	Status      string
	Labels      map[string]string
	Annotations map[string]string
	Values      map[string]Value
	StartsAt    time.Time
}

type Data struct {
	Status            string
	Alerts            []Alert
	CommonLabels      map[string]string
	CommonAnnotations map[string]string
}

// argv: template file, then the names to execute; stdin: the data. Annotations are first rendered
// against their alert, as Grafana does when a rule fires, then the notification templates run.
func main() {
	source, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var data Data
	if err := json.NewDecoder(os.Stdin).Decode(&data); err != nil {
		panic(err)
	}
	for i, alert := range data.Alerts {
		for key, text := range alert.Annotations {
			var out strings.Builder
			if err := template.Must(template.New(key).Parse(text)).Execute(&out, alert); err != nil {
				panic(err)
			}
			data.Alerts[i].Annotations[key] = out.String()
			data.CommonAnnotations[key] = out.String()
		}
	}
	root := template.Must(template.New("root").Parse(string(source)))
	for _, name := range os.Args[2:] {
		if err := root.ExecuteTemplate(os.Stdout, name, data); err != nil {
			panic(err)
		}
		os.Stdout.WriteString("\\n---\\n")
	}
}
"""


def test_the_notification_reads_like_r43_when_go_renders_it(rendered: Path, tmp_path: Path) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.fail("the Go toolchain is needed to render Grafana's Go templates")
    template = yaml.safe_load(alerting(rendered, "templates").read_text())["templates"][0]["template"]
    rule = rules(yaml.safe_load(alerting(rendered, "rules").read_text()))[0]
    (tmp_path / "templates.tmpl").write_text(template)
    (tmp_path / "main.go").write_text(GO_RENDER)
    alert = {
        "Status": "firing",
        "Labels": {"alertname": rule["title"], "symbol": "BTC/USDT"},
        "Annotations": rule["annotations"],
        "Values": {"P": {"Value": 70250.5}, "CH": {"Value": 3.24}},
        "StartsAt": "2026-02-12T14:32:09Z",
    }
    data = {
        "Status": "firing",
        "Alerts": [alert],
        "CommonLabels": {"symbol": "BTC/USDT"},
        "CommonAnnotations": {},
    }
    result = subprocess.run(
        [go, "run", "main.go", "templates.tmpl", "marketdash.title", "marketdash.message"],
        cwd=tmp_path,
        input=json.dumps(data),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    title, message, _ = result.stdout.split("\n---\n")
    assert title == "🚨 ALERT: BTC/USDT Above $70000"
    assert message.strip().splitlines() == [
        "🚨 ALERT: BTC/USDT",
        "Price: $70250.50 (+3.2% in 1h)",
        "Condition: Above $70000",
        "Time: 2026-02-12 14:32 UTC",
    ]
