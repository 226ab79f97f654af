"""Self-checks for Lab 08 – Operating the model: monitoring, drift, zero-downtime updates, scale-out.

Each check takes what the learner produced (a dict of quantiles, a function, a load result, a response) and
the context to judge it against; the reference figures come from :mod:`glassbox.monitoring`. Messages of
passing checks are fixed sentences (load figures vary from run to run; a check's verdict must not). No
message ever contains a secret value.
"""

from __future__ import annotations

import math
import time

import numpy as np

from glassbox import monitoring
from glassbox.checks import exercise, expect, fail, is_stub

__all__ = ["check_latency_quantiles", "check_psi", "check_rollout", "check_rotation", "check_replicas",
           "LATENCY", "QUANTILES"]

LATENCY = "glassbox_request_duration_seconds"
QUANTILES = (50, 95, 99)


def _expect_load_lost_nothing(load, event: str, start_hint: str, failure_hint: str) -> None:
    """The background load around ``event`` (a swap, a rotation) was real, and not one request failed."""
    expect(not is_stub(load), f"`load` is missing: the {event} should happen while load runs.", hint=start_hint)
    expect(load.requests >= 100, f"Only {load.requests} requests ran during the {event}: too little to show anything.",
           hint=f"Keep the load running for a few seconds around the {event}.")
    expect(load.failed == 0, f"{load.failed} of {load.requests} requests failed during the {event} "
                             f"(statuses {load.statuses}).", hint=failure_hint)



def _window(before, after, endpoint: str) -> list[tuple[float, float]]:
    earlier = dict(before.buckets(LATENCY, endpoint=endpoint))
    return [(bound, count - earlier.get(bound, 0.0)) for bound, count in after.buckets(LATENCY, endpoint=endpoint)]


# -- 1. monitoring ---------------------------------------------------------------------------------------------

@exercise(lab="08", name="latency-quantiles", title="Latency quantiles from the server's histogram")
def check_latency_quantiles(quantiles, before, after, endpoint: str = "infer"):
    """``quantiles``: ``{50: ms, 95: ms, 99: ms}`` for the requests made between the scrapes ``before`` and
    ``after`` (:class:`glassbox.monitoring.Metrics`), from the ``infer`` endpoint's latency histogram."""
    expect(not is_stub(quantiles), "`quantiles` is still the stub.",
           hint="Subtract the first scrape's bucket counts from the second's, then call "
                "monitoring.histogram_quantile(q / 100, window) for q in 50, 95, 99 and convert to ms.")
    expect(isinstance(quantiles, dict), f"`quantiles` should be a dict {{50: ..., 95: ..., 99: ...}}, "
                                        f"not a {type(quantiles).__name__}.",
           hint="Build it with a dict comprehension: {q: ... for q in (50, 95, 99)}.")
    keys = sorted(quantiles)
    expect(keys == list(QUANTILES), f"`quantiles` has the keys {keys}; it needs 50, 95 and 99.",
           hint="Use the percentiles as keys: {50: ..., 95: ..., 99: ...}.")
    values = [float(quantiles[q]) for q in QUANTILES]
    expect(all(math.isfinite(v) for v in values), "Some quantiles are not finite numbers (NaN or infinite).",
           hint="histogram_quantile gives NaN for an empty window: were there requests between the two scrapes?")
    window = _window(before, after, endpoint)
    expect(window and window[-1][1] > 0, f"There were no `{endpoint}` requests between the two scrapes.",
           hint="Scrape once before the load and once after it.")
    reference = {q: monitoring.histogram_quantile(q / 100, window) * 1000 for q in QUANTILES}
    expect(values == sorted(values), f"The quantiles should not decrease from p50 to p99 (got {values}).",
           hint="Pass q / 100 (a fraction between 0 and 1) to histogram_quantile.")
    ratios = [v / reference[q] if reference[q] else float("inf") for q, v in zip(QUANTILES, values)]
    if all(abs(r - 0.001) < 1e-6 for r in ratios):
        fail("Your quantiles are in seconds; the exercise asks for milliseconds.", hint="Multiply by 1000.")
    cumulative = after.buckets(LATENCY, endpoint=endpoint)
    since_start = {q: monitoring.histogram_quantile(q / 100, cumulative) * 1000 for q in QUANTILES}
    if any(not math.isclose(values[i], reference[q], rel_tol=1e-6, abs_tol=1e-9) for i, q in enumerate(QUANTILES)):
        if all(math.isclose(values[i], since_start[q], rel_tol=1e-6) for i, q in enumerate(QUANTILES)):
            fail("These are the quantiles of every request since the server started, not of the load you made.",
                 hint="Counters only grow: subtract the counts of the scrape taken before the load, bucket by bucket.")
        shown = ", ".join(f"p{q} {v:.3f}" for q, v in zip(QUANTILES, values))
        fail(f"Your quantiles ({shown} ms) differ from the histogram's.",
             hint="Window = [(bound, after_count - before_count) for each bucket], then "
                  "monitoring.histogram_quantile(q / 100, window) * 1000.")
    return "well done: these are the quantiles a Prometheus dashboard would show for that minute."


