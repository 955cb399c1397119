"""The deployment files in infra/: the images, the Ray cluster launcher config, the KubeRay manifests.

Nothing here builds an image or talks to a cluster. Each test parses the files and
checks one fact a deployer would otherwise learn on the cluster, at night: an image
tag nobody built, faiss-cpu inside the GPU image, a head node that takes work, a
setting name archivist never reads, a spec that does not load, a key committed by
mistake.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from importlib.util import find_spec
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from catalog.settings import Settings
from jobs.spec import JobSpec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DOCKERFILES = {"cpu": INFRA / "docker" / "Dockerfile.cpu", "gpu": INFRA / "docker" / "Dockerfile.gpu"}
CLUSTER_YAML = INFRA / "ray" / "cluster.yaml"
K8S = INFRA / "k8s"
GPU = "nvidia.com/gpu"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]


def pinned(name: str) -> str:
    for line in (INFRA / "constraints.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement.startswith(f"{name}=="):
            return requirement.split("==", 1)[1]
    raise AssertionError(f"infra/constraints.txt pins no {name}")


def deployment_texts() -> dict[str, str]:
    """The files a deployment is made from (not infra/scripts/, which sets up test services).
    A filled-in *.env beside its *.env.example holds real values by design and is never committed."""
    paths = [INFRA / "README.md"]
    for folder in ("docker", "ray", "k8s"):
        paths.extend(sorted((INFRA / folder).rglob("*")))
    return {
        str(path.relative_to(ROOT)): path.read_text(errors="replace")
        for path in paths
        if path.is_file() and path.suffix != ".env" and "__pycache__" not in path.parts
    }


# --- Dockerfiles ---------------------------------------------------------------------------


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: continued lines joined, comment lines dropped (also
    inside a continued instruction, as Docker does), ${ARG}s replaced by their defaults."""
    parsed: list[tuple[str, str]] = []
    args: dict[str, str] = {}
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        pending = ""
        rest = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), rest.strip())
        name, has_default, default = rest.partition("=")
        if keyword.upper() == "ARG" and has_default:
            args[name] = default  # a bare `ARG NAME` after FROM keeps the default from before it
        parsed.append((keyword.upper(), rest))
    assert not pending, f"{path.name}: the last instruction ends in a line continuation"
    return parsed


def instructions(variant: str, keyword: str) -> list[str]:
    return [rest for key, rest in parse_dockerfile(DOCKERFILES[variant]) if key == keyword]


def shell_commands(variant: str) -> list[str]:
    """Every command of every RUN, split at `&&`."""
    return [cmd.strip() for run in instructions(variant, "RUN") for cmd in run.split("&&")]


def pip_installs(variant: str) -> list[str]:
    return [cmd for cmd in shell_commands(variant) if cmd.startswith("pip install")]


def project_install(variant: str) -> str:
    (install,) = [cmd for cmd in pip_installs(variant) if re.search(r"'\.\[", cmd)]
    return install


def base_image(variant: str) -> re.Match[str]:
    image = instructions(variant, "FROM")[-1].split()[0]
    match = re.fullmatch(r"rayproject/ray:(?P<ray>[\w.]+)-py(?P<python>\d+)-(?P<device>cpu|cu\d+)", image)
    assert match, f"Dockerfile.{variant}: {image} is not a rayproject/ray:<ray>-py3XX-<cpu|cuXXX> image"
    return match


def test_both_images_start_from_the_pinned_ray_with_one_python() -> None:
    cpu, gpu = base_image("cpu"), base_image("gpu")
    # Ray refuses nodes whose Ray or Python differ from the head's.
    assert cpu["ray"] == gpu["ray"] == pinned("ray")
    assert cpu["python"] == gpu["python"]
    minimum = re.fullmatch(r">=\s*3\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert minimum and int(cpu["python"][1:]) >= int(minimum[1])
    assert cpu["device"] == "cpu"
    assert gpu["device"].startswith("cu")


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_torch_is_the_pinned_build_for_the_image_and_comes_first(variant: str) -> None:
    installs = pip_installs(variant)
    (torch,) = [cmd for cmd in installs if re.search(r"\btorch==", cmd)]
    assert re.search(r"\btorch==(\S+)", torch)[1] == pinned("torch") == "2.13.0"
    # Installed from the index of the base image's device (cpu or the same cuXXX) and
    # before the project, so that pip never reaches for PyPI's default CUDA build.
    assert re.search(r"--index-url\s+(\S+)", torch)[1] == (
        f"https://download.pytorch.org/whl/{base_image(variant)['device']}"
    )
    assert installs.index(torch) < installs.index(project_install(variant))


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]


