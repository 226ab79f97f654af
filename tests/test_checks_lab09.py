"""Lab 09's self-checks pass on the solution's values and fail, with a hint, on the stub and on the mistakes
the lab warns about: seconds for milliseconds, quantiles since start-up, a PSI without shares or without a floor
for empty bins, a swap that lost requests, a key the agent never rendered or the server never took, a secret ID
in the clear or out of the agent's reach, a token renewed at every read, rounding pods down; a canary promoted
on its point estimate or rolled back on harm that was only not ruled out."""

import math
import secrets
from pathlib import Path

import httpx
import hvac
import hvac.exceptions
import numpy as np
import pandas as pd
import pytest
import yaml

from glassbox import artifacts, monitoring
from glassbox.checks import lab09
from glassbox.checks.lab09 import (
    LATENCY, check_canary_decision, check_contract_or_retrain, check_drift_prediction, check_latency_quantiles, check_psi, check_replicas,
    check_rollout, check_rotation, check_serving_layers, check_token_lifecycle,
)
from glassbox.paths import write_private
from glassbox.serving import LocalServer
from glassbox.vault import agent, bootstrap
from glassbox.vault.orchestrator import deliver
from helpers import assert_not_yet
from helpers import printed as printed_text

REPO = Path(__file__).resolve().parents[1]


def _passes(feedback):
    assert feedback, feedback


# -- 1. latency quantiles ----------------------------------------------------------------------------------------

BOUNDS = (0.0005, 0.001, 0.002, 0.005, 0.01, float("inf"))


def _scrape(cumulative_counts, endpoint="infer", at=0.0):
    samples = {}
    for bound, count in zip(BOUNDS, cumulative_counts):
        samples[(LATENCY + "_bucket", frozenset({("endpoint", endpoint), ("le", str(bound))}))] = float(count)
    samples[(LATENCY + "_count", frozenset({("endpoint", endpoint)}))] = float(cumulative_counts[-1])
    return monitoring.Metrics(at, samples)


# the server had answered 100 slow requests before the load; the load added 1000 fast ones in 5 s
BEFORE = _scrape([0, 0, 10, 60, 100, 100])
AFTER = _scrape([300, 900, 990, 1060, 1100, 1100], at=5.0)


def _solution(before, after):
    span = after.time - before.time
    earlier = dict(before.buckets(LATENCY, endpoint="infer"))
    rates = [(le, (count - earlier.get(le, 0.0)) / span) for le, count in after.buckets(LATENCY, endpoint="infer")]
    return rates, {q: monitoring.histogram_quantile(q / 100, rates) * 1000 for q in (50, 95, 99)}


def test_quantiles_pass_on_the_solution():
    rates, quantiles = _solution(BEFORE, AFTER)
    assert rates[-1] == (float("inf"), 200.0)                       # 1000 requests in 5 s
    assert quantiles[50] < quantiles[95] <= quantiles[99] < 5.0     # the load's requests were fast...
    since_start = monitoring.histogram_quantile(0.99, AFTER.buckets(LATENCY)) * 1000
    assert since_start > quantiles[99]                              # ...the earlier ones were slow
    _passes(check_latency_quantiles(rates, quantiles, BEFORE, AFTER))


def test_quantiles_catch_the_mistakes():
    rates, right = _solution(BEFORE, AFTER)
    increases = [(le, r * 5.0) for le, r in rates]
    assert_not_yet(check_latency_quantiles(..., ..., BEFORE, AFTER), "stub")
    assert_not_yet(check_latency_quantiles(rates, ..., BEFORE, AFTER), "`quantiles` is still the stub")
    assert_not_yet(check_latency_quantiles(increases, right, BEFORE, AFTER), "increases", "per second")
    assert_not_yet(check_latency_quantiles(AFTER.buckets(LATENCY, endpoint="infer"), right, BEFORE, AFTER),
                   "since the server started")
    assert_not_yet(check_latency_quantiles(rates[:-1], right, BEFORE, AFTER), "bounds")
    assert_not_yet(check_latency_quantiles({50: 1}, right, BEFORE, AFTER), "pairs")
    assert_not_yet(check_latency_quantiles(rates, {q: v / 1000 for q, v in right.items()}, BEFORE, AFTER),
                   "milliseconds")
    with pytest.raises(ValueError, match="0.99 for p99"):    # percent for a fraction: refused at the source
        monitoring.histogram_quantile(99, rates)
    swapped = {50: right[95], 95: right[50], 99: right[99]}
    assert_not_yet(check_latency_quantiles(rates, swapped, BEFORE, AFTER), "not decrease")
    caller_view = {q: v * 1.5 for q, v in right.items()}     # e.g. load.percentile(q): the caller's latency
    assert_not_yet(check_latency_quantiles(rates, caller_view, BEFORE, AFTER), "differ", "histogram")
    assert_not_yet(check_latency_quantiles(rates, {"p50": 1, "p95": 2, "p99": 3}, BEFORE, AFTER), "50, 95 and 99")
    assert_not_yet(check_latency_quantiles(rates, [1, 2, 3], BEFORE, AFTER), "dict")
    assert_not_yet(check_latency_quantiles(rates, right, AFTER, AFTER.__class__(6.0, AFTER.samples)),
                   "no `infer` requests")


