"""Deployment artefacts in the contract: the example sets, discovery, parsing, every format."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

from chirp.contracts.artefacts import discover
from chirp.contracts.artefacts.launch import find
from chirp.contracts.artefacts.model import Command
from chirp.contracts.artefacts.units import duration, quantity, size
from chirp.contracts.model import Location
from chirp.contracts.runner import check_app
from helpers.deploy import DEPLOYMENT, READY_APP

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SECRET = "pZ7-kQ2vX9mL4tR8wN1cB6yH3jF0sD5gA"

# Each planted mistake in examples/deploy/bad: (rule id, file, line).
BAD_SET = {
    ("artefacts.invalid", "compose.yaml", 5),  # --wrokers: chirp run would refuse it
    ("capacity.memory", "k8s.yaml", 45),  # 128Mi for 4 workers + supervisor
    ("capacity.workers_cpu", "k8s.yaml", 25),  # --workers 4 under a 1-CPU limit
    ("capacity.workers_unbounded", "k8s.yaml", 66),  # --workers 0 and no CPU limit
    ("container.env", "compose.yaml", 7),  # CHIRP_ENV=staging, production judged
    ("container.env", "k8s.yaml", 30),  # CHIRP_DEBUG=true
    ("container.python", "Dockerfile", 2),  # python:3.10 vs requires-python >=3.11
    ("container.root", "Dockerfile", 2),  # no USER
    ("container.root", "compose.yaml", 12),  # user: root
    ("container.root", "k8s.yaml", 47),  # runAsUser: 0
    ("probes.liveness_on_readiness", "k8s.yaml", 40),  # liveness on /ready
    ("probes.missing", "k8s.yaml", 64),  # the admin container has no probes
    ("probes.path", "k8s.yaml", 36),  # startupProbe on /healthz
    ("probes.port", "k8s.yaml", 42),  # readiness on 8080, the server binds 8000
    ("probes.readiness_on_liveness", "k8s.yaml", 42),  # readiness on /health
    ("probes.startup", "k8s.yaml", 36),  # 2 s x 5 < startup_timeout 30 s
    ("secrets.literal", "Dockerfile", 3),  # ENV CHIRP_SECRET_KEY=...
    ("secrets.literal", "compose.yaml", 9),  # ${CHIRP_SECRET_KEY:-default}
    ("secrets.literal", "compose.yaml", 10),  # a password in CHIRP_DATABASE_URL
    ("secrets.literal", "k8s.yaml", 7),  # a committed Secret behind envFrom
    ("shutdown.grace_period", "compose.yaml", 11),  # stop_grace_period 5s
    ("shutdown.grace_period", "k8s.yaml", 21),  # 20 s < shutdown_timeout 30 s
    ("shutdown.prestop", "k8s.yaml", 23),  # behind Service notes, no preStop
    ("shutdown.reload", "Dockerfile", 10),  # --reload
    ("shutdown.signal", "Dockerfile", 9),  # STOPSIGNAL SIGKILL
    ("shutdown.signal", "Dockerfile", 10),  # shell-form CMD
    ("shutdown.signal", "k8s.yaml", 25),  # sh -c without exec
}


def chirp(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHIRP_")}
    base.update(CHIRP_SECRET_KEY=SECRET, CHIRP_ALLOWED_HOSTS="example.com", **env)
    return subprocess.run([sys.executable, "-m", "chirp", *args], cwd=cwd, env=base,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def example_report(name: str, *extra: str) -> tuple[int, dict]:
    result = chirp(["check", "deploy_ready:app", "--deploy", "--artefact", f"deploy/{name}",
                    "--format", "json", *extra], EXAMPLES)  # fmt: skip
    return result.returncode, json.loads(result.stdout)


def test_the_good_example_set_passes() -> None:
    code, report = example_report("good")
    assert code == 0 and report["ok"], report["findings"]
    assert {"probes.path", "shutdown.grace_period", "secrets.literal"} <= set(report["rules_run"])


def test_every_planted_mistake_is_found_with_its_file_and_line() -> None:
    code, report = example_report("bad")
    found = {
        (f["rule_id"], f["location"]["file"].removeprefix("deploy/bad/"), f["location"]["line"])
        for f in report["findings"]
        if f["location"]["file"].startswith("deploy/bad/")
    }
    assert code == 1
    assert found == BAD_SET
    assert all(f["location"]["file"].startswith("deploy/bad/") for f in report["findings"]), report


@pytest.mark.parametrize("fmt", ["text", "sarif", "github", "junit", "markdown"])
def test_artefact_findings_in_every_format(fmt: str) -> None:
    result = chirp(["check", "deploy_ready:app", "--deploy", "--artefact", "deploy/bad/k8s.yaml",
                    "--select", "shutdown.prestop", "--format", fmt], EXAMPLES)  # fmt: skip
    assert result.returncode == 1, result.stderr
    out = result.stdout
    if fmt == "sarif":
        results = json.loads(out)["runs"][0]["results"]
        physical = results[0]["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "deploy/bad/k8s.yaml"
        assert physical["region"]["startLine"] == 23
    elif fmt == "github":
        assert "file=deploy/bad/k8s.yaml,line=23" in out
    else:
        assert "shutdown.prestop" in out and "k8s.yaml" in out


def test_json_report_with_artefact_findings_matches_the_schema() -> None:
    _, report = example_report("bad")
    schema = json.loads((ROOT / "docs/reference/check-report.schema.json").read_text())
    jsonschema.validate(report, schema)


# -- a project of its own -----------------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(
        tmp_path,
        {"app.py": READY_APP, "pyproject.toml": '[project]\nname = "p"\nrequires-python = ">=3.11"\n'},
    )
    return tmp_path


def run_json(project: Path, *args: str) -> tuple[int, dict]:
    result = chirp(["check", "app:app", "--deploy", "--format", "json", *args], project)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def ids(report: dict) -> set[str]:
    return {f["rule_id"] for f in report["findings"] if not f["suppressed"]}


def test_discovery_finds_manifests_and_skips_charts(project: Path) -> None:
    write(project, {
        "k8s/base/deployment.yaml": DEPLOYMENT.replace("45", "10"),
        "chart/Chart.yaml": "name: web\n",
        "chart/templates/deployment.yaml": "{{ if .Values.x }}\nnot: [yaml\n",
        "k8s/kustomization.yaml": "resources: [base/deployment.yaml]\n",
    })  # fmt: skip
    code, report = run_json(project)
    assert code == 1 and ids(report) == {"shutdown.grace_period"}
    (finding,) = report["findings"]
    assert finding["location"] == {"file": "k8s/base/deployment.yaml", "line": 8}


@pytest.mark.parametrize(
    "name",
    ["Dockerfile", "Dockerfile.", "Dockerfile.prod", "web.Dockerfile", ".dockerfile", "dockerfile", "Containerfile.ci",
     "compose.yaml", "compose.yml.bak", "compose.prod.yml", "compose.yaml.yaml", "compose..yml", "docker-compose.a.b.yaml",
     "docker-compose.yml", "xcompose.yaml", "README.md"],
)  # fmt: skip
def test_file_names_match_as_globs_do(name: str) -> None:
    import fnmatch

    patterns = discover.DOCKERFILES + discover.COMPOSE_FILES
    assert all(p.count("*") <= 1 for p in patterns)  # what the text comparison supports
    assert discover._matches(name, patterns) == any(fnmatch.fnmatchcase(name, p) for p in patterns)


def test_settings_name_the_artefacts_and_no_artefacts_reads_none(project: Path) -> None:
    write(project, {"deploy/web.yaml": DEPLOYMENT.replace("45", "10"), "other/web.yaml": DEPLOYMENT})
    assert ids(run_json(project)[1]) == {"shutdown.grace_period"}  # found in deploy/
    (project / "pyproject.toml").write_text(
        '[project]\nname = "p"\n[tool.chirp.check]\nartefacts = ["other/web.yaml"]\n'
    )
    code, report = run_json(project)
    assert code == 0 and "shutdown.grace_period" in report["rules_run"]  # only other/web.yaml
    assert ids(run_json(project, "--artefact", "deploy")[1]) == {"shutdown.grace_period"}
    code, report = run_json(project, "--no-artefacts")
    assert code == 0 and not any(r.startswith("shutdown.") for r in report["rules_run"])


@pytest.mark.parametrize(
    "args, pyproject, message",
    [
        (["--artefact", "missing.yaml"], "", "--artefact: missing.yaml does not exist"),
        (["--artefact", "app.py"], "", "is neither a Dockerfile nor a YAML file"),
        ([], '[tool.chirp.check]\nartefacts = "k8s"\n', "[tool.chirp.check] artefacts is 'k8s'"),
        (["--artefact", "x.yaml", "--no-artefacts"], "", "--artefact and --no-artefacts are exclusive"),
    ],
)
def test_bad_artefact_paths_are_usage_errors(
    project: Path, args: list[str], pyproject: str, message: str
) -> None:
    if pyproject:
        (project / "pyproject.toml").write_text(pyproject)
    result = chirp(["check", "app:app", *args], project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "hint:" in result.stderr


def test_malformed_files_are_findings_with_their_line(project: Path) -> None:
    write(project, {
        "k8s/broken.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: [oops\n",
        "k8s/typed.yaml": DEPLOYMENT.replace("45", '"45s"'),
        "Dockerfile": "# no FROM here\nRUN echo hi\n",
    })  # fmt: skip
    code, report = run_json(project)
    invalid = sorted(
        (f["location"]["file"], f["location"]["line"], f["message"])
        for f in report["findings"] if f["rule_id"] == "artefacts.invalid"
    )  # fmt: skip
    assert code == 1 and [(f, line) for f, line, _ in invalid] == [
        ("Dockerfile", 1), ("k8s/broken.yaml", 5), ("k8s/typed.yaml", 8),
    ]  # fmt: skip
    assert "not valid YAML" in invalid[1][2]
    assert "terminationGracePeriodSeconds is '45s'" in invalid[2][2] and "number of seconds" in invalid[2][2]


def test_pyproject_suppression_of_an_artefact_finding(project: Path) -> None:
    write(project, {"k8s/web.yaml": DEPLOYMENT.replace("45", "10")})
    (project / "pyproject.toml").write_text(
        '[tool.chirp.check]\nsuppress = [{ rule = "shutdown.grace_period", reason = "batch job, drains itself" }]\n'
    )
    code, report = run_json(project)
    assert code == 0
    (finding,) = report["findings"]
    assert (
        finding["rule_id"] == "shutdown.grace_period" and finding["suppressed"]["origin"] == "pyproject.toml"
    )


def test_the_launch_in_the_command_is_what_capacity_judges(project: Path) -> None:
    limited = DEPLOYMENT.replace(
        "          livenessProbe",
        "          resources: {limits: {cpu: 500m, memory: 1Gi}}\n          livenessProbe",
    )
    write(project, {"k8s/web.yaml": limited})
    assert run_json(project)[0] == 0  # 2 workers for 1 CPU (500m rounds up): fine
    write(project, {"k8s/web.yaml": limited.replace('"--workers", "2"', '"--workers", "3"')})
    code, report = run_json(project)
    assert code == 1 and ids(report) == {"capacity.workers_cpu"}
    assert "3 workers (the container command)" in report["findings"][0]["message"]
    # Without a stated count, the app's resolved setting (workers=0 in production) is used.
    write(project, {"k8s/web.yaml": limited.replace(', "--workers", "2"', "")})
    assert run_json(project)[0] == 0  # 0 -> one per CPU of a 500m limit: 1 worker
    write(project, {"k8s/web.yaml": DEPLOYMENT.replace(', "--workers", "2"', "")})
    code, report = run_json(project)
    assert (
        ids(report) == {"capacity.workers_unbounded"}
        and "the app's settings" in report["findings"][0]["message"]
    )


HOOKED_APP = (
    READY_APP.replace("metrics_enabled=True,", 'metrics_enabled=True, worker_mode="sync",')
    + """
