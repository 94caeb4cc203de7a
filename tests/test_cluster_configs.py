"""The cluster configurations in ``cluster/``: parse every YAML and check the fields that matter.

Image pinned and identical on every node, GPU resources on workers (none on the head), autoscaling,
token authentication everywhere, the job API / dashboard never on a public interface, and a search
entrypoint that attaches to the cluster and writes to shared storage.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
RAY_PORTS = {6379, 8265, 10001, 52365, 8076}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def load_all() -> dict[Path, list[dict[str, Any]]]:
    docs = {}
    for p in sorted(CLUSTER.rglob("*.y*ml")):
        loaded = [d for d in yaml.safe_load_all(p.read_text())]
        assert loaded and all(isinstance(d, dict) and d for d in loaded), f"{p}: empty or non-mapping document"
        docs[p] = loaded
    return docs


DOCS = load_all()


def of_kind(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p, ds in DOCS.items() for d in ds if d.get("kind") == kind]


def ray_up_configs() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p, ds in DOCS.items() for d in ds if "available_node_types" in d]


def cluster_specs() -> list[tuple[str, dict[str, Any]]]:
    """(label, RayClusterSpec) of every RayCluster and every RayJob."""
    out = [(f"RayCluster {d['metadata']['name']}", d["spec"]) for _, d in of_kind("RayCluster")]
    out += [(f"RayJob {d['metadata']['name']}", d["spec"]["rayClusterSpec"]) for _, d in of_kind("RayJob")]
    return out


def pod_specs(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(role, group spec, pod template) for the head and every worker group."""
    yield "head", spec["headGroupSpec"], spec["headGroupSpec"]["template"]
    for g in spec["workerGroupSpecs"]:
        yield "worker", g, g["template"]


def all_strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from all_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from all_strings(v)
    elif obj is not None:
        yield str(obj)


def images() -> set[str]:
    found = {d["docker"]["image"] for _, d in ray_up_configs()}
    for _, spec in cluster_specs():
        for _, _, tpl in pod_specs(spec):
            found |= {c["image"] for c in tpl["spec"]["containers"]}
    return found


def parse_quantity(q: Any) -> float:
    text = str(q)
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


def search_args(entrypoint: str) -> dict[str, str]:
    argv = shlex.split(entrypoint)
    assert argv[:2] == ["agesearch", "search"], f"entrypoint does not run `agesearch search`: {entrypoint!r}"
    out, i = {}, 2
    while i < len(argv):
        a = argv[i]
        assert a.startswith("--"), f"stray argument {a!r} in {entrypoint!r}"
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[a] = argv[i + 1]
            i += 2
        else:
            out[a] = ""
            i += 1
    return out


# --------------------------------------------------------------------------------------- inventory


def test_every_expected_config_is_present_and_parses():
    assert ray_up_configs(), "no `ray up` cluster YAML in cluster/"
    assert of_kind("RayCluster") and of_kind("RayJob"), "KubeRay RayCluster and RayJob manifests expected"
    assert (CLUSTER / "README.md").is_file() and (CLUSTER / "Dockerfile").is_file()


def test_one_pinned_image_everywhere_matching_the_dockerfile_ray_version():
    imgs = images()
    assert len(imgs) == 1, f"every node must run the same image (Ray versions must match): {imgs}"
    img = imgs.pop()
    assert re.fullmatch(r"[a-z0-9.\-/:_]+:[\w.\-]+", img) and not img.endswith(":latest"), img
    ray_versions = {spec["rayVersion"] for _, spec in cluster_specs()}
    assert len(ray_versions) == 1
    (ray_version,) = ray_versions
    m = re.search(r"^FROM\s+rayproject/ray:(\S+)", (CLUSTER / "Dockerfile").read_text(), re.M)
    assert m and m.group(1).startswith(ray_version + "-") and "gpu" in m.group(1), m and m.group(1)
    assert tuple(int(x) for x in ray_version.split(".")[:2]) >= (2, 52), "token auth needs Ray >= 2.52"


# --------------------------------------------------------------------------------------- ray up


@pytest.mark.parametrize("path, cfg", ray_up_configs(), ids=lambda x: getattr(x, "name", ""))
def test_ray_up_config_valid_gpu_autoscaling(path, cfg):
    pytest.importorskip("jsonschema")
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(cfg))  # Ray's own schema, with its provider defaults filled in
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["resources"].get("CPU", 0) == 0
    workers = [t for k, t in types.items() if k != cfg["head_node_type"]]
    assert workers and all(t["resources"].get("GPU", 0) >= 1 for t in workers)
    assert all(t["max_workers"] > t.get("min_workers", 0) for t in workers), "workers must autoscale"
    assert cfg["max_workers"] >= max(t["max_workers"] for t in workers)