# -- 2. drift ----------------------------------------------------------------------------------------------------

@exercise(lab="08", name="psi", title="The population stability index")
def check_psi(psi):
    """``psi(reference, live)``: the PSI of ``live`` against ``reference`` with ten quantile bins of the
    reference; compared with :func:`glassbox.monitoring.psi` on cases with and without a shift."""
    expect(callable(psi), "`psi` should be a function psi(reference, live).",
           hint="Define it with def psi(reference, live): ...")
    rng = np.random.default_rng(8)
    reference = rng.normal(50, 10, 20_000)
    same = rng.normal(50, 10, 3_000)
    moved = rng.normal(56, 10, 3_000)
    far = rng.normal(90, 5, 3_000)           # beyond the reference's range: many empty bins on one side
    value_same, value_moved, value_far = (float(psi(reference, live)) for live in (same, moved, far))
    expect(all(np.isfinite([value_same, value_moved, value_far])),
           "Your PSI is infinite or NaN when some bins are empty (traffic far outside the training range).",
           hint="Give empty bins a small share before taking the logarithm, e.g. np.clip(shares, 1e-4, None).")
    expect(value_same >= -1e-12 and value_moved >= -1e-12, "A PSI is never negative: each term has the sign of "
                                                 "(actual - expected) twice.",
           hint="Multiply (actual - expected) by ln(actual / expected), not by ln(expected / actual).")
    expect(value_moved > 0.01, "Your PSI is (about) zero for a clearly shifted distribution.",
           hint="PSI = sum over bins of (actual - expected) * ln(actual / expected), with the shares of each bin.")
    expect(value_same < 0.05, f"Your PSI is {value_same:.2f} for two samples of the same distribution; it "
                              "should be close to 0.",
           hint="Compare shares (counts divided by the sample size), not raw counts: the samples differ in size.")
    reference_value = monitoring.psi(reference, moved)
    expect(abs(value_moved - reference_value) < 0.03 + 0.15 * reference_value,
           f"For a shift of 0.6 standard deviations your PSI is {value_moved:.3f}; ten quantile bins of the "
           f"reference give about {reference_value:.3f}.",
           hint="Take the bin edges from the reference's deciles (np.quantile(reference, np.linspace(0, 1, 11))), "
                "open the outer edges to -inf and +inf, and count both samples in the same bins.")
    coins = (rng.random(5000) < 0.5).astype(float)
    flipped = (rng.random(1000) < 0.9).astype(float)
    value_coins = float(psi(coins, flipped))
    expect(np.isfinite(value_coins) and value_coins > 0.25,
           "On a 0/1 feature whose share of ones moved from 50 % to 90 % your PSI is "
           f"{value_coins:.3f}; it should be well above 0.25.",
           hint="With few distinct values many decile edges coincide: use np.unique on the edges.")
    return "well done: above 0.25 is the usual threshold for a significant shift."


# -- 3. roll-out -------------------------------------------------------------------------------------------------

@exercise(lab="08", name="rollout", title="Roll out the retrained model under load")
def check_rollout(load, swap, candidate_version: str):
    """``load``: the :class:`glassbox.monitoring.LoadResult` of the load that ran during the swap;
    ``swap``: the server's response (an ``httpx.Response``) to ``POST /v2/repository/models/{name}/load``."""
    expect(not is_stub(swap), "`swap` is still the stub: the candidate has not been loaded.",
           hint="Inside the `with` block: swap = httpx.post(f\"{server.url}/v2/repository/models/credit/load\", "
                "headers=...).")
    status = getattr(swap, "status_code", None)
    expect(status is not None, f"`swap` should be the server's HTTP response, not a {type(swap).__name__}.",
           hint="Keep what httpx.post(...) returns.")
    if status == 401:
        fail("The server refused the load request (401): it needs the API key like any other call.",
             hint="Pass headers={\"Authorization\": f\"Bearer {key}\"}.")
    if status != 200:
        try:
            reason = swap.json().get("error", "")
        except Exception:
            reason = ""
        fail(f"The server answered {status} to the load request: {reason}",
             hint="POST to /v2/repository/models/credit/load, after saving the candidate into the served model "
                  "directory.")
    answer = swap.json()
    expect(str(answer.get("version")) == str(candidate_version),
           f"The server now serves version {answer.get('version')}, not the candidate's {candidate_version}.",
           hint="Save the candidate with artifacts.save(..., version=CANDIDATE_VERSION, overwrite=True) into "
                "MODEL_DIR first, then ask the server to load.")
    _expect_load_lost_nothing(
        load, "swap", start_hint="Make the request inside `with monitoring.BackgroundLoad(...) as traffic:` and "
                                 "pass traffic.result.",
        failure_hint="The repository extension swaps without dropping requests; other changes made at the same time "
                     "(a key rotation, a server restart) do not.")
    return "well done: a new model in service, and not one request lost."


# -- 4. secret rotation ------------------------------------------------------------------------------------------

def _scraped(metrics):
    return metrics if isinstance(metrics, monitoring.Metrics) else monitoring.scrape(metrics)