@app.on_worker_startup
async def open_pool() -> None:
    pass
"""
)


def launch(project: Path, program: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`chirp run`/`pounce check` as the container would start it (never serving: each refuses
    or answers before it binds)."""
    return chirp(args, project) if program == "chirp" else subprocess.run(
        [sys.executable, "-m", "pounce", *args], cwd=project, capture_output=True, text=True, timeout=60,
        env={**os.environ, "CHIRP_SECRET_KEY": SECRET, "CHIRP_ALLOWED_HOSTS": "example.com", "CHIRP_ENV": "production"},
    )  # fmt: skip


def test_a_settings_file_the_container_does_not_read_fails_the_check(project: Path) -> None:
    """A pounce.toml says async workers, the AppConfig sync ones, and the app has worker hooks:
    the check judged the file and passed while the container's `chirp run` refused to start."""
    write(project, {"app.py": HOOKED_APP, "pounce.toml": 'worker_mode = "async"\n'})
    assert run_json(project)[0] == 0  # no deployment files: judged as `pounce serve --config`
    cmd = '["chirp", "run", "app:app", "--production", "--port", "0"]'
    write(project, {"Dockerfile": f"FROM python:3.12-slim\nUSER 1000\nCMD {cmd}\n"})
    code, report = run_json(project)
    assert code == 1 and ids(report) == {"artefacts.settings_unread"}, report["findings"]
    (finding,) = report["findings"]
    assert finding["location"] == {"file": "Dockerfile", "line": 3}
    assert "reads no settings file" in finding["message"] and "pounce.toml" in finding["message"]
    refused = launch(project, "chirp", "run", "app:app", "--production", "--port", "0")
    assert refused.returncode == 3 and "worker_hooks.sync_mode" in refused.stderr  # the gate agrees now
    # pounce serve without --config reads no file either; with it, the file judged is the one served.
    for argv, unread in (
        ('["pounce", "serve", "--app", "app:app"]', True),
        ('["pounce", "app:app", "--config", "conf/other.toml"]', True),
        ('["pounce", "serve", "--app", "app:app", "--config", "/srv/pounce.toml"]', False),
        ('["pounce", "serve", "--app", "app:app", "--config", "$POUNCE_CONFIG"]', False),
    ):
        write(project, {"Dockerfile": f"FROM python:3.12-slim\nUSER 1000\nCMD {argv}\n"})
        code, report = run_json(project)
        assert (code == 1 and ids(report) == {"artefacts.settings_unread"}) is unread, (
            argv,
            report["findings"],
        )
    assert launch(project, "pounce", "check", "--app", "app:app").returncode != 0
    assert launch(project, "pounce", "check", "--app", "app:app", "--config", "pounce.toml").returncode == 0


