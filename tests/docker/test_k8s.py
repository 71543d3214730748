"""docker/k8s/: every manifest validates (kubernetes-validate, strict, the schemas it ships), and
the Deployment lets the SIGTERM drain finish, probes the right endpoints and is scraped."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).parents[2]
MANIFESTS = sorted((ROOT / "docker" / "k8s").glob("*.yaml"))
K8S_VERSION = "1.37.0"
DRAIN_TIMEOUT_S, UVICORN_GRACE_S = 30, 5


def _documents() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def _one(kind: str) -> dict:
    (found,) = [doc for doc in _documents() if doc["kind"] == kind and
                doc["metadata"]["name"].startswith("icot-voice")]
    return found


@pytest.mark.parametrize("document", _documents(),
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_a_valid_kubernetes_resource(document):
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_the_validator_rejects_a_misplaced_field():
    broken = _one("Deployment")
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["path"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_deployment_drains_before_it_is_killed():
    pod = _one("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    drain = int(env["ICOT_DRAIN_TIMEOUT_S"])
    assert drain == DRAIN_TIMEOUT_S
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + drain + UVICORN_GRACE_S
    strategy = _one("Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0  # a new pod is ready before an old one drains


def test_probes_gpu_and_scrape_annotations():
    template = _one("Deployment")["spec"]["template"]
    (container,) = template["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ICOT_DEVICE"] == "cuda"
    assert (env["ICOT_SLOTS"], env["ICOT_MAX_SEQ_LEN"]) == ("64", "1024")  # the measured H100 shape
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "8000",
        "prometheus.io/path": "/metrics"}
    assert template["spec"]["securityContext"]["runAsUser"] == 10001  # the image's USER


def test_service_and_budget_select_the_deployments_pods():
    labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    service, budget = _one("Service"), _one("PodDisruptionBudget")
    assert service["spec"]["selector"].items() <= labels.items()
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] == 1
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_training_job_runs_icot_train_on_a_gpu():
    job = next(d for d in _documents() if d["kind"] == "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["icot", "train"]
    assert "--resume" in container["args"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] >= 1