def test_quantiles_from_rates_match_a_hand_computed_example():
    """Two pods scraped a minute apart; sum by (le) of the rates, then histogram_quantile, worked by hand."""
    def scrape(at, counts):
        samples = {}
        for pod, share in (("a", 0.25), ("b", 0.75)):
            for bound, count in zip((0.01, 0.025, 0.05, 0.1, float("inf")), counts):
                labels = frozenset({("endpoint", "infer"), ("pod", pod), ("le", str(bound))})
                samples[(LATENCY + "_bucket", labels)] = count * share
        return monitoring.Metrics(at, samples)

    before = scrape(100.0, [100, 150, 190, 200, 200])
    after = scrape(160.0, [700, 1350, 1750, 1790, 1800])
    rates, quantiles = _solution(before, after)
    # increases 600, 1200, 1560, 1590, 1600 over 60 s: rates 10, 20, 26, 26.5, 26.67 per second
    assert [r for _, r in rates] == pytest.approx([10, 20, 26, 26.5, 80 / 3])
    assert rates == monitoring.bucket_rates(before, after, LATENCY, endpoint="infer")
    # p50: rank 13.33 falls in (0.01, 0.025]: 0.01 + 0.015 * 3.33 / 10 = 15 ms
    # p95: rank 25.33 in (0.025, 0.05]: 0.025 + 0.025 * 5.33 / 6 = 47.22 ms
    # p99: rank 26.4 in (0.05, 0.1]: 0.05 + 0.05 * 0.4 / 0.5 = 90 ms
    assert quantiles == pytest.approx({50: 15.0, 95: 25 + 25 * (16 / 3) / 6, 99: 90.0})
    _passes(check_latency_quantiles(rates, quantiles, before, after))


# -- 2. PSI ----------------------------------------------------------------------------------------------------

def psi_solution(reference, live, bins=10):
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))   # the deciles
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(live, edges)[0] / len(live)
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_stub(reference, live):
    return 0.0


def psi_no_floor(reference, live):
    edges = np.quantile(reference, np.linspace(0, 1, 11))
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(live, edges)[0] / len(live)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_counts(reference, live):
    edges = np.quantile(reference, np.linspace(0, 1, 11))
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.clip(np.histogram(reference, edges)[0], 1, None).astype(float)
    actual = np.clip(np.histogram(live, edges)[0], 1, None).astype(float)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_reversed(reference, live):
    return -psi_solution(reference, live)


def psi_no_return(reference, live):
    psi_solution(reference, live)


def test_psi_passes_on_the_solution_and_agrees_with_the_package():
    _passes(check_psi(psi_solution))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=5000), rng.normal(0.5, 1, 2000)
    assert psi_solution(a, b) == pytest.approx(monitoring.psi(a, b), rel=1e-9)


@pytest.mark.parametrize("psi, says", [
    (..., "stub"),
    (0.25, "function"),
    (psi_stub, "zero"),
    (psi_no_floor, "empty"),
    (psi_counts, "shares"),
    (psi_reversed, "never negative"),
    (psi_no_return, "return"),
])
def test_psi_catches_the_mistakes(psi, says):
    assert_not_yet(check_psi(psi), says)


