"""The secrets lifecycle holds for as long as the service runs: soaks with lifetimes compressed to seconds.

A real embedded OpenBao, a real ``bao agent`` and the real server, under load from callers that follow
Vault (``monitoring.KeyCaller``), for ``GLASSBOX_SOAK_SECONDS`` (180 by default) while:

- the service's tokens live 2 s and at most 6 s, so the agent renews them and logs in again every few seconds,
  each time with a new wrapped secret ID that the orchestrator delivered (secret IDs are single-use);
- the orchestrator's own token is periodic with a period of 10 s: its Delivery renews it every 5 s or so, and
  must still deliver at the end;
- the API key is rotated in Vault every 6 s; the agent renders it within 1 s, the server re-reads every 1 s;
- the server speaks HTTPS with a certificate from Vault's PKI engine valid 20 s: the agent issues the next one
  before it expires and the server reloads it, while a prober opens a new verified connection every 0.1 s.

It must end with 0 failed requests and 0 failed handshakes, every rotated key taken up by the server within
the render interval plus the refresh period (plus 3 s for a busy machine), the agent seen renewing and logging
in again, the orchestrator's token renewed, and the certificate renewed. The figures are printed (``pytest -s``)
for the closing note.

The same soak runs on the compose stack on the real engine (CI starts one): there the agent sidecar holds a
periodic token of 3 s, which it must renew every two seconds or so, for the whole run, over the stack's HTTPS.
"""

import json
import os
import threading
import time

import hvac
import numpy as np

from glassbox import deploy, monitoring, vault
from glassbox.vault import bootstrap, orchestrator

from helpers import eventually, require_engine, served_by_agent

SOAK_SECONDS = float(os.environ.get("GLASSBOX_SOAK_SECONDS", "180"))
ROTATE_EVERY = 6.0
RENDER, REFRESH, SLACK = 1.0, 1.0, 3.0
ORCHESTRATOR_PERIOD = "10s"
COMPRESSED = bootstrap.Setup(token_period=None, token_ttl="2s", token_max_ttl="6s", secret_id_ttl="1m",
                             cert_ttl="20s")
BODY = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 9], "datatype": "FP64",
                               "data": [1.0] * 9}]}).encode()


def test_the_lifecycle_holds_under_load_past_many_token_lifetimes(own_vault_home, tmp_path):
    server_record = vault.up()
    admin = hvac.Client(url=server_record.addr, token=server_record.token)
    agent_dir = tmp_path / "agent"
    bootstrap.ensure(admin, COMPRESSED)
    # The orchestrator runs throughout, from before the agent starts: a slow start of the server (on a busy
    # machine) outlasts the agent's first token, and then its next login needs the next wrapped secret ID.
    deliveries = orchestrator.Delivery(
        hvac.Client(url=admin.url, token=bootstrap.orchestrator_token(admin, period=ORCHESTRATOR_PERIOD)),
        agent_dir, wrap_ttl="30s")
    with deliveries:
        assert eventually(lambda: deliveries.delivered >= 1), deliveries.errors
        with served_by_agent(admin, agent_dir, setup=COMPRESSED, render_interval=f"{RENDER:g}s", tls=True,
                             GLASSBOX_KEY_REFRESH_SECONDS=REFRESH) as (server, agent):
            soak = _soak(server.url, admin, server.ca_file)
            renewals, logins = agent.count("renewed auth token"), agent.count("authentication successful")
            certificates = server.log().count("TLS certificate reloaded")
    print(f"{soak} | agent: {renewals} renewals, {logins} logins | orchestrator: {deliveries.delivered} wrapped "
          f"secret IDs delivered, {deliveries.renewed} token renewals, {len(deliveries.errors)} errors | TLS: "
          f"{certificates} certificates reloaded")

    soak.assert_held()
    assert certificates >= SOAK_SECONDS / 20 - 2  # renewed before each expiry, taken up without a restart
    assert logins >= SOAK_SECONDS / 6 / 2  # past many max TTLs: it logged in again, with new secret IDs...
    assert renewals >= logins              # ...and renewed in between
    assert deliveries.delivered >= logins - 1 and deliveries.errors == []
    assert deliveries.renewed >= SOAK_SECONDS / 5 - 2  # its token outlived many periods: renewed at about half