@pytest.mark.parametrize("path, cfg", ray_up_configs(), ids=lambda x: getattr(x, "name", ""))
def test_ray_up_token_auth_and_private_dashboard(path, cfg):
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in cfg[key] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token" in c for c in starts), f"{key}: token auth not enabled"
    # the token reaches every node through file_mounts (never inline in the config)
    assert any(dst.endswith("/.ray/auth_token") for dst in cfg["file_mounts"]), cfg["file_mounts"]
    assert not any(re.search(r"RAY_AUTH_TOKEN=\S", s) for s in all_strings(cfg)), "token inlined in config"
    (head_start,) = [c for c in cfg["head_start_ray_commands"] if "ray start" in c]
    host = re.search(r"--dashboard-host[= ](\S+)", head_start)
    assert host and host.group(1) in LOCAL_HOSTS, "dashboard must bind to 127.0.0.1 (ray dashboard forwards it)"
    assert not any("0.0.0.0" in s for s in all_strings(cfg)), "nothing may bind or open 0.0.0.0"
    # no security-group rule opens a Ray port to the world
    for rule in cfg["provider"].get("security_group", {}).get("IpPermissions", []):
        ports = set(range(rule.get("FromPort", 0), rule.get("ToPort", 65535) + 1))
        public = any(r.get("CidrIp") == "0.0.0.0/0" for r in rule.get("IpRanges", []))
        assert not (public and ports & RAY_PORTS), f"public rule for Ray ports: {rule}"


# --------------------------------------------------------------------------------------- KubeRay


@pytest.mark.parametrize("label, spec", cluster_specs(), ids=lambda x: x if isinstance(x, str) else "")
def test_kuberay_token_auth_on_every_container(label, spec):
    auth = spec.get("authOptions", {})
    assert auth.get("mode") == "token", f"{label}: authOptions.mode must be token"
    secret = auth.get("secretName")
    assert secret, f"{label}: name the token Secret (authOptions.secretName)"
    for role, _, tpl in pod_specs(spec):
        for c in tpl["spec"]["containers"]:
            env = {e["name"]: e for e in c.get("env", [])}
            assert env.get("RAY_AUTH_MODE", {}).get("value") == "token", f"{label} {role}: RAY_AUTH_MODE"
            ref = env.get("RAY_AUTH_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef", {})
            assert ref.get("name") == secret and ref.get("key") == "auth_token", f"{label} {role}: token env"
            assert "value" not in env["RAY_AUTH_TOKEN"], f"{label} {role}: token inlined"


@pytest.mark.parametrize("label, spec", cluster_specs(), ids=lambda x: x if isinstance(x, str) else "")
def test_kuberay_dashboard_private_and_service_internal(label, spec):
    head = spec["headGroupSpec"]
    assert head["rayStartParams"].get("dashboard-host") in LOCAL_HOSTS, f"{label}: dashboard-host"
    assert head.get("serviceType", "ClusterIP") == "ClusterIP", f"{label}: head Service must stay ClusterIP"
    assert not any("0.0.0.0" in s for s in all_strings(spec)), f"{label}: 0.0.0.0 found"
    assert "ingressEnabled" not in head or head["ingressEnabled"] is False


def test_no_manifest_exposes_ray_ports_publicly():
    for kind in ("Service",):
        for p, d in of_kind(kind):
            assert d["spec"].get("type", "ClusterIP") not in ("LoadBalancer", "NodePort"), f"{p}: public Service"
    assert not of_kind("Ingress") and not of_kind("Route"), "no Ingress/Route to the Ray dashboard"
    # the NetworkPolicy admits only the cluster's own pods, and selects the label those pods carry
    (policy,) = [d for _, d in of_kind("NetworkPolicy")]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    for rule in policy["spec"]["ingress"]:
        assert all("ipBlock" not in src for src in rule["from"]), "no IP-range sources"
        assert all(src["podSelector"]["matchLabels"] == selector for src in rule["from"])
    for label, spec in cluster_specs():
        for role, _, tpl in pod_specs(spec):
            labels = tpl.get("metadata", {}).get("labels", {})
            assert selector.items() <= labels.items(), f"{label} {role}: pods not covered by the NetworkPolicy"


