"""``deploy/prometheus/plugport-alerts.yml``: valid rules that name only metrics, and labels,
the runtime really exports (read from ``RuntimeMetrics``' own output), checked and unit-tested
by ``promtool`` where the machine has it.

``deploy/registry/``: the settings file names only settings the registry reads (and all of
them), and compose.yaml, haproxy.cfg and the scrape config agree with it and with each other
about the nodes, ports and shared pieces; haproxy accepts its configuration (the deployment's
and the one ``make cluster`` writes) where the machine has haproxy."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from plugport.registry.blobs import S3_ENDPOINT_ENV
from plugport.registry.settings import RegistrySettings
from plugport.runtime.metrics import PLUGIN_STATES, RuntimeMetrics
from plugport.runtime.problems import KINDS

ROOT = Path(__file__).parents[1]
RULES = ROOT / "deploy" / "prometheus" / "plugport-alerts.yml"
RULE_TESTS = RULES.with_name("plugport-alerts.test.yml")
SELECTOR = re.compile(r"\b(plugport_[a-z0-9_]+)\s*(?:\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
OUTCOMES = ("ok", "error", "timeout", "limit", "crash", "denied", "quarantined")


def exported() -> dict[str, set[str]]:
    """Sample name -> its label names, from a RuntimeMetrics that recorded one of everything."""
    metrics = RuntimeMetrics()
    for outcome in OUTCOMES:
        metrics.call("acme.p", "hook", outcome, 0.01)
    metrics.capability("acme.p", "net.fetch", "ok")
    metrics.activation("acme.p", 0.1)
    metrics.restart("acme.p")
    metrics.crash("acme.p", "exit")
    metrics.resources("acme.p", cpu_seconds=1.0, peak_rss_bytes=1)
    metrics.state("acme.p", "active")
    for kind in KINDS:
        metrics.problem("acme.p", kind, False)
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_every_rule_is_a_complete_alert() -> None:
    found = rules()
    assert len(found) >= 6
    names = [rule["alert"] for rule in found]
    assert len(set(names)) == len(names)
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule
        assert rule["annotations"]["summary"], rule
        assert rule["annotations"]["description"], rule


def test_rules_name_only_metrics_and_labels_the_runtime_exports() -> None:
    known = exported()
    assert "plugport_plugin_problem" in known
    for rule in rules():
        expr = rule["expr"]
        selectors = SELECTOR.findall(expr)
        assert selectors, f"{rule['alert']}: no plugport metric in {expr!r}"
        labels_in_rule: set[str] = set()
        for metric, matchers in selectors:
            assert metric in known, f"{rule['alert']}: {metric} is not exported"
            for label, _, wanted in MATCHER.findall(matchers):
                assert label in known[metric], f"{rule['alert']}: {metric} has no {label}"
                labels_in_rule.add(label)
                values = {
                    "outcome": OUTCOMES,
                    "state": PLUGIN_STATES,
                    "kind": (*KINDS, "hook", "command", "event"),
                }.get(label)
                for value in wanted.split("|") if values else ():
                    assert value in values, f"{rule['alert']}: {label}={value!r} never exported"
        all_labels = set().union(*(known[m] for m, _ in selectors))
        for grouping in GROUPING.findall(expr):
            for label in (word.strip() for word in grouping.split(",")):
                assert label in all_labels, f"{rule['alert']}: groups by unknown {label}"
        for template in re.findall(r"\$labels\.(\w+)", str(rule["annotations"])):
            assert template in all_labels, f"{rule['alert']}: annotation uses {template}"


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: the prometheus package ships it)")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULE_TESTS.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


# --- deploy/registry: several registry nodes behind haproxy -----------------------------------

REGISTRY = ROOT / "deploy" / "registry"
ENV_FILE = REGISTRY / "registry.env"
COMPOSE = REGISTRY / "compose.yaml"
HAPROXY_CFG = REGISTRY / "haproxy.cfg"
SCRAPE = ROOT / "deploy" / "prometheus" / "registry-scrape.yml"
SETTING = re.compile(r"^#?\s*(PLUGPORT_[A-Z0-9_]+)=(.*)$", re.M)
ANY_PLUGPORT_NAME = re.compile(r"\bPLUGPORT_[A-Z0-9_]+\b")
# What the registry reads besides RegistrySettings: the S3 store's endpoint; and names that are
# not settings (the image to run, placeholders in comments).
READ_ELSEWHERE = {S3_ENDPOINT_ENV}
NOT_SETTINGS = {"PLUGPORT_IMAGE"}


def known_names() -> set[str]:
    return {f"PLUGPORT_{name.upper()}" for name in RegistrySettings.model_fields} | READ_ELSEWHERE


def env_settings() -> dict[str, str]:
    """Every ``PLUGPORT_`` line of registry.env, set or commented out at its default."""
    return {name: value.strip() for name, value in SETTING.findall(ENV_FILE.read_text())}


def active_env() -> dict[str, str]:
    lines = (line for line in ENV_FILE.read_text().splitlines() if line and line[0] != "#")
    return dict(line.split("=", 1) for line in lines)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def node_services() -> list[str]:
    return sorted(name for name in compose()["services"] if re.fullmatch(r"registry-\d+", name))


def test_the_settings_file_names_every_setting_and_only_real_ones() -> None:
    named = env_settings()
    assert set(named) <= known_names(), set(named) - known_names()
    missing = {f"PLUGPORT_{name.upper()}" for name in RegistrySettings.model_fields} - set(named)
    assert not missing, f"registry.env does not document {sorted(missing)}"
    for path in (COMPOSE, HAPROXY_CFG, SCRAPE, ROOT / "scripts" / "_cluster.py"):
        used = set(ANY_PLUGPORT_NAME.findall(path.read_text())) - NOT_SETTINGS
        assert used <= known_names(), f"{path.name}: {sorted(used - known_names())} unknown"


def test_the_settings_file_is_valid_for_registry_settings() -> None:
    """The values set (and the defaults shown) are accepted, and the defaults are the real ones."""
    values = {
        name.removeprefix("PLUGPORT_").lower(): value
        for name, value in env_settings().items()
        if name != S3_ENDPOINT_ENV
    }
    settings = RegistrySettings(**values)  # type: ignore[arg-type]
    text = ENV_FILE.read_text()
    for name, value in SETTING.findall(text):
        # A number commented out is the default, shown: it must be the real one.
        if value.isdigit() and f"\n# {name}=" in f"\n{text}":
            field = RegistrySettings.model_fields[name.removeprefix("PLUGPORT_").lower()]
            assert str(field.default) == value, f"{name}: the default is {field.default}"
    assert str(settings.database_url).startswith("postgresql+psycopg://")
    assert str(settings.blob_url).startswith("s3://")
    assert settings.redis_url is not None
    assert settings.index_key_file is not None


def test_compose_runs_the_nodes_on_the_shared_pieces_the_settings_name() -> None:
    services = compose()["services"]
    env = active_env()
    nodes = node_services()
    assert len(nodes) >= 2
    for name in [*nodes, "migrate"]:
        service = services[name]
        assert service["env_file"] == ["registry.env"], name
        assert "registry_index_key" in service["secrets"], name
    assert services["migrate"]["command"] == ["plugport", "registry", "migrate"]
    for name in nodes:
        needs = services[name]["depends_on"]
        assert needs["migrate"] == {"condition": "service_completed_successfully"}, name
        assert "/healthz" in " ".join(services[name]["healthcheck"]["test"])
    assert env["PLUGPORT_INDEX_KEY_FILE"] == "/run/secrets/registry_index_key"
    database = urlsplit(env["PLUGPORT_DATABASE_URL"])
    postgres = services["postgres"]["environment"]
    assert (database.hostname, database.username, database.path) == (
        "postgres",
        postgres["POSTGRES_USER"],
        f"/{postgres['POSTGRES_DB']}",
    )
    assert urlsplit(env["PLUGPORT_REDIS_URL"]).hostname in services
    assert urlsplit(env[S3_ENDPOINT_ENV]).hostname in services
    bucket = urlsplit(env["PLUGPORT_BLOB_URL"]).hostname
    assert f"s3/{bucket}" in str(services["s3-bucket"]["command"])
    assert set(services["haproxy"]["depends_on"]) == set(nodes)


def test_haproxy_and_prometheus_know_every_node_on_its_port() -> None:
    port = active_env()["PLUGPORT_PORT"]
    nodes = node_services()
    config = HAPROXY_CFG.read_text()
    servers = re.findall(r"^\s*server\s+(\S+)\s+(\S+)", config, re.M)
    assert [address for _, address in servers] == [f"{node}:{port}" for node in nodes]
    assert re.search(r"^\s*balance\s+roundrobin", config, re.M)
    assert re.search(r"^\s*http-check send meth GET uri /healthz", config, re.M)
    assert re.search(r"^\s*default-server check\b", config, re.M)
    scrape = yaml.safe_load(SCRAPE.read_text())["scrape_configs"]
    registry_job = next(job for job in scrape if job["job_name"] == "plugport-registry")
    assert registry_job["metrics_path"] == "/metrics"
    targets = [t for group in registry_job["static_configs"] for t in group["targets"]]
    assert targets == [f"{node}:{port}" for node in nodes]
    mounted = compose()["services"]["prometheus"]["volumes"][0].split(":")[0]
    assert (REGISTRY / mounted).resolve() == SCRAPE


def _local_cluster_config(tmp_path: Path) -> Path:
    """The haproxy configuration ``make cluster`` writes, for two nodes."""
    source = ast.parse((ROOT / "scripts" / "_cluster.py").read_text())
    template = next(
        ast.literal_eval(node.value)
        for node in source.body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["HAPROXY_CFG"]
    )
    servers = "\n".join(f"    server node{i} 127.0.0.1:{8100 + i}" for i in (1, 2))
    path = tmp_path / "haproxy.cfg"
    path.write_text(template.format(socket=tmp_path / "haproxy.sock", port=8080, servers=servers))
    return path


@pytest.mark.parametrize("which", ["deploy/registry/haproxy.cfg", "make cluster's"])
def test_haproxy_accepts_the_configuration(which: str, tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if haproxy is None:
        pytest.skip("haproxy is not installed (make haproxy installs Debian's when root)")
    config = HAPROXY_CFG if which.startswith("deploy") else _local_cluster_config(tmp_path)
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Configuration file is valid" in checked.stdout + checked.stderr
    # Outside compose the node names do not resolve (warnings); nothing else may be wrong.
    warnings = [line for line in checked.stderr.splitlines() if "[WARNING]" in line]
    assert all("could not resolve address" in line for line in warnings), warnings


def test_promtool_checks_the_scrape_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: the prometheus package ships it)")
    checked = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(SCRAPE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
