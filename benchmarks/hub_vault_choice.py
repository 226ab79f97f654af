"""A workshop's Vault: one embedded OpenBao per learner, or one OpenBao with a namespace per learner?

    .venv/bin/python benchmarks/hub_vault_choice.py [--learners 8]

Both layouts get the same per-learner workload, the Vault part of labs 04-06 in small: a KV v2 mount with 20
secrets, a policy, AppRole with a role and 5 secret IDs, transit with a key and 50 encryptions, and 5 child
tokens. The script prints, for each layout, the start-up time and the memory per learner (the servers' RSS
and USS after the workload, from psutil), then what each layout can and cannot give a learner: an audit
device of their own (lab 05 reads its audit log) and a root token for their Vault (every lab's setup).
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import hvac
import psutil
from glassbox.ports import free_port
from glassbox.vault.server import bao_binary

AUDIT = 'audit "file" "course" {{\n  options {{\n    file_path = "{path}"\n  }}\n}}\n'


def port_pair() -> int:
    """A free port whose next port is free too: a dev server also listens on the port above its own."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


def start_server(directory: Path, port: int) -> tuple[subprocess.Popen, hvac.Client]:
    """A dev-mode OpenBao on ``port`` with a file audit device (declared in its config, as the course does)."""
    directory.mkdir(parents=True)
    (directory / "extra.hcl").write_text(AUDIT.format(path=directory / "audit.log"))
    token = secrets.token_urlsafe(24)
    process = subprocess.Popen(
        [str(bao_binary()), "server", "-dev", "-dev-no-store-token", f"-dev-listen-address=127.0.0.1:{port}",
         f"-config={directory / 'extra.hcl'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=directory, start_new_session=True,
        env={**os.environ, "BAO_DEV_ROOT_TOKEN_ID": token})
    client = hvac.Client(url=f"http://127.0.0.1:{port}", token=token, timeout=30)
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.sys.is_initialized() and not client.sys.is_sealed():
                return process, client
        except Exception:  # not listening yet
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"OpenBao on port {port} did not start") from None
        time.sleep(0.1)


def workload(client: hvac.Client) -> None:
    """One learner's Vault work, in small."""
    client.sys.enable_secrets_engine("kv", path="course", options={"version": "2"})
    for i in range(20):
        client.secrets.kv.v2.create_or_update_secret(f"app/{i}", {"password": secrets.token_hex(16)},
                                                     mount_point="course")
    client.sys.create_or_update_policy("model-service", 'path "course/data/app/*" { capabilities = ["read"] }')
    client.sys.enable_auth_method("approle")
    client.auth.approle.create_or_update_approle("model-service", token_policies=["model-service"])
    for _ in range(5):
        client.auth.approle.generate_secret_id("model-service")
    client.sys.enable_secrets_engine("transit")
    client.secrets.transit.create_key("pii")
    for i in range(50):
        client.secrets.transit.encrypt_data("pii", base64.b64encode(f"row {i}".encode()).decode())
    for _ in range(5):
        client.auth.token.create(policies=["model-service"], ttl="1h")


def memory(processes) -> tuple[float, float]:
    """RSS and USS in MiB, summed over ``processes``."""
    infos = [psutil.Process(p.pid).memory_full_info() for p in processes]
    return sum(i.rss for i in infos) / 2**20, sum(i.uss for i in infos) / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=8)
    args = parser.parse_args(argv)
    n = args.learners
    processes = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            # Layout 1: a server per learner.
            started = time.perf_counter()
            clients = []
            for i in range(n):
                process, client = start_server(Path(tmp) / f"learner-{i}", port_pair())
                processes.append(process)
                clients.append(client)
            start_each = (time.perf_counter() - started) / n
            idle = memory(processes)
            for client in clients:
                workload(client)
            busy = memory(processes)
            print(f"one OpenBao per learner ({n} learners): start-up {start_each:.2f} s each; per learner "
                  f"RSS {idle[0] / n:.0f} MiB idle, {busy[0] / n:.0f} MiB after the workload "
                  f"(USS {busy[1] / n:.0f} MiB)")
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(30)
            processes.clear()

            # Layout 2: one server, a namespace per learner.
            process, root = start_server(Path(tmp) / "shared", port_pair())
            processes.append(process)
            base = memory(processes)
            started = time.perf_counter()
            for i in range(n):
                root.sys.create_namespace(f"learner-{i}")
                workload(hvac.Client(url=root.url, token=root.token, namespace=f"learner-{i}", timeout=30))
            per_namespace = (time.perf_counter() - started) / n
            busy = memory(processes)
            print(f"one OpenBao, a namespace per learner ({n} learners): the server {base[0]:.0f} MiB RSS "
                  f"alone; per learner {(busy[0] - base[0]) / n:.1f} MiB RSS more (USS "
                  f"{(busy[1] - base[1]) / n:.1f}); namespace and workload {per_namespace:.2f} s each")

            learner = hvac.Client(url=root.url, token=root.token, namespace="learner-0", timeout=30)
            try:
                learner.sys.enable_audit_device("file", path="mine",
                                                options={"file_path": str(Path(tmp) / "mine.log")})
                audit = "allowed"
            except hvac.exceptions.VaultError as error:
                audit = f"refused ({str(error).splitlines()[0][:120]})"
            print(f"  an audit device of a learner's own, in a namespace: {audit}")
            print("  a learner's token in a namespace is that namespace's admin, not the server's root: labs that "
                  "configure the server itself (audit devices in its config file) need the root namespace")
        finally:
            for process in processes:
                process.terminate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
