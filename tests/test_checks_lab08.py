"""Lab 08's self-checks pass on the solution's values and fail, with a hint, on the stub and on the mistakes
the lab warns about: seconds for milliseconds, quantiles since start-up, a PSI without shares or without a floor
for empty bins, a swap that lost requests, a rotation the server never saw, rounding pods down."""

import math
import secrets
import time
from pathlib import Path

import httpx
import hvac
import hvac.exceptions
import numpy as np
import pytest
import yaml

from glassbox import monitoring
from glassbox.checks.lab08 import (
    LATENCY, check_latency_quantiles, check_psi, check_replicas, check_rollout, check_rotation,
)
from glassbox.vault import bootstrap
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


# the server had answered 100 slow requests before the load; the load added 1000 fast ones
BEFORE = _scrape([0, 0, 10, 60, 100, 100])
AFTER = _scrape([300, 900, 990, 1060, 1100, 1100], at=5.0)


def _solution(before, after):
    earlier = dict(before.buckets(LATENCY, endpoint="infer"))
    window = [(bound, count - earlier.get(bound, 0)) for bound, count in after.buckets(LATENCY, endpoint="infer")]
    return {q: monitoring.histogram_quantile(q / 100, window) * 1000 for q in (50, 95, 99)}


def test_quantiles_pass_on_the_solution():
    quantiles = _solution(BEFORE, AFTER)
    assert quantiles[50] < quantiles[95] <= quantiles[99] < 5.0     # the load's requests were fast...
    since_start = monitoring.histogram_quantile(0.99, AFTER.buckets(LATENCY)) * 1000
    assert since_start > quantiles[99]                              # ...the earlier ones were slow
    _passes(check_latency_quantiles(quantiles, BEFORE, AFTER))


def test_quantiles_catch_the_mistakes():
    right = _solution(BEFORE, AFTER)
    assert_not_yet(check_latency_quantiles(..., BEFORE, AFTER), "stub")
    assert_not_yet(check_latency_quantiles({q: v / 1000 for q, v in right.items()}, BEFORE, AFTER), "milliseconds")
    since_start = {q: monitoring.histogram_quantile(q / 100, AFTER.buckets(LATENCY)) * 1000 for q in (50, 95, 99)}
    assert_not_yet(check_latency_quantiles(since_start, BEFORE, AFTER), "since the server started", "subtract")
    with pytest.raises(ValueError, match="0.99 for p99"):    # percent for a fraction: refused at the source
        monitoring.histogram_quantile(99, AFTER.buckets(LATENCY))
    swapped = {50: right[95], 95: right[50], 99: right[99]}
    assert_not_yet(check_latency_quantiles(swapped, BEFORE, AFTER), "not decrease")
    assert_not_yet(check_latency_quantiles({q: v * 1.5 for q, v in right.items()}, BEFORE, AFTER), "differ", "window")
    assert_not_yet(check_latency_quantiles({"p50": 1, "p95": 2, "p99": 3}, BEFORE, AFTER), "50, 95 and 99")
    assert_not_yet(check_latency_quantiles([1, 2, 3], BEFORE, AFTER), "dict")
    assert_not_yet(check_latency_quantiles(right, AFTER, AFTER), "no `infer` requests")


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


def test_psi_passes_on_the_solution_and_agrees_with_the_package():
    _passes(check_psi(psi_solution))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=5000), rng.normal(0.5, 1, 2000)
    assert psi_solution(a, b) == pytest.approx(monitoring.psi(a, b), rel=1e-9)


@pytest.mark.parametrize("psi, says", [
    (..., "function"),
    (psi_stub, "zero"),
    (psi_no_floor, "empty"),
    (psi_counts, "shares"),
    (psi_reversed, "never negative"),
])
def test_psi_catches_the_mistakes(psi, says):
    assert_not_yet(check_psi(psi), says)


def test_psi_without_unique_edges_still_works_on_a_binary_feature():
    """Duplicate decile edges are allowed by numpy: the learner need not know about np.unique to pass."""
    def psi_plain(reference, live):
        edges = np.quantile(reference, np.linspace(0, 1, 11))
        edges[0], edges[-1] = -np.inf, np.inf
        expected = np.clip(np.histogram(reference, edges)[0] / len(reference), 1e-4, None)
        actual = np.clip(np.histogram(live, edges)[0] / len(live), 1e-4, None)
        return float(np.sum((actual - expected) * np.log(actual / expected)))
    _passes(check_psi(psi_plain))


