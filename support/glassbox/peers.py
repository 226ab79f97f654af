"""The industry's model servers beside the course's: MLServer (the server Seldon Core and KServe run for
scikit-learn models) and KServe's Python model server, each installed in a virtual environment of its own,
since they pin older libraries than the course uses.

Such environments live in a cache for the whole machine (``$XDG_CACHE_HOME/glassbox``, by default
``~/.cache/glassbox``), so the lab, the tests and the benchmark install each one once. Where one cannot be
installed (no package index, or on Binder, whose session the install would eat), or where ``GLASSBOX_PEERS=off``
says not to (a workshop room without a network), :func:`mlserver_venv` and :func:`kserve_venv` raise
:class:`Unavailable`, with one line that says why.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from collections import deque
from importlib.metadata import version
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from glassbox.errors import GlassboxError
from glassbox.ports import free_ports

MLSERVER_VERSION = "1.7.1"
KSERVE_VERSION = "0.21.0"
INSTALL_TIMEOUT_S = 900


class Unavailable(GlassboxError, RuntimeError):
    """A peer that cannot be installed or started here; the message says why and what to do."""


def cache() -> Path:
    """The machine's cache of peer environments (created on first use)."""
    path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glassbox"
    path.mkdir(parents=True, exist_ok=True)
    return path


def venv(name: str, requirements: list[str], timeout: float = INSTALL_TIMEOUT_S) -> Path:
    """The python of ``cache()/name``, a virtual environment with ``requirements`` installed.

    Installed once, again when ``requirements`` change; one process at a time installs (a file lock), the
    others wait and reuse it. A progress bar counts the packages pip collects.
    """
    folder = cache() / name
    python, stamp = folder / "bin" / "python", folder / "glassbox-requirements.json"
    with open(cache() / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == requirements:
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
        _pip_install(python, requirements, timeout)
        stamp.write_text(json.dumps(requirements))
        return python


def _pip_install(python: Path, requirements: list[str], timeout: float) -> None:
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
               *requirements]
    tail: deque[str] = deque(maxlen=30)
    deadline = time.monotonic() + timeout
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as pip, \
            tqdm(desc=f"pip install {requirements[0]}", unit=" packages") as bar:
        for line in pip.stdout:
            tail.append(line.rstrip())
            if line.startswith("Collecting "):
                bar.update()
            if time.monotonic() > deadline:
                pip.kill()
                raise Unavailable(f"installing {requirements[0]} took over {timeout:.0f} s: is the package "
                                  "index slow or out of reach?")
    if pip.returncode:
        reason = next((line for line in reversed(tail) if line.startswith("ERROR")), tail[-1] if tail else "")
        raise Unavailable(f"cannot install {requirements[0]} (pip: {reason.removeprefix('ERROR: ')[:200]}); "
                          "it needs a reachable package index")


def mlserver_requirements() -> list[str]:
    """MLServer and its scikit-learn runtime, at the course's scikit-learn and skops versions (a joblib file
    must be read by the scikit-learn version that wrote it)."""
    return [f"mlserver=={MLSERVER_VERSION}", f"mlserver-sklearn=={MLSERVER_VERSION}",
            f"scikit-learn=={version('scikit-learn')}", f"skops=={version('skops')}",
            # uvloop 0.22 no longer creates a loop in get_event_loop(): MLServer 1.7.1's inference workers die
            # at start-up with it ("There is no current event loop")
            "uvloop<0.22"]


def _allowed(peer: str) -> None:
    """Raise :class:`Unavailable` where no peer is to be installed (``GLASSBOX_PEERS=off``, Binder)."""
    if os.environ.get("GLASSBOX_PEERS") == "off":
        raise Unavailable("GLASSBOX_PEERS=off says not to install the industry's servers here; unset it to run "
                          "this section")
    if os.environ.get("BINDER_LAUNCH_HOST"):
        raise Unavailable(f"this is Binder: installing {peer} would take minutes of a session that ends when "
                          "idle; run this section on your own machine")


def mlserver_venv() -> Path:
    """The python of MLServer's own environment (installed once: about two minutes and 300 MB)."""
    _allowed("MLServer")
    return venv(f"mlserver-{MLSERVER_VERSION}", mlserver_requirements())


def kserve_requirements() -> list[str]:
    """KServe's Python model server and SDK, with the course's scikit-learn and skops (as for MLServer: the
    joblib file is written and read by the course's scikit-learn version)."""
    return [f"kserve=={KSERVE_VERSION}", f"scikit-learn=={version('scikit-learn')}", f"skops=={version('skops')}"]


def kserve_venv() -> Path:
    """The python of KServe's own environment (the tests' SDK client and the benchmark's peer share it)."""
    _allowed("KServe")
    return venv("kserve-venv", kserve_requirements())


