"""The deployment files under deploy/: Kubernetes manifests, the Dockerfile, the
systemd unit.

No cluster, container engine or systemd manager runs here, so the files are
held to what they must agree with: the sluice.toml each ConfigMap carries (its
admin port, drain_timeout, workers) passes `sluice check` and matches the
probes, the grace period and the CPU limit; the Dockerfile installs exactly
tools/bootstrap's build packages and nothing of them at run time; the unit
carries its directives. The tools that are there run too: kubectl's kustomize
renders both kustomizations, `systemd-analyze verify` reads the unit, meson
configures the Docker build context that .dockerignore leaves."""

import json
import pathlib
import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from conftest import REPO, SLUICE, run_sluice

KUBE = REPO / "deploy" / "kubernetes"
BASE = KUBE / "base"
OVERLAY = KUBE / "overlays" / "socketio"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
UNIT = REPO / "deploy" / "systemd" / "sluice.service"
BOOTSTRAP = REPO / "tools" / "bootstrap"

DEFAULT_DRAIN_S = 30.0            # SPEC.md: server.drain_timeout
DEFAULT_MAX_CONNECTIONS = 100000  # SPEC.md: server.max_connections


# ---- helpers ------------------------------------------------------------------

def load_docs(path):
    """Every YAML document of a file, empty ones dropped."""
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def kustomization(directory):
    return load_docs(directory / "kustomization.yaml")[0]


def local_objects(directory):
    """The objects a kustomization's own files define: its file resources and its
    patches (not the bases it includes)."""
    k = kustomization(directory)
    objs = []
    for entry in k.get("resources", []):
        path = directory / entry
        if path.is_file():
            objs += load_docs(path)
    for patch in k.get("patches", []):
        objs += load_docs(directory / patch["path"])
    return objs