def psi_closed_bins(reference, live):
    edges = np.quantile(reference, np.linspace(0, 1, 11))       # min and max as the outer edges
    expected = np.clip(np.histogram(reference, edges)[0] / len(reference), 1e-4, None)
    actual = np.clip(np.histogram(live, edges)[0] / len(live), 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def test_psi_refuses_closed_outer_bins_that_drop_values_beyond_the_training_range():
    """The lab's warning as a case: 900 of 3000 live values above the reference's maximum."""
    rng = np.random.default_rng(1)
    reference = rng.normal(50, 10, 20_000)
    live = np.concatenate([rng.normal(50, 10, 2_100), reference.max() + rng.uniform(1, 30, 900)])
    assert monitoring.psi(reference, live) > 0.25 > psi_closed_bins(reference, live)   # an alert missed
    assert_not_yet(check_psi(psi_closed_bins), "beyond the reference's range", "-inf and +inf")


def test_psi_without_unique_edges_still_works_on_a_binary_feature():
    """Duplicate decile edges are allowed by numpy: the learner need not know about np.unique to pass."""
    def psi_plain(reference, live):
        edges = np.quantile(reference, np.linspace(0, 1, 11))
        edges[0], edges[-1] = -np.inf, np.inf
        expected = np.clip(np.histogram(reference, edges)[0] / len(reference), 1e-4, None)
        actual = np.clip(np.histogram(live, edges)[0] / len(live), 1e-4, None)
        return float(np.sum((actual - expected) * np.log(actual / expected)))
    _passes(check_psi(psi_plain))


# -- thinking exercises: predict the drift, fix the contract or retrain ---------------------------------------

@pytest.mark.parametrize("letter, says", [("a", "nine features"), ("c", "recording"), ("d", "deciles")])
def test_drift_prediction_explains_each_wrong_option(letter, says):
    assert_not_yet(check_drift_prediction(letter), "not quite", says)


def test_drift_prediction_passes_on_b_and_refuses_stubs_and_strangers():
    feedback = check_drift_prediction("b")
    assert feedback and "re-recorded" in feedback.message
    assert_not_yet(check_drift_prediction(...), "still the stub")
    assert_not_yet(check_drift_prediction("e"), "not one of the options")


@pytest.mark.parametrize("letter, says", [("a", "old partners"), ("c", "Silencing"), ("d", "threshold")])
def test_contract_or_retrain_explains_each_wrong_option(letter, says):
    assert_not_yet(check_contract_or_retrain(letter), "not quite", says)


def test_contract_or_retrain_passes_on_the_contract_fix():
    feedback = check_contract_or_retrain("B")
    assert feedback and "population itself changes" in feedback.message
    assert_not_yet(check_contract_or_retrain(...), "still the stub")


# -- 3. roll-out ---------------------------------------------------------------------------------------------

def _verdict(intervals, rows=180, reasons=()):
    """A canary verdict whose canary has these ``(paired diff, 95% low, 95% high)`` per segment."""
    nan = float("nan")
    table = pd.DataFrame([{"segment": segment, "arm": arm, "rows": rows if arm == "canary" else 2 * rows,
                           **dict(zip(("paired diff", "95% low", "95% high"),
                                      figures if arm == "canary" else (nan, nan, nan)))}
                          for segment, figures in intervals.items() for arm in ("canary", "stable")])
    return monitoring.CanaryVerdict("extend", list(reasons), table.set_index(["segment", "arm"]).sort_index())


LAB_CANARY = {"new": (-0.039, -0.061, -0.021), "old": (0.018, -0.015, 0.047)}   # version 3's first table


def test_canary_decision_on_the_labs_intervals_is_extend_and_every_other_reading_is_named():
    verdict = _verdict(LAB_CANARY)
    feedback = check_canary_decision("c", verdict)
    assert feedback and "on old the interval (-0.015 to +0.047) straddles the 0.02 margin" in feedback.message
    assert_not_yet(check_canary_decision("a", verdict), "reaches +0.047", "does not show the canary within it")
    assert_not_yet(check_canary_decision("b", verdict), "No interval lies wholly above", "starts at -0.015")
    assert_not_yet(check_canary_decision("d", verdict), "one draw of the traffic's luck", "+0.018", "+0.047")
    assert_not_yet(check_canary_decision("e", verdict), "needs evidence of harm", "-0.015")


@pytest.mark.parametrize("intervals, reasons, right", [
    ({"new": (-0.04, -0.06, -0.02), "old": (0.0, -0.01, 0.015)}, (), "a"),           # all below the margin
    ({"new": (-0.04, -0.06, -0.02), "old": (0.06, 0.03, 0.09)}, (), "b"),            # old wholly above
    ({"new": (0.06, 0.03, 0.09), "old": (0.018, -0.015, 0.047)}, (), "b"),           # harm beats doubt
    ({"new": (-0.04, -0.06, -0.02), "old": (0.0, -0.01, 0.015)},
     ("old: too few rows to judge (20 on the canary, 50 needed)",), "c"),             # no judgement on 20 rows
])
def test_canary_decision_follows_the_intervals_it_is_given(intervals, reasons, right):
    verdict = _verdict(intervals, reasons=reasons)
    _passes(check_canary_decision(right, verdict))
    for letter in set("abcde") - {right}:
        assert_not_yet(check_canary_decision(letter, verdict), "not quite")


def test_canary_decision_agrees_with_canary_verdict_on_real_traffic():
    rng = np.random.default_rng(0)
    for shift, rows, decision, right in ((0.0, 600, "promote", "a"), (0.3, 600, "roll back", "b"),
                                         (0.0, 60, "extend", "c")):
        y = (rng.random(rows) < 0.3).astype(int)
        p = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.1, rows), 0.01, 0.99)
        batch = np.arange(rows) // 10
        arm = np.where(batch % 3 == 0, "canary", "stable")
        live = pd.DataFrame({"arm": arm, "batch": batch, "segment": "old", "ok": True, "latency_ms": 5.0, "y": y,
                             "p": np.where(arm == "canary", np.clip(p + shift, 0.01, 0.99), p), "p_stable": p})
        verdict = monitoring.canary_verdict(live)
        assert verdict.decision == decision
        _passes(check_canary_decision(right, verdict))


