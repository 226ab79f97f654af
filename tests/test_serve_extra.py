"""The server's image carries only what the server (and compose's bootstrap, which runs in it) imports: the
package's ``serve`` extra, which the Dockerfile reads; and every expected failure shares one base class.
"""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from glassbox.errors import GlassboxError

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "support" / "glassbox"
# What runs in the image: `glassbox serve` (HTTP, gRPC, the repository extension) and the compose bootstrap.
IMAGE_ENTRIES = ["glassbox.cli", "glassbox.serving", "glassbox.serving.app", "glassbox.serving.grpc",
                 "glassbox.serving.repository", "glassbox.serving.health", "glassbox.deploy",
                 "glassbox.vault.agent", "glassbox.vault.bootstrap", "glassbox.vault.orchestrator"]
NOT_IN_IMAGE = ("docker", "psutil")


def _serve_extra() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["optional-dependencies"]["serve"]]


def test_the_server_and_the_bootstrap_import_neither_docker_nor_psutil():
    """With both made unimportable, every module the image runs imports, and the bootstrap's entry point runs
    as far as its usage message; the server's modules pull in neither of them."""
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in NOT_IN_IMAGE)
    probe = (f"import importlib, sys; {blocked}\n"
             f"for name in {IMAGE_ENTRIES!r}: importlib.import_module(name)\n"
             "from glassbox import deploy\n"
             "print(deploy._main([]))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "2" and "usage: python -m glassbox.deploy bootstrap" in result.stderr


def test_the_dev_vault_manager_still_imports_them_on_first_use():
    """The lazy package still gives notebooks ``vault.up`` and friends: the manager, and then docker, load."""
    probe = ("import sys; from glassbox import vault; before = 'docker' in sys.modules; vault.up; "
             "print(before, 'docker' in sys.modules, 'psutil' in sys.modules, vault.VaultError.__mro__[1].__name__)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.stdout.split() == ["False", "True", "True", "GlassboxError"], result.stderr[-2000:]


def test_the_serve_extra_is_what_the_dockerfile_installs_and_leaves_docker_and_psutil_out():
    names = {requirement.name for requirement in _serve_extra()}
    assert {"starlette", "uvicorn", "grpcio", "tritonclient", "scikit-learn", "shap", "skops", "hvac"} <= names
    assert not names & set(NOT_IN_IMAGE)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert '["optional-dependencies"]["serve"]' in dockerfile
    assert "--require-hashes --only-binary=:all: -c /tmp/requirements.lock -r /tmp/serve.txt" in dockerfile
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "glassbox-labs[serve]" in project["dependencies"]  # the course installs everything the server does


def test_the_lock_pins_every_package_of_the_serve_extra():
    pinned = {line.split("==")[0].lower() for line in (REPO / "requirements.lock").read_text().splitlines()
              if "==" in line and not line.startswith((" ", "#"))}
    missing = [requirement.name for requirement in _serve_extra() if requirement.name.lower() not in pinned]
    assert not missing, missing


def test_every_exception_class_of_the_package_is_a_glassbox_error():
    """Each class deriving from an exception in support/glassbox derives from GlassboxError (the CLI catches
    the base); private control-flow exceptions (a leading underscore) aside."""
    import importlib

    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and any(
                    getattr(base, "id", getattr(base, "attr", "")).endswith(("Error", "Exception", "Unavailable"))
                    for base in node.bases):
                module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
                found.append(getattr(importlib.import_module(module), node.name))
    assert len(found) >= 11, found
    assert [cls.__name__ for cls in found if not issubclass(cls, GlassboxError)] == []
    statuses = {cls.__name__: cls.status for cls in found}
    assert statuses["ArtifactError"] == statuses["LoadError"] == 400 and statuses["VaultError"] == 500