def test_requires_python_is_held_to_the_python_images(project: Path) -> None:
    dockerfile = 'FROM python:3.12-slim\nUSER 1000\nCMD ["chirp", "run", "app:app", "--production"]\n'
    write(
        project,
        {"Dockerfile": dockerfile, "pyproject.toml": '[project]\nname = "p"\nrequires-python = ">=3.13"\n'},
    )
    code, report = run_json(project)
    assert code == 1 and ids(report) == {"container.python"}
    write(project, {"pyproject.toml": '[project]\nname = "p"\nrequires-python = "three"\n'})
    code, report = run_json(project)
    assert (
        ids(report) == {"container.python"}
        and "is not a version specifier" in report["findings"][0]["message"]
    )
    write(project, {"Dockerfile": dockerfile.replace("python:3.12-slim", "debian:12")})
    assert "container.python" not in ids(run_json(project)[1])  # no Python image to judge


def test_artefact_parsers_load_only_when_there_are_artefacts(project: Path) -> None:
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['chirp', 'check', 'app:app']\n"
        "try:\n    runpy.run_module('chirp', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('yaml', 'dockerfile_parse', 'packaging') if m in sys.modules))\n"
    )

    def loaded() -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHIRP_")}
        result = subprocess.run([sys.executable, "-c", probe], cwd=project, env=env, capture_output=True,
                                text=True, timeout=60)  # fmt: skip
        return result.stdout.strip().splitlines()[-1]

    assert loaded() == "[]"
    dockerfile = 'FROM python:3.12-slim\nUSER 1000\nCMD ["chirp", "run", "app:app"]\n'
    write(project, {"Dockerfile": dockerfile.replace("python:3.12-slim", "debian:12")})
    assert loaded() == "['dockerfile_parse']"  # no Python image: nothing to hold requires-python to
    write(project, {"Dockerfile": dockerfile})
    assert loaded() == "['dockerfile_parse', 'packaging']"
    write(project, {"k8s/web.yaml": DEPLOYMENT})
    assert loaded() == "['dockerfile_parse', 'packaging', 'yaml']"