def test_canary_decision_refuses_stubs_strangers_and_a_missing_verdict():
    verdict = _verdict(LAB_CANARY)
    assert_not_yet(check_canary_decision(..., verdict), "still the stub")
    assert_not_yet(check_canary_decision("f", verdict), "not one of the options")
    assert_not_yet(check_canary_decision("c", None), "run the canary cells above")
    assert_not_yet(check_canary_decision("c", monitoring.canary_verdict(pd.DataFrame(
        {"arm": ["canary", "stable"], "segment": "old", "ok": True, "latency_ms": 5.0}))), "run the canary cells")


def _load(n=800, failed=0, status=401):
    statuses = np.full(n, 200)
    statuses[:failed] = status
    return monitoring.LoadResult(started=np.linspace(0, 4, n), latency=np.full(n, 0.002), status=statuses,
                                 duration=4.0, concurrency=4)


def _swap(status=200, **body):
    return httpx.Response(status, json=body or {"name": "credit", "version": "2", "previous_version": "1"})


def test_rollout_passes_on_a_clean_swap_under_load():
    _passes(check_rollout(_load(), _swap(), "2"))


@pytest.mark.parametrize("load, swap, says", [
    (_load(), None, "stub"),
    (_load(), "done", "HTTP response"),
    (_load(), _swap(401, error="missing or invalid API key"), "API key"),
    (_load(), _swap(404, error="not found"), "404"),
    (_load(), "http://127.0.0.1:1/v2/repository/models/credit/load", "HTTP response"),
    (_load(), _swap(400, error="the manifest ... not the pinned"), "pinned"),
    (_load(), _swap(version="1", previous_version="1"), "version 1"),
    (None, _swap(), "while load runs"),
    (_load(n=30), _swap(), "too little"),
    (_load(failed=3, status=0), _swap(), "3 of 800"),
])
def test_rollout_catches_the_mistakes(load, swap, says):
    assert_not_yet(check_rollout(load, swap, "2"), says)


# -- 4. rotation: the agent renders the key, the server picks it up; a new wrapped secret ID for the next login --

@pytest.fixture(scope="module")
def agent_served(vault_client, tmp_path_factory):
    """A model server whose key file a real Vault Agent renders; returns (server, agent, orchestrator client)."""
    bootstrap.ensure(vault_client)
    work = tmp_path_factory.mktemp("lab09-rotation")
    orchestrator = hvac.Client(url=vault_client.url, token=bootstrap.orchestrator_token(vault_client))
    deliver(orchestrator, work / "agent", wrap_ttl="300s")
    running = agent.LocalAgent(vault_client.url, work / "agent", render_interval="1s").start()
    server = LocalServer({"GLASSBOX_API_KEY_FILE": str(running.key_file), "GLASSBOX_KEY_REFRESH_SECONDS": "1",
                          "GLASSBOX_MODEL_DIR": str(artifacts.build_course_model())},
                         log_path=work / "server.log").start(timeout=120)
    yield server, running, orchestrator
    server.stop()
    running.stop()
    vault_client.auth.token.revoke(orchestrator.token)