def test_the_extras_mean_what_the_images_rely_on() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    names = {extra: {requirement_name(dep) for dep in deps} for extra, deps in extras.items()}
    assert "faiss-cpu" in names["cpu"]
    assert {"faiss-gpu", "onnxruntime-gpu"} <= names["gpu"]
    assert not {"faiss-cpu", "onnxruntime"} & names["gpu"]


def test_cpu_image_installs_the_cpu_extra_with_the_pins() -> None:
    install = project_install("cpu")
    assert "'.[cpu]'" in install and "gpu" not in install
    assert "-c infra/constraints.txt" in install


def test_gpu_image_installs_the_gpu_extra_and_fails_to_build_with_faiss_cpu() -> None:
    install = project_install("gpu")
    assert "'.[gpu]'" in install and "cpu" not in install
    assert "-c infra/constraints.txt" in install
    assert not [cmd for cmd in pip_installs("gpu") if "faiss-cpu" in cmd]
    # The build-time guard: `pip show faiss-cpu` succeeding must fail the build.
    guard = re.compile(r"\bif pip show faiss-cpu\b.*\bexit 1\b")
    assert any(guard.search(cmd) for cmd in shell_commands("gpu")), "no RUN fails when faiss-cpu is installed"


def test_both_images_carry_the_same_code_and_every_package() -> None:
    copies = instructions("cpu", "COPY")
    assert copies == instructions("gpu", "COPY")
    sources = {word for copy in copies for word in copy.split()[:-1] if not word.startswith("--")}
    packages = {name.rstrip("*") for name in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= sources, f"not copied into the images: {sorted(packages - sources)}"
    assert {"pyproject.toml", "README.md", "infra/constraints.txt"} <= sources


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_images_run_archivist_as_a_non_root_user(variant: str) -> None:
    user = instructions(variant, "USER")[-1].split(":")[0]
    # Numeric, or Kubernetes' runAsNonRoot cannot check it and refuses the pod.
    assert user.isdigit() and int(user) != 0, f"Dockerfile.{variant}: USER {user}"
    assert json.loads(instructions(variant, "ENTRYPOINT")[-1]) == ["archivist"]


# --- the Ray cluster launcher ---------------------------------------------------------------


def launcher() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def launcher_workers(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    types = config["available_node_types"]
    return {name: node for name, node in types.items() if name != config["head_node_type"]}


def launcher_image(config: dict[str, Any], node_type: str) -> str:
    docker = config["docker"]
    if node_type == config["head_node_type"]:
        return docker.get("head_image", docker["image"])
    own = config["available_node_types"][node_type].get("docker", {})
    return own.get("worker_image", docker.get("worker_image", docker["image"]))


def test_launcher_config_passes_rays_own_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    ray_package = find_spec("ray")
    assert ray_package and ray_package.submodule_search_locations
    schema = Path(ray_package.submodule_search_locations[0]) / "autoscaler" / "ray-schema.json"
    jsonschema.validate(launcher(), json.loads(schema.read_text()))


def test_launcher_head_takes_no_tasks_and_runs_the_autoscaler() -> None:
    config = launcher()
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"].get("CPU") == 0
    start = " ".join(config["head_start_ray_commands"])
    assert "--head" in start and "--num-cpus=0" in start
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in start


def test_launcher_has_cpu_and_gpu_worker_groups_within_bounds() -> None:
    config = launcher()
    workers = launcher_workers(config)
    gpu_groups = {name for name, node in workers.items() if node["resources"].get("GPU", 0) >= 1}
    assert gpu_groups and set(workers) - gpu_groups, "wants a CPU and a GPU worker group"
    for name, node in workers.items():
        assert 0 <= node["min_workers"] <= node["max_workers"], name
    assert sum(node["max_workers"] for node in workers.values()) <= config["max_workers"]
    for name in gpu_groups:
        assert workers[name]["min_workers"] == 0, f"{name}: an idle GPU node costs the most"


def test_launcher_starts_ray_inside_the_image_with_the_archivist_settings() -> None:
    config = launcher()
    # The image's ENTRYPOINT is `archivist`; the launcher runs `docker run ... IMAGE bash`.
    assert any(shlex.split(option) == ["--entrypoint="] for option in config["docker"]["run_options"])
    (remote,) = [dst for dst, src in config["file_mounts"].items() if src.endswith("archivist.env")]
    assert (ROOT / (config["file_mounts"][remote] + ".example")).is_file()
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [cmd for cmd in config[key] if "ray start" in cmd]
        assert start and all(f". {remote} " in cmd.split("ray start")[0] for cmd in start), key
    assert all("$RAY_HEAD_IP" in cmd for cmd in config["worker_start_ray_commands"] if "ray start" in cmd)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = shlex.split(value)[0] if value else ""
    return values


def settings_from(variables: dict[str, str]) -> Settings:
    return Settings(**{key.removeprefix("ARCHIVIST_").lower(): value for key, value in variables.items()})


def test_launcher_settings_make_a_cluster_configuration() -> None:
    env = read_env_file(INFRA / "ray" / "archivist.env.example")
    settings = settings_from(env)
    assert not settings.home_is_local
    assert settings.catalog_url_resolved.startswith("postgresql")
    assert settings.ray_address == "auto"


# --- Kubernetes ----------------------------------------------------------------------------


def manifests(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc is not None]


def manifest(name: str, kind: str, object_name: str | None = None) -> dict[str, Any]:
    (doc,) = [
        doc for doc in manifests(name)
        if doc["kind"] == kind and object_name in (None, doc["metadata"].get("name"))
    ]
    return doc


def containers(node: Any) -> list[dict[str, Any]]:
    """Every container of every pod template below this node."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found.extend(value)
            found.extend(containers(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(containers(item))
    return found


def ray_pods(cluster_spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pods = {"head": cluster_spec["headGroupSpec"]["template"]["spec"]}
    for group in cluster_spec["workerGroupSpecs"]:
        pods[group["groupName"]] = group["template"]["spec"]
    return pods


def gpus(container: dict[str, Any]) -> int:
    return int(container.get("resources", {}).get("limits", {}).get(GPU, 0))


def mounted_file(pod: dict[str, Any], path: str) -> str:
    """The text a ConfigMap volume puts at this path in the pod's first container."""
    file = PurePosixPath(path)
    mounts = [m for m in pod["containers"][0].get("volumeMounts", []) if m["mountPath"] == str(file.parent)]
    assert mounts, f"nothing is mounted at {file.parent}"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mounts[0]["name"]]
    config_map = manifest("configmap.yaml", "ConfigMap", volume["configMap"]["name"])
    assert file.name in config_map["data"], f"ConfigMap {config_map['metadata']['name']} has no {file.name}"
    return config_map["data"][file.name]


def spec_at(pod: dict[str, Any], path: str) -> JobSpec:
    return parse_spec(yaml.safe_load(mounted_file(pod, path)), origin=path)


def test_every_manifest_parses_as_the_kind_it_is_meant_to_be() -> None:
    expected = {
        "raycluster.yaml": [("ray.io/v1", "RayCluster")],
        "rayjob.yaml": [("ray.io/v1", "RayJob")],
        "cronjob.yaml": [("batch/v1", "CronJob")],
        "configmap.yaml": [("v1", "ConfigMap"), ("v1", "ConfigMap")],
        "secret.example.yaml": [("v1", "Secret")],
    }
    for path in sorted(K8S.glob("*.yaml")):
        docs = manifests(path.name)
        assert docs, path.name
        for doc in docs:
            assert doc["apiVersion"] and doc["kind"], path.name
            assert doc["metadata"].get("name") or doc["metadata"].get("generateName"), path.name
    for name, kinds in expected.items():
        assert [(doc["apiVersion"], doc["kind"]) for doc in manifests(name)] == kinds, name


def test_image_references_agree_across_the_launcher_and_the_manifests() -> None:
    refs: list[tuple[str, str, bool]] = []  # (where, image, whether it has GPUs)
    config = launcher()
    for name, node in config["available_node_types"].items():
        has_gpus = node["resources"].get("GPU", 0) > 0
        refs.append((f"cluster.yaml:{name}", launcher_image(config, name), has_gpus))
    for path in sorted(K8S.glob("*.yaml")):
        for container in containers(manifests(path.name)):
            refs.append((f"{path.name}:{container['name']}", container["image"], gpus(container) > 0))
    repositories = {image.rsplit(":", 1)[0] for _, image, _ in refs}
    assert len(repositories) == 1, f"one image repository for every node and pod: {sorted(repositories)}"
    for where, image, has_gpus in refs:
        # The tags Dockerfile.cpu / Dockerfile.gpu are built with (see infra/README.md).
        assert image.rsplit(":", 1)[1] == f"{VERSION}-{'gpu' if has_gpus else 'cpu'}", f"{where}: {image}"
    # Every documented `docker build` tags exactly the image its Dockerfile is pulled as.
    (repository,) = repositories
    build = re.compile(r"docker build -f infra/docker/Dockerfile\.(cpu|gpu) -t (\S+)")
    builds = [match for text in deployment_texts().values() for match in build.finditer(text)]
    assert {variant for variant, _ in (m.groups() for m in builds)} == {"cpu", "gpu"}
    for match in builds:
        assert match[2] == f"{repository}:{VERSION}-{match[1]}", match[0]


def cluster_spec(name: str) -> dict[str, Any]:
    doc = manifests(name)[0]
    return doc["spec"]["rayClusterSpec"] if doc["kind"] == "RayJob" else doc["spec"]


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_ray_cluster_autoscales_a_cpu_and_a_gpu_group_with_an_idle_head(name: str) -> None:
    spec = cluster_spec(name)
    assert spec["rayVersion"] == pinned("ray")
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert str(head["rayStartParams"]["num-cpus"]) == "0"
    assert not any(gpus(c) for c in head["template"]["spec"]["containers"])
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    gpu_groups = {n for n, g in groups.items() if any(gpus(c) for c in g["template"]["spec"]["containers"])}
    assert gpu_groups and set(groups) - gpu_groups, "wants a CPU and a GPU worker group"
    for group_name, group in groups.items():
        assert 0 <= group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"], group_name
    for group_name in gpu_groups:
        assert groups[group_name]["minReplicas"] == 0, f"{group_name}: an idle GPU node costs the most"
        for container in groups[group_name]["template"]["spec"]["containers"]:
            requests = container["resources"].get("requests", {})
            # Kubernetes rejects a GPU request that differs from the limit.
            assert GPU not in requests or int(requests[GPU]) == gpus(container)


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_every_ray_pod_gets_the_settings_and_the_secret(name: str) -> None:
    spec = cluster_spec(name)
    config = manifest("configmap.yaml", "ConfigMap", "archivist-config")["data"]
    secret = manifest("secret.example.yaml", "Secret")
    for pod_name, pod in ray_pods(spec).items():
        ray = pod["containers"][0]
        sources = {(kind, ref["name"]) for item in ray["envFrom"] for kind, ref in item.items()}
        assert ("configMapRef", "archivist-config") in sources, pod_name
        assert ("secretRef", secret["metadata"]["name"]) in sources, pod_name
        env = {item["name"]: item["value"] for item in ray.get("env", [])}
        # A run started as a Ray job must join the cluster, not start a Ray of its own.
        assert env.get("ARCHIVIST_RAY_ADDRESS") == "auto", pod_name
        settings = settings_from({**config, **secret["stringData"], **env})
        assert not settings.home_is_local, "a folder home exists on no other node"
        assert settings.catalog_url_resolved.startswith("postgresql")


def test_rayjob_runs_the_nightly_spec_on_the_raycluster_and_cleans_up() -> None:
    job = manifest("rayjob.yaml", "RayJob")["spec"]
    cluster = manifest("raycluster.yaml", "RayCluster")["spec"]
    assert job["rayClusterSpec"] == cluster, "rayjob.yaml's cluster differs from raycluster.yaml: edit both"
    command = shlex.split(job["entrypoint"])
    assert command[:2] == ["archivist", "run"]
    spec = spec_at(ray_pods(job["rayClusterSpec"])["head"], command[2])
    assert spec.name == "nightly"
    assert job["shutdownAfterJobFinishes"] is True
    assert isinstance(job["ttlSecondsAfterFinished"], int) and job["ttlSecondsAfterFinished"] >= 0


def test_job_specs_in_the_configmap_load_and_fit_the_cluster() -> None:
    specs = manifest("configmap.yaml", "ConfigMap", "archivist-specs")["data"]
    cluster = manifest("raycluster.yaml", "RayCluster")["spec"]
    gpus_per_worker = max(gpus(c) for pod in ray_pods(cluster).values() for c in pod["containers"])
    assert specs
    for key, text in specs.items():
        spec = parse_spec(yaml.safe_load(text), origin=key)
        assert "://" in spec.source.uri, f"{key}: a local source folder exists on no worker"
        for stage_name, stage in spec.stages:
            # A stage asking for more GPUs than one worker has is never scheduled.
            assert stage.resources.num_gpus <= gpus_per_worker, f"{key}: stages.{stage_name}"


CRON_FIELDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def is_cron(expression: str) -> bool:
    """A five-field crontab line of numbers, ranges, lists, steps and `*`."""
    fields = expression.split()
    if len(fields) != len(CRON_FIELDS):
        return False
    for field, (low, high) in zip(fields, CRON_FIELDS, strict=True):
        for part in field.split(","):
            base, slash, step = part.partition("/")
            if slash and not (step.isdigit() and int(step) > 0):
                return False
            if base == "*":
                continue
            start, dash, end = base.partition("-")
            if not start.isdigit() or (dash and not end.isdigit()):
                return False
            if not low <= int(start) <= int(end if dash else start) <= high:
                return False
    return True


@pytest.mark.parametrize("line, valid", [
    ("0 2 * * *", True), ("*/15 0-6 1,15 * 1-5", True), ("0 2 * *", False),
    ("60 2 * * *", False), ("0 2 * * * *", False), ("0 2 31-1 * *", False), ("@daily", False),
])
def test_is_cron_knows_a_crontab_line(line: str, valid: bool) -> None:
    assert is_cron(line) is valid


def test_cronjob_submits_the_nightly_spec_to_the_raycluster_on_its_schedule() -> None:
    cron = manifest("cronjob.yaml", "CronJob")["spec"]
    assert is_cron(cron["schedule"]), cron["schedule"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert isinstance(cron["startingDeadlineSeconds"], int) and cron["startingDeadlineSeconds"] > 0
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    entrypoint = json.loads(instructions("cpu", "ENTRYPOINT")[-1])
    command = container.get("command", entrypoint) + container.get("args", [])
    assert command[:2] == ["archivist", "submit"]
    spec = spec_at(pod, command[2])
    # The spec's schedule is what `archivist scheduler` would use; the two must agree.
    assert spec.schedule is not None
    assert (cron["schedule"], cron.get("timeZone")) == (spec.schedule.cron, spec.schedule.timezone)
    # APScheduler 3 counts weekdays from Monday = 0, cron from Sunday = 0: numbers there
    # would run the two schedulers on different days.
    assert not re.search(r"\d", cron["schedule"].split()[4])
    cluster = manifest("raycluster.yaml", "RayCluster")
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    (dashboard,) = [p["containerPort"] for p in head["ports"] if p["name"] == "dashboard"]
    # KubeRay names the head's service <cluster>-head-svc.
    address = command[command.index("--address") + 1]
    assert address == f"http://{cluster['metadata']['name']}-head-svc:{dashboard}"


# --- across the deployment files ---------------------------------------------------------


def test_every_archivist_variable_in_infra_is_a_setting() -> None:
    fields = set(Settings.model_fields)
    named = {
        (where, name)
        for where, text in deployment_texts().items()
        for name in re.findall(r"\bARCHIVIST_[A-Z0-9_]+", text)
    }
    assert {name for _, name in named} >= {"ARCHIVIST_HOME", "ARCHIVIST_CATALOG_URL", "ARCHIVIST_RAY_ADDRESS"}
    for where, name in named:
        field = name.removeprefix("ARCHIVIST_").lower()
        # `ARCHIVIST_S3_*` in prose names a family of settings.
        known = any(f.startswith(field) for f in fields) if field.endswith("_") else field in fields
        assert known, f"{where}: {name} is no field of catalog.settings.Settings and would be ignored"


SECRET_LOOKING = {
    "an AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # 32 or more base64 characters mixing upper case, lower case and digits, like an
    # S3 secret key; paths and words in these files have no such runs.
    "a long base64 string": re.compile(
        r"(?<![\w+/=])(?=[\w+/]*[A-Z])(?=[\w+/]*[a-z])(?=[\w+/]*\d)[\w+/]{32,}=*"
    ),
}
PLACEHOLDER = "REPLACE_ME"
S3_KEY = re.compile(r"\b(ARCHIVIST_S3_(?:ACCESS_KEY_ID|SECRET_ACCESS_KEY))\s*[:=]\s*(\S+)")


def test_no_file_in_infra_holds_a_real_secret() -> None:
    for where, text in deployment_texts().items():
        for what, pattern in SECRET_LOOKING.items():
            assert not pattern.search(text), f"{where} holds what looks like {what}"
        for password in re.findall(r"://[^\s/:@'\"]+:([^\s@'\"]+)@", text):
            assert password in (PLACEHOLDER, "PASSWORD"), f"{where}: a password in a URL is not a placeholder"
        for name, value in S3_KEY.findall(text):
            assert value.strip("'\"") == PLACEHOLDER, f"{where}: {name} is set to something real"
    secret = manifest("secret.example.yaml", "Secret")
    assert "data" not in secret, "base64 `data` hides what is in it from review: use stringData placeholders"
    for key, value in secret["stringData"].items():
        assert PLACEHOLDER in value, f"secret.example.yaml: {key} is not a placeholder"