# -- the readers ----------------------------------------------------------------------------


def load_text(tmp_path: Path, name: str, text: str):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return discover.load([path])


def test_kubernetes_lists_cronjobs_namespaces_and_secret_refs(tmp_path: Path) -> None:
    art = load_text(tmp_path, "all.yaml", """
        apiVersion: v1
        kind: List
        items:
          - apiVersion: batch/v1
            kind: CronJob
            metadata: {name: nightly, namespace: jobs}
            spec:
              jobTemplate:
                spec:
                  template:
                    spec:
                      containers:
                        - name: job
                          image: web:1
                          env:
                            - {name: CHIRP_SECRET_KEY, valueFrom: {secretKeyRef: {name: s, key: k}}}
                            - {name: CHIRP_ENV, value: production}
                          resources: {limits: {cpu: 1500m, memory: 1Gi}}
          - apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: jobs}
            spec: {selector: {app: web}}
        """)  # fmt: skip
    (container,) = art.containers
    assert container.workload == "CronJob/nightly" and container.namespace == "jobs"
    assert container.cpu_limit is not None and container.cpu_limit.value == 1.5
    assert container.memory_limit is not None and container.memory_limit.value == 2**30
    secret, env = container.env
    assert (secret.source, secret.ref, secret.literal) == ("secret", "s/k", None)
    assert (env.literal, env.at) == ("production", Location(str(tmp_path / "all.yaml"), 17))
    assert art.services[0].namespace == "jobs" and not art.services[0].selects(container)


