"""The container image (deploy/container/Dockerfile), checked without a container runtime.

Container runtimes do not run on these machines (crun fails on the cgroup setup), so the image is
not built here. Instead: hadolint lints the Dockerfile; its structure is checked (multi-stage,
non-root, nothing at run time needs a shell); and the build stage's install steps run verbatim,
with ``/bin/sh -c`` as Docker runs them, against the wheel built from this checkout in a clean venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

import patwarden
from tests.deploy import dockerfile
from tests.deploy.support import DEPLOY, REPO, TOOLS_BIN, Dist, run, tool, tool_env

DOCKERFILE = DEPLOY / "container" / "Dockerfile"
BEGIN, END = "install steps: begin", "install steps: end"


@pytest.fixture(scope="module")
def parsed() -> dockerfile.Dockerfile:
    return dockerfile.parse(DOCKERFILE)


def test_hadolint_finds_nothing() -> None:
    output = run([tool("hadolint"), "--format", "json", str(DOCKERFILE)])
    assert json.loads(output) == []


def test_it_is_multi_stage_and_the_runtime_stage_needs_no_shell(
    parsed: dockerfile.Dockerfile,
) -> None:
    assert [s.name for s in parsed.stages] == ["uv", "build", None]
    runtime = parsed.stages[-1]
    assert runtime.image == "${RUNTIME_IMAGE}"
    assert parsed.args["RUNTIME_IMAGE"].startswith("gcr.io/distroless/python3-debian12:nonroot")
    # Nothing in the final stage runs a command at build time or through a shell at run time.
    for keyword in ("RUN", "SHELL", "HEALTHCHECK"):
        assert not runtime.all(keyword), f"{keyword} in the runtime stage"
    (entrypoint,) = runtime.all("ENTRYPOINT")
    (cmd,) = runtime.all("CMD")
    assert entrypoint.exec_form == ["/opt/patwarden/bin/patwarden"]
    assert cmd.exec_form is not None
    assert cmd.exec_form[0] == "serve"
    (copy,) = runtime.all("COPY")
    assert copy.arguments == "--from=build /opt/patwarden /opt/patwarden"


def test_it_runs_as_a_numeric_non_root_user(parsed: dockerfile.Dockerfile) -> None:
    (user,) = parsed.stages[-1].all("USER")
    uid, _, gid = user.arguments.partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0


def test_the_build_stage_uses_the_uv_the_makefile_pins(parsed: dockerfile.Dockerfile) -> None:
    pinned = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert pinned, "UV_VERSION not found in the Makefile"
    assert parsed.stages[0].image == f"ghcr.io/astral-sh/uv:{pinned[1]}"
    build = parsed.stage("build")
    assert build.env()["VENV"] == "/opt/patwarden"
    (copy,) = [c for c in build.all("COPY") if not c.arguments.startswith("--from")]
    assert copy.arguments == "requirements.txt patwarden-*.whl /dist/"


def _python(declared: str) -> str:
    """The build stage's interpreter where this machine has it at that path, else this one's."""
    if Path(declared).exists():
        version = run([declared, "-c", "import sys; print(sys.version_info >= (3, 11))"])
        if version.strip() == "True":
            return declared
    return shutil.which("python3") or declared


@pytest.mark.slow
def test_the_image_install_steps_run_verbatim_in_a_clean_venv(
    parsed: dockerfile.Dockerfile, dist: Dist, tmp_path: Path
) -> None:
    steps = parsed.between(BEGIN, END)
    assert steps
    assert all(step.keyword == "RUN" for step in steps)
    # The build context: exactly what the COPY brings into /dist/.
    context = tmp_path / "dist"
    context.mkdir()
    for path in (dist.requirements, dist.wheel):
        shutil.copy2(path, context / path.name)
    env = {**tool_env(), **parsed.stage("build").env()}
    env.pop("PYTHONPATH", None)  # the image has none; nothing of this checkout may leak in
    env["VENV"], env["DIST"] = str(tmp_path / "opt-patwarden"), str(context)
    env["PYTHON"] = _python(env["PYTHON"])
    assert (TOOLS_BIN / "uv").exists(), "the pinned uv is missing: run `make install`"
    for step in steps:
        output = run(["/bin/sh", "-c", step.arguments], env=env)

    venv = Path(env["VENV"])
    assert f"patwarden, version {patwarden.__version__}" in output.splitlines()
    # The entry point is started by the kernel through its shebang: the venv's Python, no shell.
    shebang = (venv / "bin" / "patwarden").read_text().splitlines()[0]
    assert shebang == f"#!{venv}/bin/python"
    # …which points at the interpreter by the path the runtime image has it under.
    assert os.readlink(venv / "bin" / "python") == env["PYTHON"]
    # The state backends are in the image; bytecode is compiled (read-only root filesystem).
    run(
        [str(venv / "bin" / "python"), "-c", "import psycopg, psycopg_pool, azure.storage.blob"],
        env=env,
    )
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert list((site / "patwarden" / "cli").glob("__pycache__/main.*.pyc"))
    # The installed patwarden is the wheel, not this checkout.
    where = run(
        [str(venv / "bin" / "python"), "-c", "import patwarden; print(patwarden.__file__)"], env=env
    )
    assert where.strip() == str(site / "patwarden" / "__init__.py")
    assert os.access(venv / "bin" / "patwarden", os.X_OK)