@pytest.fixture
def rotated(vault_client, agent_served):
    """The key rotated and a new wrapped secret ID, from the orchestrator, in the agent's directory (0600):
    returns (version before, wrapping token)."""
    _, running, orchestrator = agent_served
    kv = vault_client.secrets.kv.v2
    before = kv.read_secret_metadata(path=bootstrap.SERVICE_PATH, mount_point=bootstrap.MOUNT)["data"]["current_version"]
    kv.create_or_update_secret(path=bootstrap.SERVICE_PATH, secret={bootstrap.API_KEY_FIELD: secrets.token_urlsafe(32)},
                               cas=before, mount_point=bootstrap.MOUNT)
    token = orchestrator.auth.approle.generate_secret_id(bootstrap.ROLE, wrap_ttl="300s")["wrap_info"]["token"]
    write_private(running.directory / agent.SECRET_ID_FILE, token)
    return before, token


def test_rotation_passes_when_the_agent_rendered_the_key_and_the_server_took_it(vault_client, agent_served, rotated):
    server, running, _ = agent_served
    before, token = rotated
    _passes(check_rotation(_load(), vault_client, before, token, server.url, running.directory))
    assert running.key_file.read_text().strip() == bootstrap.read_api_key(vault_client)   # the latest version
    assert running.count("authentication successful") == 1       # no new login: the secret ID waits, unopened
    assert vault_client.adapter.post("/v1/sys/wrapping/lookup", json={"token": token})["data"]["creation_path"] \
        == bootstrap.Setup().secret_id_creation_path


def test_rotation_catches_the_mistakes(vault_client, agent_served, rotated, tmp_path):
    server, running, _ = agent_served
    before, token = rotated
    here = (server.url, running.directory)
    current = before + 1
    assert_not_yet(check_rotation(_load(), vault_client, current, token, *here), "not rotated")
    assert_not_yet(check_rotation(_load(), vault_client, before, ..., *here), "stub")
    assert_not_yet(check_rotation(_load(), vault_client, before, {"token": token}, *here), "a string")
    assert_not_yet(check_rotation(_load(failed=12), vault_client, before, token, *here), "KeyCaller")
    assert_not_yet(check_rotation(None, vault_client, before, token, *here), "while load runs")
    assert_not_yet(check_rotation(_load(), vault_client, before, token, "http://127.0.0.1:9", running.directory,
                                  wait=0.3), "does not accept")
    # an agent that did not render the new key (its file holds the old one)
    stale = tmp_path / "stale-agent"
    stale.mkdir()
    write_private(stale / agent.SECRET_ID_FILE, token)
    write_private(stale / agent.KEY_FILE, "an-old-key")
    assert_not_yet(check_rotation(_load(), vault_client, before, token, server.url, stale, wait=0.3),
                   "not rendered")
    # the file world-readable: refused, though the agent could read it
    delivered = running.directory / agent.SECRET_ID_FILE
    delivered.chmod(0o644)
    assert_not_yet(check_rotation(_load(), vault_client, before, token, *here), "readable by others", "0600")
    # not in the agent's directory: its next login could not use it
    delivered.unlink()
    assert_not_yet(check_rotation(_load(), vault_client, before, token, *here), "not in the agent's directory")
    write_private(delivered, "something else")
    assert_not_yet(check_rotation(_load(), vault_client, before, token, *here), "something else")
    # a spent wrapping token (someone unwrapped it first): the agent's unwrap would fail
    hvac.Client(url=vault_client.url, token=token).sys.unwrap()
    write_private(delivered, token)
    assert_not_yet(check_rotation(_load(), vault_client, before, token, *here), "no valid wrapping token")