@pytest.mark.parametrize("label, spec", cluster_specs(), ids=lambda x: x if isinstance(x, str) else "")
def test_kuberay_gpu_workers_cpu_head_autoscaling(label, spec):
    assert spec.get("enableInTreeAutoscaling") is True, f"{label}: autoscaling off"
    head_res = spec["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]
    assert "nvidia.com/gpu" not in head_res.get("limits", {})
    assert spec["headGroupSpec"]["rayStartParams"].get("num-cpus") == "0", "no trial may run on the head"
    for g in spec["workerGroupSpecs"]:
        assert g["maxReplicas"] > g["minReplicas"], f"{label} {g['groupName']}: not autoscaling"
        (c,) = g["template"]["spec"]["containers"]
        assert int(c["resources"]["limits"]["nvidia.com/gpu"]) >= 1, f"{label}: worker without GPU limit"
        assert parse_quantity(c["resources"]["limits"]["cpu"]) >= 1


def shared_claims() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in of_kind("PersistentVolumeClaim")}


def test_rayjob_entrypoint_runs_search_on_the_cluster_with_shared_storage():
    (_, job), = of_kind("RayJob")
    spec = job["spec"]
    args = search_args(spec["entrypoint"])
    assert args.get("--address") == "auto", "the search must attach to the RayJob's cluster"
    for flag in ("--data", "--target", "--space", "--name", "--num-samples", "--gpus-per-trial"):
        assert args.get(flag), f"entrypoint lacks {flag}"
    # the submitter reaches the job API on localhost only in SidecarMode
    assert spec.get("submissionMode") == "SidecarMode"
    assert spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"].get("restartPolicy") == "Never"
    # storage: a cloud URI, or a path on a ReadWriteMany claim mounted on EVERY pod
    storage = args["--storage"]
    if "://" not in storage:
        claims = shared_claims()
        for role, _, tpl in pod_specs(spec["rayClusterSpec"]):
            (c,) = tpl["spec"]["containers"]
            mounts = [m for m in c.get("volumeMounts", []) if storage.startswith(m["mountPath"].rstrip("/") + "/")]
            assert mounts, f"{role}: --storage {storage} is not on a mounted volume"
            vol = {v["name"]: v for v in tpl["spec"]["volumes"]}[mounts[0]["name"]]
            claim = claims[vol["persistentVolumeClaim"]["claimName"]]
            assert "ReadWriteMany" in claim["spec"]["accessModes"], "shared storage must be ReadWriteMany"
    # resources: a trial fits on a worker, fractional GPUs pack whole trials per GPU
    gpt, cpt = float(args["--gpus-per-trial"]), float(args.get("--cpus-per-trial", 1))
    for g in spec["rayClusterSpec"]["workerGroupSpecs"]:
        (c,) = g["template"]["spec"]["containers"]
        gpus = float(c["resources"]["limits"]["nvidia.com/gpu"])
        cpus = parse_quantity(c["resources"]["limits"]["cpu"])
        assert 0 < gpt <= gpus and cpt <= cpus
        assert (gpus / gpt).is_integer() and cpus / cpt >= gpus / gpt, "CPUs must follow the GPU packing"


def test_rayjob_entrypoint_parses_with_the_real_search_command():
    from agesearch.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    if "search" not in sub.choices:
        pytest.skip("agesearch search is not available in this checkout")
    (_, job), = of_kind("RayJob")
    args = parser.parse_args(shlex.split(job["spec"]["entrypoint"])[1:])
    assert args.command == "search"


def readme_job_submit_entrypoints() -> list[str]:
    text = (CLUSTER / "README.md").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)  # join shell continuation lines
    return [line.split(" -- ", 1)[1].strip() for line in joined.splitlines()
            if line.strip().startswith("ray job submit") and " -- " in line]  # fmt: skip


def test_readme_recipes_submit_through_a_local_forward_with_token_and_cloud_storage():
    text = (CLUSTER / "README.md").read_text()
    entries = readme_job_submit_entrypoints()
    assert entries, "cluster/README.md shows no `ray job submit ... -- agesearch search ...`"
    for e in entries:
        a = search_args(e)
        assert a.get("--address") == "auto"
        assert a.get("--storage", "").startswith(("s3://", "gs://", "/mnt/")), a.get("--storage")
        assert a.get("--gpus-per-trial")
    submits = [ln for ln in re.sub(r"\\\n\s*", " ", text).splitlines() if ln.strip().startswith("ray job submit")]
    assert len(submits) == len(entries) >= 2
    assert all("--address http://127.0.0.1:8265" in ln for ln in submits), "submit via the local forward"
    for needle in ("RAY_AUTH_MODE=token", "ray dashboard", "kubectl port-forward", "kubectl create secret",
                   "LoadBalancer", "ReadWriteMany"):  # fmt: skip
        assert needle in text, f"cluster/README.md does not mention {needle!r}"