@exercise(lab="08", name="rotation", title="Rotate the API key and the secret ID under load")
def check_rotation(load, client, version_before: int, wrapping_token, metrics, wait: float = 10.0):
    """``load``: the load that ran during the rotation (callers with a :class:`~glassbox.monitoring.KeyCaller`);
    ``client``: the admin hvac client; ``version_before``: the key's KV version before the rotation;
    ``wrapping_token``: the new wrapped secret ID handed to the server; ``metrics``: the server's ``/metrics``
    URL (polled for up to ``wait`` seconds) or a :class:`~glassbox.monitoring.Metrics` scrape."""
    import hvac
    import hvac.exceptions

    from glassbox.vault import bootstrap

    meta = client.secrets.kv.v2.read_secret_metadata(path=bootstrap.SERVICE_PATH, mount_point=bootstrap.MOUNT)
    current = int(meta["data"]["current_version"])
    expect(current > int(version_before), f"The API key is still at version {version_before}: it was not rotated.",
           hint="Write a new key as a new version: client.secrets.kv.v2.create_or_update_secret(path=..., "
                "secret={\"api_key\": secrets.token_urlsafe(32)}, cas=version_before, mount_point=\"secret\").")
    expect(not is_stub(wrapping_token), "`wrapping_token` is still the stub: the secret ID was not rotated.",
           hint="client.auth.approle.generate_secret_id(ROLE, wrap_ttl=\"60s\")[\"wrap_info\"][\"token\"], "
                "written to the server's secret-ID file.")
    anonymous = hvac.Client(url=client.url, token="")
    deadline = time.monotonic() + wait
    while True:
        try:
            info = anonymous.adapter.post("/v1/sys/wrapping/lookup", json={"token": wrapping_token})["data"]
        except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden):
            break                                  # unwrapped: the server logged in with the new secret ID
        if info.get("creation_path") != bootstrap.Setup().secret_id_creation_path:
            fail(f"`wrapping_token` wraps something made at {info.get('creation_path')}, not a secret ID of the "
                 "service's role.", hint="Generate it with client.auth.approle.generate_secret_id(ROLE, ...).")
        if time.monotonic() >= deadline:
            fail("The server has not used the new secret ID: its wrapping token is still unopened.",
                 hint="Write the wrapping token into SECRET_ID_FILE, the file the server watches; it reads it at its "
                      "next key refresh.")
        time.sleep(0.2)
    while True:
        served = _scraped(metrics).value("glassbox_api_key_version")
        if int(served) == current or isinstance(metrics, monitoring.Metrics) or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    expect(int(served) == current, f"The server still uses key version {int(served)}; Vault holds version {current}.",
           hint="The server re-reads its key every few seconds: keep the load running a little longer after rotating.")
    _expect_load_lost_nothing(
        load, "rotation", start_hint="Rotate inside `with monitoring.BackgroundLoad(...) as traffic:` and pass "
                                     "traffic.result.",
        failure_hint="Give the load a monitoring.KeyCaller that reads the key from Vault: it picks up the new key "
                     "when refused, which a fixed key never does.")
    return "well done: new key and new login, and callers that follow Vault never noticed."


# -- 5. scale-out -------------------------------------------------------------------------------------------------

@exercise(lab="08", name="replicas", title="How many replicas for the peak?")
def check_replicas(replicas, peak_rps: float, per_replica_rps: float, hpa: dict):
    """``replicas``: the pods needed to serve ``peak_rps`` when one pod at full CPU serves ``per_replica_rps``
    and the HorizontalPodAutoscaler ``hpa`` (the parsed manifest) keeps CPU at its target utilisation."""
    expect(not is_stub(replicas), "`replicas` is still the stub.",
           hint="math.ceil(PEAK_RPS / (per_replica_rps * target_utilisation)).")
    expect(isinstance(replicas, (int, np.integer)) and not isinstance(replicas, bool),
           f"`replicas` should be a whole number of pods, not {replicas!r}.",
           hint="Round up with math.ceil: half a pod does not exist, and rounding down leaves the peak unserved.")
    target = next(m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]
                  if m["type"] == "Resource" and m["resource"]["name"] == "cpu") / 100
    expected = max(math.ceil(peak_rps / (per_replica_rps * target)), hpa["spec"].get("minReplicas", 1))
    at_full_cpu = math.ceil(peak_rps / per_replica_rps)
    if replicas == at_full_cpu and replicas != expected:
        fail("That many pods would all run at 100 % CPU at the peak; the autoscaler aims at its target "
             "utilisation.", hint=f"Divide by per_replica_rps * {target:g} (the HPA's averageUtilization / 100).")
    if replicas == expected - 1:
        fail("One pod short: rounding down leaves part of the peak unserved.", hint="Use math.ceil.")
    expect(replicas == expected, f"{replicas} pods is not what the autoscaler would settle on.",
           hint="ceil(peak / (per-replica throughput x target utilisation)), and never fewer than minReplicas.")
    return "well done: that is where the HPA would settle at the peak (mind its maxReplicas)."