def test_the_orchestrator_cannot_issue_a_secret_id_in_the_clear_and_the_root_token_is_refused_by_the_check(
        vault_client, agent_served, rotated):
    server, running, orchestrator = agent_served
    before, _ = rotated
    with pytest.raises(hvac.exceptions.Forbidden):
        orchestrator.auth.approle.generate_secret_id(bootstrap.ROLE)         # unwrapped: its policy says no
    with pytest.raises(hvac.exceptions.Forbidden):
        bootstrap.read_api_key(orchestrator)                                # nor may it read the key
    # wrapped, but by the root token: refused for its issuer; wrapped for a day: refused for its TTL first
    for wrap_ttl, says in (("300s", "root token, not the orchestrator's"), ("24h", "lives 86400 s")):
        by_root = vault_client.auth.approle.generate_secret_id(bootstrap.ROLE, wrap_ttl=wrap_ttl)["wrap_info"]["token"]
        write_private(running.directory / agent.SECRET_ID_FILE, by_root)
        assert_not_yet(check_rotation(_load(), vault_client, before, by_root, server.url, running.directory), says)
    plain = vault_client.auth.approle.generate_secret_id(bootstrap.ROLE)["data"]["secret_id"]
    write_private(running.directory / agent.SECRET_ID_FILE, plain)
    assert_not_yet(check_rotation(_load(), vault_client, before, plain, server.url, running.directory),
                   "secret ID itself", "root token")


def test_rotation_refuses_a_look_alike_wrapping_token(vault_client, agent_served, rotated):
    server, running, _ = agent_served
    before, _ = rotated
    other = vault_client.sys.wrap({"secret_id": "not-from-the-role"}, ttl="60s")["wrap_info"]["token"]
    write_private(running.directory / agent.SECRET_ID_FILE, other)
    assert_not_yet(check_rotation(_load(), vault_client, before, other, server.url, running.directory),
                   "not a secret ID", "creation path")
    (running.directory / agent.SECRET_ID_FILE).unlink()


# -- the agent's token: one login, then renewals ------------------------------------------------------------------

def test_the_lifecycle_prediction_is_what_a_real_agent_does(agent_served):
    """The answer the check wants is what the module's agent logged: one login, one renewal right after it."""
    _, running, _ = agent_served
    assert running.count("authentication successful") == 1
    assert running.count("renewed auth token") == 1          # the next renewal only at ~2/3 of the 15-min period
    feedback = check_token_lifecycle("c")
    assert feedback and "periodic" in feedback.message and "next login" in feedback.message


@pytest.mark.parametrize("letter, says", [("a", "reuses its token"), ("b", "does not renew"),
                                          ("d", "not a new identity")])
def test_the_lifecycle_prediction_explains_each_wrong_option(letter, says):
    assert_not_yet(check_token_lifecycle(letter), "not quite", says)


def test_the_lifecycle_prediction_refuses_stubs_and_strangers():
    assert_not_yet(check_token_lifecycle(...), "still the stub")
    assert_not_yet(check_token_lifecycle("e"), "not one of the options")
    assert_not_yet(check_token_lifecycle("a c"), "not one of the options")


# -- 5. replicas: the HPA measures CPU against the pod's request -------------------------------------------------