def one(objs, kind):
    found = [o for o in objs if o.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def duration_s(text):
    """A sluice duration ("250ms", "30s", "5m", "1h") in seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    assert m, f"not a duration: {text!r}"
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def drain_s(server):
    """server.drain_timeout in seconds, SPEC.md's default when absent."""
    return duration_s(server["drain_timeout"]) if "drain_timeout" in server else DEFAULT_DRAIN_S


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def cpu_cores(quantity):
    quantity = str(quantity)
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def named(items, name):
    found = [i for i in items if i["name"] == name]
    assert len(found) == 1, f"expected one item named {name!r}, found {len(found)}"
    return found[0]


def sluice_container(deployment):
    return named(deployment["spec"]["template"]["spec"]["containers"], "sluice")


def container_port(container, port):
    """A probe's or Service's port (a number or a container port's name) as a number."""
    if isinstance(port, int):
        return port
    names = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert port in names, f"port name {port!r} is not one of the container's {sorted(names)}"
    return names[port]


def prestop_sleep_s(container):
    pre = container["lifecycle"]["preStop"]
    if "sleep" in pre:  # Kubernetes >= 1.30: lifecycle.preStop.sleep.seconds
        return float(pre["sleep"]["seconds"])
    cmd = pre["exec"]["command"]
    assert cmd[0] == "/bin/sleep" and len(cmd) == 2, f"preStop is not a sleep: {cmd}"
    return float(cmd[1])


BASE_OBJS = local_objects(BASE)
OVERLAY_OBJS = local_objects(OVERLAY)
DEPLOYMENT = one(BASE_OBJS, "Deployment")
CONTAINER = sluice_container(DEPLOYMENT)
POD = DEPLOYMENT["spec"]["template"]["spec"]
CONFIGS = {
    "base": one(BASE_OBJS, "ConfigMap")["data"]["sluice.toml"],
    "overlay": one(OVERLAY_OBJS, "ConfigMap")["data"]["sluice.toml"],
}


def toml_of(which):
    return tomllib.loads(CONFIGS[which])


def write_toml(tmp_path, text):
    """sluice.toml in its own directory, as in the ConfigMap volume (relative
    paths in it resolve against that directory)."""
    d = tmp_path / "etc-sluice"
    d.mkdir()
    path = d / "sluice.toml"
    path.write_text(text)
    return path


# ---- every file parses, every kustomization names files that exist ---------------

def test_every_yaml_document_parses_and_names_its_kind():
    files = sorted(KUBE.rglob("*.yaml"))
    assert files
    for path in files:
        docs = load_docs(path)
        assert docs, f"{path} holds no document"
        for d in docs:
            assert d.get("apiVersion") and d.get("kind"), f"{path}: a document without apiVersion/kind"


def test_kustomizations_reference_existing_files_and_no_file_is_forgotten():
    for directory in {p.parent for p in KUBE.rglob("kustomization.yaml")}:
        k = kustomization(directory)
        named = set()
        for entry in k.get("resources", []):
            path = (directory / entry).resolve()
            assert path.exists(), f"{directory}/kustomization.yaml: {entry} does not exist"
            if path.is_dir():
                assert (path / "kustomization.yaml").exists(), f"{entry} is not a kustomization"
            named.add(path)
        for patch in k.get("patches", []):
            path = (directory / patch["path"]).resolve()
            assert path.exists(), f"{directory}: patch {patch['path']} does not exist"
            named.add(path)
        for path in directory.glob("*.yaml"):
            if path.name != "kustomization.yaml":
                assert path.resolve() in named, f"{path} is in no kustomization"


def test_top_level_kustomization_is_the_base():
    assert kustomization(KUBE)["resources"] == ["base"]


# ---- Deployment ------------------------------------------------------------------

def test_deployment_runs_at_least_two_replicas():
    assert DEPLOYMENT["apiVersion"] == "apps/v1"
    assert DEPLOYMENT["spec"]["replicas"] >= 2
    rolling = DEPLOYMENT["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0, "a rollout must not take capacity away before the new pod is ready"


@pytest.mark.parametrize("which", ["base", "overlay"])
def test_probes_hit_the_admin_port_of_the_config(which):
    admin = toml_of(which)["admin"]["address"]
    # The kubelet connects to the pod's IP: a loopback admin listener fails every probe.
    assert admin.startswith(("0.0.0.0:", "[::]:")), f"{which}: admin listens on {admin}"
    probes = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}
    for probe, path in probes.items():
        get = CONTAINER[probe]["httpGet"]
        assert get["path"] == path
        assert container_port(CONTAINER, get["port"]) == port_of(admin), f"{probe} misses {admin}"


@pytest.mark.parametrize("which", ["base", "overlay"])
def test_grace_period_outlasts_prestop_plus_drain(which):
    server = toml_of(which).get("server", {})
    drain = drain_s(server)
    grace = POD["terminationGracePeriodSeconds"]
    sleep = prestop_sleep_s(CONTAINER)
    # The grace period runs from the moment the pod terminates: preStop first, then SIGTERM.
    assert grace > sleep + drain, f"{which}: {grace}s grace < {sleep}s preStop + {drain}s drain"
    assert grace > drain


def test_prestop_sleeps_a_few_seconds_with_a_binary_the_image_has():
    sleep = prestop_sleep_s(CONTAINER)
    assert 2 <= sleep <= 15
    if "exec" in CONTAINER["lifecycle"]["preStop"]:
        # /bin/sleep is coreutils, which debian:*-slim always contains.
        assert dockerfile_stages()[-1]["from"].startswith("debian:12-slim")


def test_security_context():
    pod_sc = POD.get("securityContext", {})
    sc = CONTAINER["securityContext"]
    assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    assert uid == dockerfile_uid(), "runAsUser differs from the image's USER"
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert not sc["capabilities"].get("add")
    assert not sc.get("privileged")
    assert POD.get("automountServiceAccountToken") is False


def test_resources_and_workers_agree():
    res = CONTAINER["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(res[part]), f"resources.{part} needs cpu and memory"
    assert cpu_cores(res["requests"]["cpu"]) <= cpu_cores(res["limits"]["cpu"])
    # workers = 0 would start one loop per node core: the cgroup limit is not seen.
    for which in CONFIGS:
        workers = toml_of(which)["server"]["workers"]
        assert workers == cpu_cores(res["limits"]["cpu"]), f"{which}: workers != CPU limit"


def test_config_is_a_configmap_directory_mount_watched_for_changes():
    args = CONTAINER["args"]
    config_path = pathlib.PurePosixPath(args[args.index("--config") + 1])
    assert str(config_path) == "/etc/sluice/sluice.toml"
    for mount in CONTAINER["volumeMounts"]:
        assert "subPath" not in mount and "subPathExpr" not in mount, \
            f"{mount['name']}: a subPath mount never sees ConfigMap/Secret updates"
    mounts = {m["mountPath"]: m for m in CONTAINER["volumeMounts"]}
    mount = mounts[str(config_path.parent)]
    assert mount.get("readOnly") is True
    volume = named(POD["volumes"], mount["name"])
    assert volume["configMap"]["name"] == one(BASE_OBJS, "ConfigMap")["metadata"]["name"]
    assert "items" not in volume["configMap"]
    for which in CONFIGS:
        assert toml_of(which)["server"]["watch_config"] is True


def test_tls_example_reads_the_secret_directory():
    """The commented TLS listener names files inside the Secret's directory mount."""
    paths = re.findall(r'^# (?:cert|key) = "([^"]+)"', CONFIGS["base"], re.M)
    assert len(paths) == 2, "the base config should carry a commented TLS example"
    secret_mounts = {}
    for mount in CONTAINER["volumeMounts"]:
        volume = named(POD["volumes"], mount["name"])
        if "secret" in volume:
            secret_mounts[mount["mountPath"]] = volume["secret"]
    for p in paths:
        directory = str(pathlib.PurePosixPath(p).parent)
        assert directory in secret_mounts, f"{p} is not in a Secret volume"
        secret = secret_mounts[directory]
        assert secret.get("optional") is True, "pods must start while TLS is commented out"
        assert secret["defaultMode"] & 0o044 == 0o040, "the key is for the pod's group only (fsGroup)"
    assert POD["securityContext"]["fsGroup"] == dockerfile_uid()


def test_tls_example_passes_check_when_uncommented(tmp_path):
    certs = tmp_path / "tls"
    certs.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", certs / "tls.key", "-out", certs / "tls.crt", "-days", "2",
                    "-subj", "/CN=sluice.test"], check=True, capture_output=True)
    text = re.sub(r"^# (\[\[listener\]\]|address = \"0\.0\.0\.0:8443\"|\[listener\.tls\]|cert = .*|key = .*)$",
                  r"\1", CONFIGS["base"], flags=re.M)
    text = text.replace("/etc/sluice-tls/", str(certs) + "/")
    assert text.count("[[listener]]") == 2 and "[listener.tls]" in text
    code, out, err = run_sluice("check", "--config", str(write_toml(tmp_path, text)))
    assert code == 0, err
    assert "2 listeners" in out


