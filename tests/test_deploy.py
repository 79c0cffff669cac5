"""deploy/ is what operators start from. Images can't be built here, so these checks keep the files honest:
they parse, and their ports, paths, probes, command and variable names are the ones the code uses."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import bot.observability.metrics  # noqa: F401  # every metric registered
from bot.cli import build_parser
from bot.settings import KNOWN_VARIABLES, PROFILE_VARIABLE, load_runtime_settings
from bot.slack.http import HEALTH_PATH, READY_PATH

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
REQUIRED = (
    "roomusers_ack_seconds",
    "roomusers_ack_deadline_misses_total",
    "roomusers_slack_api_errors_total",
    "roomusers_event_loop_lag_seconds",
    "roomusers_fetches_in_flight",
    "roomusers_fetch_outcomes_total",
    "roomusers_shared_state_fallback",
    "roomusers_build_info",
    "roomusers_commands_total",
)


def samples_and_labels() -> dict[str, set[str]]:
    """Every sample name the registry can expose, with its label names."""
    found: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):
        labels = set(getattr(collector, "_labelnames", ()))
        for family in collector.describe() if hasattr(collector, "describe") else []:
            if not family.name.startswith("roomusers_"):
                continue
            if family.type == "counter":
                names = [f"{family.name}_total"]
            elif family.type == "histogram":
                names = [f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")]
                labels = labels | {"le"}
            else:
                names = [family.name]
            for name in names:
                found[name] = labels
    return found


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((DEPLOY / "prometheus" / "roomusers-rules.yaml").read_text())
    (group,) = data["groups"]
    assert group["name"] == "roomusers"
    return list(group["rules"])


def test_alert_rules_parse_and_reference_real_metrics_and_labels():
    known = samples_and_labels()
    for rule in rules():
        assert rule["alert"].startswith("Roomusers")
        runbook = rule["annotations"]["runbook"]
        assert runbook.strip() and "\n" not in runbook.strip(), f"{rule['alert']}: the runbook is one line"
        assert rule["annotations"]["summary"]
        expr = rule["expr"]
        for name in re.findall(r"\broomusers_\w+", expr):
            assert name in known, f"{rule['alert']}: {name} is not a metric the app exposes"
        for selector_name, selector in re.findall(r"\b(roomusers_\w+)\{([^}]*)\}", expr):
            for label in re.findall(r"(\w+)\s*=~?", selector):
                assert label in known[selector_name], f"{rule['alert']}: {selector_name} has no label {label}"
        for by in re.findall(r"by \(([^)]*)\)", expr):
            for label in (part.strip() for part in by.split(",")):
                used = re.findall(r"\broomusers_\w+", expr)
                assert any(label in known[n] for n in used), f"{rule['alert']}: nothing has a label {label}"


def test_alert_rules_cover_every_metric_the_issue_names():
    exprs = " ".join(rule["expr"] for rule in rules())
    for name in REQUIRED:
        assert re.search(rf"\b{name}(_bucket|_sum|_count)?\b", exprs), f"no alert rule uses {name}"


def dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_matches_the_code():
    instructions = dockerfile()
    (base,) = [arg for op, arg in instructions if op == "FROM"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim", base)
    (user,) = [arg for op, arg in instructions if op == "USER"]
    assert user not in ("root", "0")
    (cmd,) = [json.loads(arg) for op, arg in instructions if op == "CMD"]
    assert cmd[:3] == ["python", "-m", "bot"] and cmd[3] == "serve"
    build_parser().parse_args(cmd[3:])
    (env,) = [arg for op, arg in instructions if op == "ENV"]
    metrics_port = dict(shlex.split(pair)[0].split("=", 1) for pair in env.split())["METRICS_PORT"]
    load_runtime_settings({"METRICS_PORT": metrics_port})
    (exposed,) = [arg.split() for op, arg in instructions if op == "EXPOSE"]
    assert build_parser().parse_args(["serve"]).port in exposed and metrics_port in exposed
    for op, arg in instructions:
        if op == "COPY":
            *sources, _ = arg.split()
            assert all((ROOT / source).exists() for source in sources), arg
    (health,) = [arg for op, arg in instructions if op == "HEALTHCHECK"]
    assert f"127.0.0.1:{metrics_port}{HEALTH_PATH}'" in health


def kubernetes() -> dict[str, dict[str, Any]]:
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "roomusers.yaml").read_text()))
    return {doc["kind"]: doc for doc in documents}


def check_variable(name: str) -> None:
    assert name in KNOWN_VARIABLES or PROFILE_VARIABLE.fullmatch(name), f"{name} is not a setting the app reads"


def test_kubernetes_probes_ports_command_and_settings_are_the_codes():
    docs = kubernetes()
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    env = {item["name"]: item["value"] for item in container["env"]}
    for name in env:
        check_variable(name)
    metrics_port = load_runtime_settings(env).metrics_port
    assert container["livenessProbe"]["httpGet"]["path"] == HEALTH_PATH
    assert container["readinessProbe"]["httpGet"]["path"] == READY_PATH
    for probe in ("livenessProbe", "readinessProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == metrics_port
    command = container["command"]
    assert command[:3] == ["python", "-m", "bot"]
    args = build_parser().parse_args(command[3:])
    assert args.http and int(args.port) == ports["http"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > load_runtime_settings({}).shutdown_grace
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    (source,) = container["envFrom"]
    secret = yaml.safe_load((DEPLOY / "kubernetes" / "secret.example.yaml").read_text())
    assert source["secretRef"]["name"] == secret["metadata"]["name"]
    for name in secret["stringData"]:
        check_variable(name)
    service = docs["Service"]
    assert service["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports


def test_compose_runs_two_replicas_sharing_one_redis_with_the_documented_policy():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    replicas = {name: s for name, s in services.items() if s.get("build") or s.get("image") == "roomusers:latest"}
    assert len(replicas) >= 2
    redis_name = next(name for name, s in services.items() if str(s.get("image", "")).startswith("redis:"))
    redis_command = services[redis_name]["command"]
    assert redis_command[redis_command.index("--maxmemory-policy") + 1] == "volatile-lru"
    maxmemory = redis_command[redis_command.index("--maxmemory") + 1]
    assert int(maxmemory.removesuffix("mb")) >= 2 * load_runtime_settings({}).snapshot_budget_mb
    for replica in replicas.values():
        env = replica["environment"]
        for name in env:
            check_variable(name)
        assert re.fullmatch(rf"redis://{redis_name}:6379/\d+", env["REDIS_URL"])
        metrics_port = load_runtime_settings(env).metrics_port
        assert replica["command"][:3] == ["python", "-m", "bot"]
        build_parser().parse_args(replica["command"][3:])
        assert f"127.0.0.1:{metrics_port}{HEALTH_PATH}'" in " ".join(replica["healthcheck"]["test"])
        assert any(port.endswith(f":{metrics_port}") for port in replica["ports"])
        assert (DEPLOY / replica["build"]["context"] / replica["build"]["dockerfile"]).exists()


def test_readmes_run_it_section_points_at_every_deploy_file():
    text = (ROOT / "README.md").read_text()
    start = text.index("## Run it")
    section = text[start : text.index("\n## ", start + 1)]
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            assert str(path.relative_to(ROOT)) in section, f"README's Run it section does not mention {path}"