def _manifests():
    found = {}
    for path in sorted((REPO / "deploy" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found[doc["kind"]] = doc
    return found["Deployment"], found["HorizontalPodAutoscaler"]


DEPLOYMENT, HPA = _manifests()
LAB_RPS, PEAK = 1896.2, 3000      # one machine's throughput of one pod (section 1), and a peak


def _independent_answer(deployment, hpa, per_replica_rps=LAB_RPS, peak=PEAK):
    """Worked out from the manifests here, without the check module's helpers."""
    server = deployment["spec"]["template"]["spec"]["containers"][0]
    notes = deployment["spec"]["template"]["metadata"]["annotations"]
    metric = hpa["spec"]["metrics"][0]
    millicores = lambda q: float(q[:-1]) if str(q).endswith("m") else float(q) * 1000   # noqa: E731
    request = millicores(server["resources"]["requests"]["cpu"])
    if metric["type"] == "Resource":                     # every container of the pod: the sidecar counts
        request += millicores(notes["vault.hashicorp.com/agent-requests-cpu"])
    source = metric.get("resource") or metric["containerResource"]
    per_pod = source["target"]["averageUtilization"] / 100 * request          # millicores at the target
    needed = peak / per_replica_rps * millicores(server["resources"]["limits"]["cpu"])
    return request / 1000, max(math.ceil(needed / per_pod), hpa["spec"]["minReplicas"])


def test_the_manifests_are_what_the_lab_teaches():
    metric = HPA["spec"]["metrics"][0]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"   # pod-level: sidecar included
    assert lab09.pod_cpu_request(DEPLOYMENT, HPA) == pytest.approx(0.55)      # 500m server + 50m Vault Agent
    assert _independent_answer(DEPLOYMENT, HPA) == (pytest.approx(0.55), 5)   # 5 pods, not 3


def test_replicas_pass_on_the_answer_the_manifests_give_and_refuse_three():
    request, replicas = _independent_answer(DEPLOYMENT, HPA)
    _passes(check_replicas(request, replicas, PEAK, LAB_RPS, HPA, DEPLOYMENT))
    assert_not_yet(check_replicas(request, 3, PEAK, LAB_RPS, HPA, DEPLOYMENT), "one core", "request")
    # a peak below one pod's share: every method gives minReplicas, so the case cannot test the answer
    assert_not_yet(check_replicas(request, HPA["spec"]["minReplicas"], 100, LAB_RPS, HPA, DEPLOYMENT),
                   "cannot test the method")


@pytest.mark.parametrize("per_replica_rps", [500.0, 733.3, 1234.5, 1896.2, 2521.4, 3333.3, 4468.2, 5897.0, 8000.0])
def test_the_labs_peak_tells_the_right_answer_from_every_wrong_one_on_any_machine(per_replica_rps):
    """The lab's peak is three times one pod's measured throughput, which varies by machine and load."""
    peak = int(round(3 * per_replica_rps))                   # as the notebook sets PEAK_RPS
    request, right = _independent_answer(DEPLOYMENT, HPA, per_replica_rps, peak)
    assert right == lab09.replicas_at_peak(peak, per_replica_rps, DEPLOYMENT, HPA) == 8
    assert right <= HPA["spec"]["maxReplicas"]
    _passes(check_replicas(request, right, peak, per_replica_rps, HPA, DEPLOYMENT))
    needed = peak / per_replica_rps                           # cores at the peak (the limit is one core)
    wrong = {math.ceil(needed / (0.7 * 0.5)): "not what",     # the server's request only: 9
             math.ceil(needed / 0.7): "one core",             # utilisation against one core: 5
             math.ceil(needed): "CPU limit",                  # every pod at 100 %: 3 (4 when the peak rounds up)
             right - 1: "One pod short"}                      # 7
    assert len({right, *wrong}) == 5 and min(wrong) > HPA["spec"]["minReplicas"]
    for replicas, says in wrong.items():
        assert_not_yet(check_replicas(request, replicas, peak, per_replica_rps, HPA, DEPLOYMENT), says)


def test_a_change_to_the_manifests_changes_the_expected_answer():
    import copy
    # a ContainerResource metric counts the server container only: 500m, and at 1000 req/s 9 pods, not 8
    container_only = copy.deepcopy(HPA)
    resource = container_only["spec"]["metrics"][0].pop("resource")
    container_only["spec"]["metrics"][0] = {"type": "ContainerResource",
                                            "containerResource": {**resource, "container": "model-server"}}
    assert _independent_answer(DEPLOYMENT, container_only, 1000.0) == (pytest.approx(0.5), 9)
    assert _independent_answer(DEPLOYMENT, HPA, 1000.0) == (pytest.approx(0.55), 8)
    _passes(check_replicas(0.5, 9, PEAK, 1000.0, container_only, DEPLOYMENT))
    _passes(check_replicas(0.55, 8, PEAK, 1000.0, HPA, DEPLOYMENT))
    assert_not_yet(check_replicas(0.55, 8, PEAK, 1000.0, container_only, DEPLOYMENT), "0.5")
    # a bigger request or another target moves the answer with it
    bigger = copy.deepcopy(DEPLOYMENT)
    bigger["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "950m"
    request, replicas = _independent_answer(bigger, HPA)
    assert (request, replicas) == (pytest.approx(1.0), 3)
    _passes(check_replicas(request, replicas, PEAK, LAB_RPS, HPA, bigger))
    # without the annotation the injector's default request (250m) applies
    plain = copy.deepcopy(DEPLOYMENT)
    del plain["spec"]["template"]["metadata"]["annotations"]["vault.hashicorp.com/agent-requests-cpu"]
    assert lab09.pod_cpu_request(plain, HPA) == pytest.approx(0.75)


@pytest.mark.parametrize("request_cores, replicas, says", [
    (..., ..., "stub"),
    (0.55, ..., "`replicas` is still the stub"),
    (1.0, 3, "one core"),                 # utilisation against a core: the old, wrong answer
    (0.5, 5, "sidecar"),                  # the server's request only, with a Resource metric
    (550, 5, "millicores"),
    ("550m", 5, "number of cores"),
    (0.55, 4.11, "whole number"),
    (0.55, 3, "one core"),
    (0.55, 2, "CPU limit"),               # ceil(3000 / 1896): every pod at 100 %
    (0.55, 4, "One pod short"),
    (0.55, 40, "not what"),
])
def test_replicas_catch_the_mistakes(request_cores, replicas, says):
    assert_not_yet(check_replicas(request_cores, replicas, PEAK, LAB_RPS, HPA, DEPLOYMENT), says)


# -- 7. which layer does what ----------------------------------------------------------------------------------

LAYERS_RIGHT = {capability: truth for capability, (truth, _) in lab09.CAPABILITIES.items()}


def test_serving_layers_pass_on_the_answer_and_accept_lists_and_one_name():
    assert check_serving_layers(LAYERS_RIGHT)
    assert check_serving_layers({c: sorted(t) for c, t in LAYERS_RIGHT.items()})
    assert check_serving_layers({c: (next(iter(t)) if len(t) == 1 else t) for c, t in LAYERS_RIGHT.items()})


def test_serving_layers_give_every_wrong_layer_its_own_reason():
    for capability, (truth, why) in lab09.CAPABILITIES.items():
        for layer in lab09.LAYERS:
            wrong = dict(LAYERS_RIGHT, **{capability: truth ^ {layer}})
            feedback = check_serving_layers(wrong)
            assert_not_yet(feedback, capability)
            assert why[layer].split(":")[0][:40] in str(feedback), (capability, layer)
            others = [w for c, (_, ws) in lab09.CAPABILITIES.items() if c != capability for w in ws.values()]
            assert not any(other[:40] in str(feedback) for other in others), (capability, layer)


@pytest.mark.parametrize("answer, says", [
    (..., "still the stub"),
    ({"course", "kserve"}, "dict of sets"),
    ({**LAYERS_RIGHT, "autoscales": {"kserve"}}, "unexpected ['autoscales']"),
    ({k: v for k, v in list(LAYERS_RIGHT.items())[1:]}, "missing ['an explanation in the same response']"),
    ({**LAYERS_RIGHT, "asks every caller for a key": ...}, "is still the stub"),
    ({**LAYERS_RIGHT, "asks every caller for a key": {"istio"}}, "not one of the layers"),
    ({**LAYERS_RIGHT, "asks every caller for a key": 1}, "set of layers"),
])
def test_serving_layers_refuse_malformed_answers(answer, says):
    assert_not_yet(check_serving_layers(answer), says)


def test_serving_layers_agree_with_the_manifests():
    """What the answer says the platforms do is in their manifests, and what it says ours lacks is not in ours."""
    k8s = Path(artifacts.__file__).resolve().parents[2] / "deploy" / "k8s"
    kserve = yaml.safe_load((k8s / "peers" / "kserve-inferenceservice.yaml").read_text())
    seldon = yaml.safe_load((k8s / "peers" / "seldon-model.yaml").read_text())
    assert kserve["spec"]["predictor"]["sklearn"]["storageUri"] and seldon["spec"]["storageUri"]
    ours = (k8s / "deployment.yaml").read_text()
    assert "storageUri" not in ours and "rollingUpdate" in ours


# -- the untouched lab ---------------------------------------------------------------------------------------

def test_the_untouched_lab_runs_on_past_every_stub(untouched_lab):
    """Later cells cope with the stubs (the checks themselves: tests/test_untouched_labs.py)."""
    printed = printed_text(untouched_lab("09-operations.ipynb"))
    assert "Finish Exercise 1" in printed                        # later cells cope with the stubs
    assert "Finish Exercise 2" in printed and "Finish Exercise 9" in printed
    assert "now serving version 1" in printed                    # no swap happened
    assert "the stale caller was refused after the rotation: False" in printed
    assert "Finish Exercise 7: with no new wrapped secret ID, a restarted agent could not log in." in printed