# ---- the ConfigMaps' sluice.toml ---------------------------------------------------

@pytest.mark.parametrize("which", ["base", "overlay"])
def test_configmap_toml_passes_sluice_check(which, tmp_path):
    code, out, err = run_sluice("check", "--config", str(write_toml(tmp_path, CONFIGS[which])))
    assert code == 0, err
    # The one warning allowed is check's reassurance that a catch-all does not
    # swallow the realtime route (it says which route still wins).
    warnings = [line for line in err.splitlines() if ": warning: " in line and "still wins" not in line]
    assert not warnings, err
    assert ": ok (" in out


def test_overlay_config_replaces_the_base_configmap():
    base_cm = one(BASE_OBJS, "ConfigMap")
    patch = one(OVERLAY_OBJS, "ConfigMap")
    assert patch["metadata"]["name"] == base_cm["metadata"]["name"]
    assert CONFIGS["overlay"] != CONFIGS["base"]


def test_overlay_follows_the_headless_service_with_engineio_affinity(tmp_path):
    cfg = toml_of("overlay")
    namespace = kustomization(OVERLAY)["namespace"]
    headless = one(OVERLAY_OBJS, "Service")
    assert headless["spec"]["clusterIP"] == "None"
    assert not headless["spec"].get("publishNotReadyAddresses"), "unready pods must leave the DNS answer"

    routes = [r for r in cfg["route"] if r.get("kind") == "socketio"]
    assert len(routes) == 1
    upstream = cfg["upstream"][routes[0]["upstream"]]
    assert upstream["affinity"] == "engine.io"
    [server] = upstream["servers"]
    m = re.fullmatch(r"dns:([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local\.?:(\d+)", server)
    assert m, f"not a headless Service name: {server}"
    assert m.group(1) == headless["metadata"]["name"]
    assert m.group(2) == namespace, "the dns: name and the overlay's namespace disagree"
    assert int(m.group(3)) in [p["port"] for p in headless["spec"]["ports"]]

    code, out, err = run_sluice("explain", "--config", str(write_toml(tmp_path, CONFIGS["overlay"])),
                                "/socket.io/?EIO=4&transport=polling")
    assert code == 0, err
    explained = json.loads(out)
    assert explained["route"] == routes[0]["name"] and explained["kind"] == "socketio"