# -- 3. roll-out ---------------------------------------------------------------------------------------------

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
    (_load(), _swap(400, error="the manifest ... not the pinned"), "pinned"),
    (_load(), _swap(version="1", previous_version="1"), "version 1"),
    (None, _swap(), "while load runs"),
    (_load(n=30), _swap(), "too little"),
    (_load(failed=3, status=0), _swap(), "3 of 800"),
])
def test_rollout_catches_the_mistakes(load, swap, says):
    assert_not_yet(check_rollout(load, swap, "2"), says)


# -- 4. rotation -----------------------------------------------------------------------------------------------

@pytest.fixture
def rotated(vault_client):
    """The service's key rotated and a new wrapped secret ID issued; returns (version before, token)."""
    bootstrap.ensure(vault_client)
    kv = vault_client.secrets.kv.v2
    before = kv.read_secret_metadata(path=bootstrap.SERVICE_PATH, mount_point=bootstrap.MOUNT)["data"]["current_version"]
    kv.create_or_update_secret(path=bootstrap.SERVICE_PATH, secret={bootstrap.API_KEY_FIELD: secrets.token_urlsafe(32)},
                               cas=before, mount_point=bootstrap.MOUNT)
    token = vault_client.auth.approle.generate_secret_id(bootstrap.ROLE, wrap_ttl="60s")["wrap_info"]["token"]
    return before, token


def _served(version):
    return monitoring.Metrics(time.time(), {("glassbox_api_key_version", frozenset()): float(version)})


def _unwrap(vault_client, token):
    hvac.Client(url=vault_client.url, token=token).sys.unwrap()


def test_rotation_passes_when_the_server_took_both(vault_client, rotated):
    before, token = rotated
    _unwrap(vault_client, token)                           # what the server does with the new secret ID
    _passes(check_rotation(_load(), vault_client, before, token, _served(before + 1)))


def test_rotation_catches_the_mistakes(vault_client, rotated):
    before, token = rotated
    assert_not_yet(check_rotation(_load(), vault_client, before, token, _served(before + 1), wait=0.3),
           "still unopened", "SECRET_ID_FILE")           # the server never used the new secret ID
    assert_not_yet(check_rotation(_load(), vault_client, before + 1, token, _served(before + 1)), "not rotated")
    assert_not_yet(check_rotation(_load(), vault_client, before, ..., _served(before + 1)), "stub")
    _unwrap(vault_client, token)
    assert_not_yet(check_rotation(_load(), vault_client, before, token, _served(before)), "still uses key version")
    assert_not_yet(check_rotation(_load(failed=12), vault_client, before, token, _served(before + 1)), "KeyCaller")
    assert_not_yet(check_rotation(None, vault_client, before, token, _served(before + 1)), "while load runs")


def test_rotation_refuses_a_look_alike_wrapping_token(vault_client, rotated):
    before, _ = rotated
    other = vault_client.sys.wrap({"secret_id": "not-from-the-role"}, ttl="60s")["wrap_info"]["token"]
    assert_not_yet(check_rotation(_load(), vault_client, before, other, _served(before + 1), wait=0.3), "not a secret ID")


# -- 5. replicas -------------------------------------------------------------------------------------------------

HPA = yaml.safe_load((REPO / "deploy" / "k8s" / "hpa.yaml").read_text())


def test_replicas_pass_on_the_solution():
    target = HPA["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] / 100
    replicas = math.ceil(3000 / (700.0 * target))
    _passes(check_replicas(replicas, 3000, 700.0, HPA))
    _passes(check_replicas(HPA["spec"]["minReplicas"], 100, 700.0, HPA))  # never below minReplicas


@pytest.mark.parametrize("replicas, says", [
    (..., "stub"),
    (6.2, "whole number"),
    (math.ceil(3000 / 700), "100 %"),
    (math.floor(3000 / (700 * 0.7)), "ceil"),
    (40, "not what"),
])
def test_replicas_catch_the_mistakes(replicas, says):
    assert_not_yet(check_replicas(replicas, 3000, 700.0, HPA), says)


# -- the untouched lab ---------------------------------------------------------------------------------------

def test_the_untouched_lab_runs_on_past_every_stub(untouched_lab):
    """Later cells cope with the stubs (the checks themselves: tests/test_untouched_labs.py)."""
    printed = printed_text(untouched_lab("08-operations.ipynb"))
    assert "Complete exercise 1" in printed                      # later cells cope with the stubs
    assert "now serving version 1" in printed                    # no swap happened
    assert "the stale caller was refused after the rotation: False" in printed