def test_the_compose_stack_holds_under_load_past_many_token_periods(tmp_path):
    """The same soak on docker-compose.yml on the real engine, over its HTTPS: its agent sidecar renews a
    periodic token of 3 s, renders the key every second, and the server re-reads it every second."""
    client = require_engine()
    deploy.build(client, progress=False, echo=lambda line: None)   # the image compose runs (cached when built)
    stack = deploy.Stack(project=f"glassbox-soak-{deploy.free_port()}", vault_image=deploy.LOCAL_OPENBAO_IMAGE,
                         key_refresh_seconds=REFRESH, client=client,
                         settings={"GLASSBOX_TOKEN_PERIOD": "3s", "GLASSBOX_RENDER_INTERVAL": f"{RENDER:g}s"})
    try:
        stack.up()
        ca_file = tmp_path / "ca.pem"
        ca_file.write_text(stack.ca_certificate())
        soak = _soak(stack.url, stack.admin_client(), ca_file)
        agent_log = stack.logs(100_000, "agent")
        renewals, logins = agent_log.count("renewed auth token"), agent_log.count("authentication successful")
        services = stack.services()
    finally:
        stack.down()
    print(f"compose {soak} | agent: {renewals} renewals, {logins} logins")

    soak.assert_held()
    assert renewals >= SOAK_SECONDS / 3  # a 3-s period, renewed at about two thirds: ~1.5 a period
    assert logins == 1                   # one login for the whole soak: the periodic token lived on
    assert services["agent"]["state"] == services["model-server"]["state"] == "running"


class _Soak:
    """What one soak measured; ``assert_held()`` says whether the lifecycle held."""

    def __init__(self, results, rotations, taken_up, probes, final):
        self.results, self.rotations, self.probes, self.final = results, rotations, probes, final
        self.delays = [up - rotated for rotated, up in zip(rotations, taken_up)]  # i-th rotation, i-th change
        self.requests = sum(result.requests for result in results)
        self.failed = sum(result.failed for result in results)
        self.statuses = {}
        for result in results:
            for status, count in result.statuses.items():
                self.statuses[status] = self.statuses.get(status, 0) + count

    def __str__(self) -> str:
        retried = sum(result.retried for result in self.results)
        return (f"soak {SOAK_SECONDS:.0f} s: {self.requests} requests, {self.failed} failed, {retried} retried "
                f"after a 401 | {len(self.rotations)} key rotations, taken up after p50 "
                f"{np.median(self.delays):.2f} s, max {max(self.delays):.2f} s | {self.probes['ok']} new "
                f"connections, {len(self.probes['failed'])} failed")

    def assert_held(self) -> None:
        assert self.failed == 0, self.statuses
        assert self.probes["failed"] == [] and self.probes["ok"] > SOAK_SECONDS
        assert self.requests > 20 * SOAK_SECONDS  # the server was busy throughout, not idle
        assert len(self.rotations) >= SOAK_SECONDS / ROTATE_EVERY - 2
        assert self.final == 1 + len(self.rotations)  # every rotated key reached the server, none skipped
        assert len(self.delays) == len(self.rotations), self.delays
        assert max(self.delays) <= RENDER + REFRESH + SLACK, self.delays


def _soak(url, admin, ca_file) -> _Soak:
    """Load on ``url`` for SOAK_SECONDS from callers following ``admin``'s Vault, while the key rotates."""
    caller = monitoring.KeyCaller(lambda: bootstrap.read_api_key(admin), min_interval=0.2)
    rotations, taken_up, probes, stop = [], [], {"ok": 0, "failed": []}, threading.Event()
    watcher = threading.Thread(target=_watch_key_version, args=(url, ca_file, taken_up, probes, stop), daemon=True)
    rotator = threading.Thread(target=_rotate, args=(admin, rotations, stop), daemon=True)
    watcher.start()
    rotator.start()
    results = _load(url + "/v2/models/credit/infer", caller, SOAK_SECONDS, ca_file)
    stop.set()
    rotator.join()
    watcher.join()
    final = monitoring.scrape(url + "/metrics", ca_file=ca_file).value("glassbox_api_key_version")
    return _Soak(results, rotations, taken_up, probes, final)


def _load(url, caller, seconds, ca_file):
    """The load in runs of at most a minute, back to back (a run is bounded by monitoring.MAX_DURATION)."""
    results, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0.5:
        results.append(monitoring.run_load(url, BODY, concurrency=4, duration=min(60.0, left), api_key=caller,
                                           ca_file=ca_file))
    return results


def _rotate(admin, rotations, stop):
    while not stop.wait(ROTATE_EVERY):
        bootstrap.rotate_api_key(admin)
        rotations.append(time.monotonic())


def _watch_key_version(url, ca_file, taken_up, probes, stop):
    """Note when the server's key changes (its metric counts the distinct keys it has read), until ``stop``
    and then long enough for the last rotation to be taken up. Each scrape is a new verified HTTPS connection."""
    seen, until = None, None
    while until is None or time.monotonic() < until:
        if until is None and stop.is_set():
            until = time.monotonic() + RENDER + REFRESH + SLACK
        try:
            version = monitoring.scrape(url + "/metrics", ca_file=ca_file).value("glassbox_api_key_version")
            probes["ok"] += 1
        except OSError as error:  # a refused handshake or an expired certificate
            probes["failed"].append(f"{type(error).__name__}: {error}")
            time.sleep(0.1)
            continue
        if seen is not None and version > seen:
            taken_up.extend([time.monotonic()] * int(version - seen))
        seen = version
        time.sleep(0.1)
