"""docker/compose.yaml: valid against the Compose Specification's JSON schema (the copy
check-jsonschema ships, Apache-2.0, from the compose-spec project), and the services docs/deploy.md
describes: CPU on 8000 with no GPU, a GPU per replica, N replicas behind nginx, training."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
DRAIN_TIMEOUT_S, UVICORN_GRACE_S = 30, 5


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_compose_file_follows_the_compose_specification(validator, compose):
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_rejects_a_misspelt_key(validator, compose):
    broken = copy.deepcopy(compose)
    broken["services"]["icot"]["stop_grace_perod"] = "45s"
    assert not validator.is_valid(broken)


def _gpus(service: dict) -> list[dict]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get(
        "devices", [])


def test_plain_up_serves_the_demo_on_cpu_port_8000(compose):
    default = {name: s for name, s in compose["services"].items() if not s.get("profiles")}
    assert list(default) == ["icot"]
    icot = default["icot"]
    assert icot["ports"] == ["${ICOT_HOST_PORT:-8000}:8000"]
    assert _gpus(icot) == []
    assert icot["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert icot["environment"]["ICOT_BUNDLE"].endswith(":-/opt/icot/checkpoints/demo}")
    # the capacity plan's CPU replica (docs/deploy.md)
    assert icot["environment"]["ICOT_SLOTS"] == "${ICOT_SLOTS:-16}"
    assert icot["environment"]["ICOT_THREADS"] == "${ICOT_THREADS:-1}"
    assert "/bundles:ro" in icot["volumes"][0]


def test_gpu_profile_reserves_one_gpu_per_replica_behind_nginx(compose):
    gpu = compose["services"]["icot-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert _gpus(gpu) == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert gpu["environment"]["ICOT_DEVICE"] == "cuda"
    assert gpu["environment"]["ICOT_SLOTS"] == "${ICOT_GPU_SLOTS:-64}"
    assert gpu["environment"]["ICOT_MAX_SEQ_LEN"] == "${ICOT_GPU_MAX_SEQ_LEN:-1024}"
    assert "nvidia/cuda:" in gpu["build"]["args"]["BASE_IMAGE"]
    front = compose["services"]["nginx-gpu"]
    assert front["profiles"] == ["gpu"]
    assert front["depends_on"] == {"icot-gpu": {"condition": "service_healthy"}}
    assert "server icot-gpu:8000" in front["environment"]["ICOT_UPSTREAM_SERVERS"]


def test_scale_profile_runs_n_replicas_behind_nginx(compose):
    replica, front = compose["services"]["replica"], compose["services"]["nginx"]
    assert replica["profiles"] == front["profiles"] == ["scale"]
    assert replica["deploy"]["replicas"] == "${ICOT_REPLICAS:-2}"
    assert "ports" not in replica  # only nginx is published
    assert front["depends_on"] == {"replica": {"condition": "service_healthy"}}
    assert "server replica:8000" in front["environment"]["ICOT_UPSTREAM_SERVERS"]
    assert "/readyz" in " ".join(replica["healthcheck"]["test"])
    # nginx renders the template's placeholders ($$ is compose's escape for a literal $).
    command = " ".join(front["command"])
    for placeholder in re.findall(r"\$\{(ICOT_[A-Z_]+)\}", (ROOT / "docker" /
                                                              "nginx.conf").read_text()):
        assert f"$${{{placeholder}}}" in command
        assert placeholder in front["environment"]
    assert front["volumes"] == ["./nginx.conf:/etc/icot/nginx.conf:ro"]


def test_servers_get_time_to_drain_before_they_are_killed(compose):
    for name in ("icot", "icot-gpu", "replica"):
        service = compose["services"][name]
        grace = int(service["stop_grace_period"].removesuffix("s"))
        assert service["environment"]["ICOT_DRAIN_TIMEOUT_S"] == "${ICOT_DRAIN_TIMEOUT_S:-30}"
        assert grace > DRAIN_TIMEOUT_S + UVICORN_GRACE_S, name


def test_the_training_example_runs_icot_train_on_the_gpus(compose):
    train = compose["services"]["train"]
    assert train["profiles"] == ["train"]
    assert "icot train" in " ".join(train["entrypoint"])
    assert train["environment"]["ICOT_TRAIN_ARGS"].startswith("${ICOT_TRAIN_ARGS:---recipe ")
    assert _gpus(train)[0]["count"] == "all"
    assert "runs:/runs" in train["volumes"]