def test_overlay_readme_explains_the_shared_nothing_affinity():
    text = (OVERLAY / "README.md").read_text()
    for words in ("shared state", "token", "headless", "reconnect"):
        assert words in text, f"overlay README says nothing of {words!r}"


# ---- Service, PodDisruptionBudget, HorizontalPodAutoscaler ---------------------------

def test_service_publishes_http_and_https_not_admin():
    svc = one(BASE_OBJS, "Service")
    assert svc["spec"]["type"] == "LoadBalancer"
    pod_labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["port"]: container_port(CONTAINER, p["targetPort"]) for p in svc["spec"]["ports"]}
    assert ports == {80: 8080, 443: 8443}
    assert port_of(toml_of("base")["listener"][0]["address"]) == 8080


def test_pod_disruption_budget():
    pdb = one(BASE_OBJS, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    spec = pdb["spec"]
    assert spec.get("minAvailable") == 1 or spec.get("maxUnavailable") == 1
    pod_labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()


def test_horizontal_pod_autoscaler_on_cpu():
    hpa = one(BASE_OBJS, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    target = spec["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", DEPLOYMENT["metadata"]["name"])
    assert 2 <= spec["minReplicas"] <= DEPLOYMENT["spec"]["replicas"] <= spec["maxReplicas"]
    [metric] = spec["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert "cpu" in CONTAINER["resources"]["requests"], "CPU utilization is relative to the request"


# ---- kustomize, where a kubectl or kustomize is installed ------------------------------

def kustomize_command():
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        out = subprocess.run(["kubectl", "version", "--client"], capture_output=True, text=True).stdout
        m = re.search(r"Kustomize Version: v(\d+)", out)
        if m and int(m.group(1)) >= 4:
            return ["kubectl", "kustomize"]
        pytest.skip("kubectl's built-in kustomize is older than v4 (no `patches:` with a path)")
    pytest.skip("neither kustomize nor kubectl is installed")


def kustomize_build(directory):
    proc = subprocess.run([*kustomize_command(), str(directory)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d is not None]


def test_kustomize_builds_the_base():
    objs = kustomize_build(KUBE)
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == sorted(["ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                            "PodDisruptionBudget", "Service"])
    image = sluice_container(one(objs, "Deployment"))["image"]
    assert ":" in image, f"the image is not pinned to a tag: {image}"
    assert one(objs, "ConfigMap")["data"]["sluice.toml"] == CONFIGS["base"]


def test_kustomize_builds_the_socketio_overlay():
    objs = kustomize_build(OVERLAY)
    namespace = kustomization(OVERLAY)["namespace"]
    for o in objs:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == namespace, f"{o['kind']} {o['metadata']['name']}"
    config_maps = [o for o in objs if o["kind"] == "ConfigMap"]
    assert [c["data"]["sluice.toml"] for c in config_maps] == [CONFIGS["overlay"]]
    deployment = one(objs, "Deployment")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert config_maps[0]["metadata"]["name"] in [v.get("configMap", {}).get("name") for v in volumes]
    services = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Service"}
    assert services["app-headless"]["spec"]["clusterIP"] == "None"
    assert services["sluice"]["spec"]["type"] == "LoadBalancer"


# ---- Dockerfile and .dockerignore ----------------------------------------------------------

def bootstrap_packages(section):
    """The packages of tools/bootstrap listed under the comment `# SECTION`."""
    text = BOOTSTRAP.read_text()
    block = re.search(r"^packages=\((.*?)^\)", text, re.S | re.M).group(1)
    current, found = None, []
    for line in block.splitlines():
        line = line.strip()
        if line.startswith("#"):
            current = line[1:].split()[0].rstrip(":")
        elif line and current == section:
            found += line.split()
    assert found, f"no {section} packages in tools/bootstrap"
    return found


def dockerfile_instructions():
    """(INSTRUCTION, arguments) pairs: continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerfile_stages():
    stages = []
    for word, rest in dockerfile_instructions():
        if word == "FROM":
            image, _, name = rest.partition(" AS ")
            stages.append({"from": image.strip(), "name": name.strip() or None, "steps": []})
        else:
            stages[-1]["steps"].append((word, rest))
    return stages


def apt_installs(stage):
    packages = []
    for word, rest in stage["steps"]:
        if word != "RUN":
            continue
        for command in re.split(r"&&|;", rest):
            tokens = command.split()
            if "apt-get" in tokens and "install" in tokens:
                after = tokens[tokens.index("install") + 1:]
                packages += [t for t in after if not t.startswith("-")]
    return packages


def dockerfile_uid():
    [user] = [rest for word, rest in dockerfile_stages()[-1]["steps"] if word == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit(), "USER must be numeric for runAsNonRoot to verify it"
    return int(uid)


def test_dockerfile_builds_on_bookworm_with_the_bootstrap_packages():
    builder, runtime = dockerfile_stages()
    assert builder["from"] == "debian:12" and builder["name"]
    assert runtime["from"] == "debian:12-slim"
    installed = apt_installs(builder)
    assert sorted(installed) == sorted(bootstrap_packages("build"))
    assert len(installed) == len(set(installed))
    runs = " ".join(rest for word, rest in builder["steps"] if word == "RUN")
    # tools/build release: `meson setup build-release --buildtype=release`, then ninja.
    release_opts = re.search(r"release\)\s+dir=(\S+);\s+opts=\(([^)]*)\)", (REPO / "tools" / "build").read_text())
    build_dir, opts = release_opts.group(1), release_opts.group(2).split()
    assert re.search(rf"meson setup {re.escape(build_dir)} {' '.join(map(re.escape, opts))}(\s|$)", runs), runs
    assert f"ninja -C {build_dir}" in runs


def test_dockerfile_runtime_stage_has_libraries_and_no_build_tools():
    builder, runtime = dockerfile_stages()
    installed = apt_installs(runtime)
    build_tools = set(bootstrap_packages("build")) | {"gcc", "g++", "make", "clang", "binutils"}
    assert not set(installed) & build_tools
    assert not [p for p in installed if p.endswith("-dev")]
    assert "ca-certificates" in installed, "upstream TLS verifies against the system store"
    assert "libtomlplusplus3" in installed and "libuv1" in installed and "libssl3" in installed

    # Every shared library the binary needs comes from an installed package or
    # from what debian:12-slim always has (libc6; libstdc++6 and libgcc-s1 for apt).
    if not shutil.which("readelf") or not shutil.which("dpkg"):
        return
    elf = subprocess.run(["readelf", "-d", SLUICE], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", elf)
    needed = [lib for lib in needed if not re.match(r"lib(a|ub|l|t)san", lib)]  # the asan build
    in_slim = {"libc6", "libstdc++6", "libgcc-s1"}
    for lib in needed:
        owner = subprocess.run(["dpkg", "-S", f"*/{lib}"], capture_output=True, text=True)
        packages = {p.split(":")[0] for line in owner.stdout.splitlines()
                    for p in line.partition(": ")[0].split(", ")}
        assert packages & (set(installed) | in_slim), f"{lib} ({packages}) is not in the runtime image"


def test_dockerfile_runtime_entrypoint_user_ports():
    _, runtime = dockerfile_stages()
    steps = dict((w, r) for w, r in runtime["steps"] if w in {"ENTRYPOINT", "CMD", "EXPOSE", "USER"})
    assert json.loads(steps["ENTRYPOINT"]) == ["/usr/local/bin/sluice"]
    assert json.loads(steps["CMD"]) == ["--config", "/etc/sluice/sluice.toml"]
    assert set(steps["EXPOSE"].split()) == {"8080", "8443", "9901"}
    assert dockerfile_uid() != 0
    copies = [r for w, r in runtime["steps"] if w == "COPY"]
    assert "--from=builder /src/build-release/sluice /usr/local/bin/sluice" in copies
    assert "conf/sluice.toml /etc/sluice/sluice.toml" in copies
    # The k8s container args match the image's CMD, so either works.
    assert CONTAINER["args"] == json.loads(steps["CMD"])


def dockerignore_patterns():
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


def dockerignore_regex(pattern):
    """Docker's .dockerignore matching: Go filepath.Match plus `**`; a pattern
    that matches a directory excludes everything in it."""
    pattern = pattern.strip("/")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "(?:/.*)?$")


def docker_context_files():
    """The files `docker build .` sends: what git knows (tracked or not ignored),
    less what .dockerignore excludes."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    rules = [(p.startswith("!"), dockerignore_regex(p.lstrip("!"))) for p in dockerignore_patterns()]
    kept = []
    for path in filter(None, listed):
        excluded = False
        for negated, regex in rules:
            if regex.match(path):
                excluded = not negated
        if not excluded and (REPO / path).is_file():
            kept.append(path)
    return kept


def test_dockerignore_excludes_builds_modules_git_and_keys():
    rules = [dockerignore_regex(p) for p in dockerignore_patterns() if not p.startswith("!")]

    def excluded(path):
        return any(r.match(path) for r in rules)
    for path in [".git/HEAD", "build-release/sluice", "build-ci/build.ninja", "build-asan/x",
                 "tests/integration/node/node_modules/ws/index.js", "conf/tls/key.pem",
                 "conf/tls/cert.pem", "conf/tls/api.key"]:
        assert excluded(path), f"{path} would be sent to the Docker build"
    for path in ["meson.build", "src/main/main.cc", "include/sluice/config.h", "conf/sluice.toml",
                 "tests/meson.build", "tests/unit/main.cc", "tools/bench/meson.build"]:
        assert not excluded(path), f"{path} is needed by the image build"


@pytest.mark.skipif(not shutil.which("meson") or not shutil.which("git"), reason="needs meson and git")
def test_docker_context_configures_as_the_image_build_does(tmp_path):
    """meson setup (which checks that every source file exists) in a copy of
    exactly the files the Docker build context would hold."""
    ctx = tmp_path / "src"
    files = docker_context_files()
    assert "conf/sluice.toml" in files
    for rel in files:
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, ctx / rel)
    proc = subprocess.run(["meson", "setup", "build-release", "--buildtype=release"], cwd=ctx,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


# ---- systemd unit ------------------------------------------------------------------------

def unit_directives():
    directives, section = {}, None
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        directives.setdefault((section, key.strip()), []).append(value.strip())
    return directives


def systemd_seconds(value):
    m = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", value)
    assert m, f"unexpected time span {value!r}"
    return int(m.group(1)) * (60 if m.group(2) in ("min", "m") else 1)


def test_systemd_unit_directives():
    d = unit_directives()

    def get(key, section="Service"):
        values = d.get((section, key))
        assert values, f"[{section}] {key}= is missing"
        return values[-1]
    assert get("Type") == "simple"  # sluice does not speak sd_notify
    assert get("ExecStart") == "/usr/local/bin/sluice --config /etc/sluice/sluice.toml"
    assert "/bin/kill -HUP $MAINPID" in d[("Service", "ExecReload")]
    assert get("KillSignal") == "SIGTERM"
    assert get("Restart") == "on-failure"
    for key in ("DynamicUser", "ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        assert get(key) == "yes", key
    assert get("ProtectSystem") == "strict"
    assert get("AmbientCapabilities") == "CAP_NET_BIND_SERVICE"
    assert get("CapabilityBoundingSet") == "CAP_NET_BIND_SERVICE"
    assert set(get("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert get("WantedBy", "Install") == "multi-user.target"

    # The unit runs conf/sluice.toml (installed as /etc/sluice/sluice.toml).
    server = tomllib.loads((REPO / "conf" / "sluice.toml").read_text()).get("server", {})
    drain = drain_s(server)
    assert systemd_seconds(get("TimeoutStopSec")) > drain
    max_connections = server.get("max_connections", DEFAULT_MAX_CONNECTIONS)
    assert int(get("LimitNOFILE")) > 2 * max_connections  # client + upstream per connection


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path):
    # verify wants ExecStart's binary to exist: point the copy at the one under test.
    unit = tmp_path / "sluice.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/sluice", str(pathlib.Path(SLUICE).resolve())))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # Unknown keys and bad values are only warnings (exit 0): any line about the unit fails.
    about_unit = [line for line in (proc.stdout + proc.stderr).splitlines() if "sluice.service" in line]
    assert proc.returncode == 0 and not about_unit, proc.stdout + proc.stderr