def size_mb(python: Path) -> float:
    """The size on disk of the virtual environment that ``python`` belongs to, in MB."""
    root = python.parent.parent
    return sum(path.lstat().st_size for path in root.rglob("*") if path.is_file()) / 1e6


# Run by the peer environment's python: load the verified skops file, write it as joblib, read the joblib file
# back and print its probabilities for the probe rows.
_CONVERT = textwrap.dedent("""
    import json, sys
    import joblib, numpy as np, skops.io as sio
    source, target, trusted, probe = sys.argv[1:5]
    model = sio.load(source, trusted=json.loads(trusted))
    joblib.dump(model, target)
    print(json.dumps(joblib.load(target).predict_proba(np.load(probe)).tolist()))
""")


def to_mlserver(python: Path, artifact_dir: Path, target: Path, rows, name: str = "credit") -> Path:
    """``target`` as MLServer's scikit-learn runtime loads a model: ``model.joblib`` and ``model-settings.json``.

    The course artifact is verified first (manifest hashes, reviewed types); the peer environment's own python
    converts it, and the joblib file's probabilities for ``rows`` (an array or a data frame, in the model's
    feature order) must be the artifact's.
    """
    from glassbox import artifacts

    ours = artifacts.load(artifact_dir).model.predict_proba(rows)   # verifies before it loads
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    np.save(target / "probe.npy", np.asarray(rows, dtype=np.float64))
    converted = subprocess.run(
        [str(python), "-c", _CONVERT, str(Path(artifact_dir) / artifacts.MODEL_FILE), str(target / "model.joblib"),
         json.dumps(list(artifacts.TRUSTED_TYPES)), str(target / "probe.npy")],
        capture_output=True, text=True)
    (target / "probe.npy").unlink()
    if converted.returncode:
        raise Unavailable(f"the conversion failed in MLServer's environment: {converted.stderr.strip()[-300:]}")
    np.testing.assert_allclose(np.array(json.loads(converted.stdout.splitlines()[-1])), ours, rtol=1e-12)
    (target / "model-settings.json").write_text(json.dumps({
        "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "1"},
    }, indent=2) + "\n")
    return target


class _Peer:
    """A peer server as a local process on free loopback ports, ready when its V2 ready endpoint answers.

    ``with Peer(python, model_dir) as peer:`` or ``peer = Peer(...).start()`` then ``peer.stop()``;
    ``peer.url`` is its HTTP address, ``peer.grpc_target`` its gRPC one, ``peer.started_s`` the seconds from
    start to ready, ``peer.log`` its output.
    """

    name = "peer"

    def __init__(self, python: Path, model_dir: Path, log: Path | None = None):
        self.python, self.model_dir = Path(python), Path(model_dir)
        self.port, self.grpc_port, self.metrics_port = free_ports(3)
        self.url, self.grpc_target = f"http://127.0.0.1:{self.port}", f"127.0.0.1:{self.grpc_port}"
        self.log = Path(log) if log else self.model_dir / f"{self.name.lower()}.log"
        self.process, self.started_s = None, None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 180) -> "_Peer":
        from glassbox.serving.local import is_ready

        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "GLASSBOX_"))}
        began = time.monotonic()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env)
        while time.monotonic() < began + timeout:
            if self.process.poll() is not None:
                raise Unavailable(f"{self.name} exited with {self.process.returncode}; its output is in {self.log}")
            if is_ready(self.url):
                self.started_s = time.monotonic() - began
                return self
            time.sleep(0.25)
        self.stop()
        raise Unavailable(f"{self.name} was not ready within {timeout:.0f} s; its output is in {self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class MLServer(_Peer):
    """``mlserver start`` on free loopback ports (HTTP, gRPC, metrics), MLServer's other settings as shipped."""

    name = "MLServer"

    def _command(self) -> list[str]:
        (self.model_dir / "settings.json").write_text(json.dumps(
            {"host": "127.0.0.1", "http_port": self.port, "grpc_port": self.grpc_port,
             "metrics_port": self.metrics_port}, indent=2) + "\n")
        return [str(self.python.parent / "mlserver"), "start", str(self.model_dir)]


class KServe(_Peer):
    """KServe's ``ModelServer`` running ``script`` (a ``kserve.Model`` written as sklearnserver's, such as
    ``benchmarks/kserve_model.py``) on ``model_dir/model.joblib`` as ``model_name``, its settings as shipped
    (one worker), only the ports set."""

    name = "KServe"

    def __init__(self, python: Path, script: Path, model_dir: Path, log: Path | None = None,
                 model_name: str = "credit"):
        super().__init__(python, model_dir, log)
        self.script, self.model_name = Path(script), model_name

    def _command(self) -> list[str]:
        return [str(self.python), str(self.script), "--model_dir", str(self.model_dir), "--model_name",
                self.model_name, "--http_port", str(self.port), "--grpc_port", str(self.grpc_port)]