def test_compose_interpolation_and_durations(tmp_path: Path) -> None:
    art = load_text(tmp_path, "compose.yaml", """
        services:
          web:
            build: .
            command: chirp run app:app --workers 2
            environment:
              - CHIRP_SECRET_KEY
              - CHIRP_ENV=${DEPLOY_ENV:-production}
              - CHIRP_REDIS_URL=${REDIS_URL}
            stop_grace_period: 1m30s
            cpus: "0.5"
            mem_limit: 512m
        """)  # fmt: skip
    (web,) = art.containers
    assert [(e.name, e.source, e.literal) for e in web.env] == [
        ("CHIRP_SECRET_KEY", "outside", None),
        ("CHIRP_ENV", "literal", "production"),
        ("CHIRP_REDIS_URL", "outside", None),
    ]
    assert web.grace_period is not None and web.grace_period.value == 90
    assert web.command is not None and web.command.argv[-2:] == ("--workers", "2")
    assert web.cpu_limit is not None and web.cpu_limit.value == 0.5
    assert web.memory_limit is not None and web.memory_limit.value == 512 * 2**20


def test_dockerfile_final_stage_inherits_from_its_base_stage(tmp_path: Path) -> None:
    art = load_text(tmp_path, "Dockerfile", """
        ARG PY=3.13
        FROM python:${PY}-slim AS base
        ENV CHIRP_ENV=production
        USER 10001
        ENTRYPOINT ["tini", "--"]
        CMD ["chirp", "run", "app:app"]

        FROM base AS final
        ARG CHIRP_SECRET_KEY
        CMD ["chirp", "run", "app:app", \\
             "--workers", "3"]
        """)  # fmt: skip
    (image,) = art.images
    assert (image.base.value, image.base.at.line) == ("python:3.13-slim", 2)
    assert image.user is not None and image.user.value == "10001"
    assert [(e.name, e.literal) for e in image.env] == [("CHIRP_ENV", "production")]
    assert image.command is not None and image.command.at.line == 10
    assert image.command.argv == ("tini", "--", "chirp", "run", "app:app", "--workers", "3")
    assert [(e.name, e.source) for e in image.all_env] == [
        ("PY", "build-arg"), ("CHIRP_ENV", "literal"), ("CHIRP_SECRET_KEY", "build-arg"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "argv, exec_form, tool, shell, workers",
    [
        (("chirp", "run", "app:app", "--workers", "4"), True, "chirp run", None, 4),
        (("chirp run app:app --workers 4",), False, "chirp run", "shell", 4),
        (("exec chirp run app:app",), False, "chirp run", "exec", None),
        (("sh", "-c", "migrate && exec python -u -m chirp run app:app"), True, "chirp run", "exec", None),
        (("sh", "-c", "migrate; pounce serve --app app:app --workers 2"), True, "pounce serve", "shell", 2),
        (("dumb-init", "pounce", "app:app", "--workers", "$(WORKERS)"), True, "pounce serve", None, 5),
        (("pounce", "app:app", "--workers", "$(OTHER)"), True, "pounce serve", None, None),
    ],
)
def test_launches_are_parsed_by_the_real_commands(
    argv: tuple[str, ...], exec_form: bool, tool: str, shell: str | None, workers: int | None
) -> None:
    launch = find(Command(argv, exec_form, Location("x", 1), "test"), {"WORKERS": "5"})
    assert launch is not None and launch.error is None
    assert (launch.tool, launch.shell, launch.stated("workers")) == (tool, shell, workers)


def test_not_a_launch_and_a_refused_launch() -> None:
    at = Location("x", 1)
    assert find(Command(("gunicorn", "app:app"), True, at, "t")) is None
    assert find(Command(("chirp", "check", "app:app"), True, at, "t")) is None
    refused = find(Command(("chirp", "run", "app:app", "--workers", "four"), True, at, "t"))
    assert refused is not None and "'four' is not a valid integer" in (refused.error or "")


def test_units() -> None:
    assert quantity("250m") == 0.25 and quantity("2") == 2 and quantity("1Ki") == 1024
    assert quantity("1e3") == 1000 and quantity("1G") == 1e9 and quantity("lots") is None
    assert size("1gb") == 2**30 and size(1024) == 1024 and size("big") is None
    assert duration("1h2m3s") == 3723 and duration("500ms") == 0.5 and duration("soon") is None


def test_rules_run_in_process_with_loaded_artefacts(load_app, tmp_path: Path) -> None:
    mod = load_app(READY_APP.replace("AppConfig.from_env(", "AppConfig.from_env(secret_key='x' * 40, "))
    art = load_text(tmp_path, "k8s/web.yaml", DEPLOYMENT.replace("/ready", "/health"))
    report = check_app(mod.app, deploy=True, artefacts=art)
    (finding,) = [f for f in report.findings if f.category == "probes"]
    assert finding.rule_id == "probes.readiness_on_liveness" and finding.location is not None
    assert finding.location.line == 15 and finding.docs == "docs/reference/rules/probes.md"


def test_each_launch_is_parsed_once_per_check(load_app, tmp_path: Path, monkeypatch) -> None:
    """The artefact rules share the launches: click parses each command once, not once a rule."""
    from chirp.contracts.artefacts import launch

    mod = load_app(READY_APP.replace("AppConfig.from_env(", "AppConfig.from_env(secret_key='x' * 40, "))
    write(tmp_path, {"k8s/web.yaml": DEPLOYMENT.replace('"--workers", "2"', '"--workers", "0"'),
                     "Dockerfile": 'FROM python:3.12-slim\nUSER 1000\nCMD ["chirp", "run", "app:app"]\n'})  # fmt: skip
    files = [tmp_path / "Dockerfile", tmp_path / "k8s/web.yaml"]
    expected = check_app(mod.app, deploy=True, artefacts=discover.load(files))
    parsed: list[tuple[str, ...]] = []

    def counting(command: Command, env: dict[str, str] | None = None) -> launch.Launch | None:
        parsed.append(command.argv)
        return find(command, env)

    monkeypatch.setattr(launch, "find", counting)
    art = discover.load(files)
    report = check_app(mod.app, deploy=True, artefacts=art)
    assert report.findings == expected.findings and expected.findings  # the same verdict
    assert len(parsed) == len(set(parsed)) == len(art.launches) == 2  # the container's and the image's


def test_the_github_action_judges_the_artefacts_it_is_given(tmp_path: Path) -> None:
    from helpers.action import Runner

    shutil.copy(EXAMPLES / "deploy_ready.py", tmp_path)
    bad = EXAMPLES / "deploy" / "bad"
    runner = Runner(tmp_path, app="deploy_ready:app", artefacts=f"{bad / 'k8s.yaml'} {bad / 'compose.yaml'}")
    result = runner.run("chirp check", {"CHIRP_ALLOWED_HOSTS": "example.com"})
    assert result.returncode == 0, result.stderr  # the step records; "Fail on findings" fails the job
    outputs = runner.outputs()
    report = json.loads((tmp_path / outputs["report"]).read_text())
    files = {f["location"]["file"].rsplit("/", 1)[-1] for f in report["findings"]}
    assert outputs["exit-code"] == "1" and files == {"k8s.yaml", "compose.yaml"}
    assert f"::error file={bad / 'compose.yaml'},line=5,title=artefacts.invalid::" in result.stdout
