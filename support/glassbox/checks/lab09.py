"""Self-checks for Lab 09 – Operating the model: monitoring, drift, zero-downtime updates, scale-out.

Each check takes what the learner produced (bucket rates and quantiles, a function, a prediction, a load
result, a response, a wrapping token, a number of pods) and the context to judge it against; the reference figures come from
:mod:`glassbox.monitoring` and, for the autoscaler, from the manifests in ``deploy/k8s`` that the lab reads.
Messages of passing checks are fixed sentences (load figures vary from run to run; a check's verdict must not).
No message ever contains a secret value.

The autoscaler's arithmetic (:func:`pod_cpu_request`, :func:`replicas_at_peak`): a ``Resource`` CPU metric's
utilisation is the pod's CPU usage divided by the pod's CPU *request*, summed over all its containers, the
Vault Agent sidecar that the injector adds included; a ``ContainerResource`` metric counts only the named
container. The HPA settles where ``ceil(total CPU needed / (target utilisation x request))``.
"""

from __future__ import annotations

import math
import time

import numpy as np

from glassbox import monitoring
from glassbox.monitoring.canary import loss_evidence
from glassbox.checks import choose, exercise, expect, expect_answered, expect_close, fail, is_stub
from glassbox.checks.vault_tokens import (MAX_WRAP_TTL, ORCHESTRATOR_DISPLAY, is_plain_secret_id, token_display_name,
                                          wrapping_lookup)

__all__ = ["check_latency_quantiles", "check_psi", "check_drift_prediction", "check_contract_or_retrain",
           "check_canary_decision", "check_rollout", "check_rotation", "check_token_lifecycle", "check_replicas", "check_serving_layers",
           "pod_cpu_request", "replicas_at_peak", "cores", "LAYERS", "CAPABILITIES",
           "LATENCY", "QUANTILES", "INJECTOR_DEFAULT_CPU_REQUEST"]

LATENCY = "glassbox_request_duration_seconds"
QUANTILES = (50, 95, 99)
INJECTOR_DEFAULT_CPU_REQUEST = "250m"   # the Vault Agent injector's default when no annotation sets it


def _expect_load_lost_nothing(load, event: str, start_hint: str, failure_hint: str) -> None:
    """The background load around ``event`` (a swap, a rotation) was real, and not one request failed."""
    expect(not is_stub(load), f"`load` is missing: the {event} should happen while load runs.", hint=start_hint)
    expect(load.requests >= 100, f"Only {load.requests} requests ran during the {event}: too little to show anything.",
           hint=f"Keep the load running for a few seconds around the {event}.")
    expect(load.failed == 0, f"{load.failed} of {load.requests} requests failed during the {event} "
                             f"(statuses {load.statuses}).", hint=failure_hint)


# -- 1. monitoring ---------------------------------------------------------------------------------------------

_RATES_HINT = ("A rate is an increase divided by the time it took: compare each bucket in the two scrapes, "
               "and mind how far apart they were taken.",
               "Each scrape's `.time` says when it was taken; `Metrics.buckets(LATENCY, endpoint=\"infer\")` gives "
               "`(upper bound, cumulative count)` pairs, summed over the other labels like `sum by (le)`.")


def _pairs(value, name: str) -> list[tuple[float, float]]:
    expect(isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value),
           f"`{name}` should be a list of `(upper bound, rate)` pairs, not {type(value).__name__}.",
           _RATES_HINT)
    return [(float(bound), float(rate)) for bound, rate in value]


@exercise(lab="09", name="latency-quantiles", title="Latency quantiles from the server's histogram, as Prometheus",
          hint=_RATES_HINT)
def check_latency_quantiles(bucket_rates, quantiles, before, after, endpoint: str = "infer"):
    """``bucket_rates``: ``[(le, observations per second), ...]`` between the scrapes ``before`` and ``after``
    (:class:`glassbox.monitoring.Metrics`) of the ``infer`` latency histogram, ``sum by (le) (rate(...))``;
    ``quantiles``: ``{50: ms, 95: ms, 99: ms}`` from them, as ``histogram_quantile`` does."""
    expect_answered(bucket_rates, "bucket_rates")
    reference = monitoring.bucket_rates(before, after, LATENCY, endpoint=endpoint)
    expect(reference and reference[-1][1] > 0, f"There were no `{endpoint}` requests between the two scrapes.",
           hint="Scrape once before the load and once after it.")
    given = _pairs(bucket_rates, "bucket_rates")
    expect([b for b, _ in given] == [b for b, _ in reference],
           f"`bucket_rates` has the bounds {[b for b, _ in given][:4]}...; the histogram's are "
           f"{[b for b, _ in reference][:4]}... (sorted, `+Inf` last).",
           hint="Keep every bucket of the `infer` histogram, in the order `buckets()` gives them.")
    span = after.time - before.time
    rates = np.array([r for _, r in given])
    truth = np.array([r for _, r in reference])
    if np.allclose(rates, truth * span, rtol=1e-6) and not math.isclose(span, 1.0, rel_tol=1e-3):
        fail("`bucket_rates` holds increases (requests between the scrapes), not rates per second.",
             hint=("PromQL's `rate()` is the increase divided by the window's length.",
                   "Divide each bucket's increase by `after.time - before.time`."))
    cumulative = np.array([c for _, c in after.buckets(LATENCY, endpoint=endpoint)])
    if np.allclose(rates, cumulative, rtol=1e-6) or np.allclose(rates, cumulative / span, rtol=1e-6):
        fail("`bucket_rates` counts every request since the server started, not those of the window.",
             hint=("Counters only grow: a window is the difference between two scrapes.",
                   "Subtract the count of the scrape `before` from that of `after`, bucket by bucket."))
    expect(np.allclose(rates, truth, rtol=1e-6, atol=1e-9),
           "`bucket_rates` differs from the per-second increase of each bucket between the two scrapes.",
           hint=_RATES_HINT)
    expect_answered(quantiles, "quantiles", hint=("`histogram_quantile` takes a quantile as a fraction and your "
                                                  "bucket rates.", "Convert its seconds to milliseconds."))
    expect(isinstance(quantiles, dict), f"`quantiles` should be a dict {{50: ..., 95: ..., 99: ...}}, "
                                        f"not a {type(quantiles).__name__}.",
           hint="One entry per percentile, keyed by the percentile (50, 95, 99).")
    keys = sorted(quantiles, key=str)
    expect(set(quantiles) == set(QUANTILES), f"`quantiles` has the keys {keys}; it needs 50, 95 and 99.",
           hint="Use the percentiles as keys: {50: ..., 95: ..., 99: ...}.")
    try:
        values = [float(quantiles[q]) for q in QUANTILES]
    except (TypeError, ValueError):
        fail("Each quantile should be a number of milliseconds.", hint="Store floats, not strings or arrays.")
    expect(all(math.isfinite(v) for v in values), "Some quantiles are not finite numbers (NaN or infinite).",
           hint="histogram_quantile gives NaN for an empty window: were there requests between the two scrapes?")
    expected = {q: monitoring.histogram_quantile(q / 100, reference) * 1000 for q in QUANTILES}
    expect(values == sorted(values), f"The quantiles should not decrease from p50 to p99 (got {values}).",
           hint="Pass the quantile as a fraction between 0 and 1 (0.99 for p99) to histogram_quantile.")
    ratios = [v / expected[q] if expected[q] else float("inf") for q, v in zip(QUANTILES, values)]
    if all(abs(r - 0.001) < 1e-6 for r in ratios):
        fail("Your quantiles are in seconds; the exercise asks for milliseconds.",
             hint="The histogram's bounds are seconds: one second is 1000 ms.")
    if any(not math.isclose(values[i], expected[q], rel_tol=1e-6, abs_tol=1e-9) for i, q in enumerate(QUANTILES)):
        shown = ", ".join(f"p{q} {v:.3f}" for q, v in zip(QUANTILES, values))
        fail(f"Your quantiles ({shown} ms) differ from what `histogram_quantile` gives for your bucket rates.",
             hint=("Estimate them from the server's histogram (the window's bucket rates), not from the caller's "
                   "measurements.", "monitoring.histogram_quantile(fraction, bucket_rates), in milliseconds."))
    return ("well done: the same numbers as `histogram_quantile(0.99, sum by (le) (rate(..._bucket[1m])))` "
            "on a Prometheus dashboard.")


# -- 2. drift ----------------------------------------------------------------------------------------------------

_PSI_HINT = ("Bin both samples with the same edges taken from the reference, compare each bin's share, and "
             "sum the formula above over the bins.",
             "`np.quantile` gives the deciles, `np.histogram(values, edges)` the counts per bin; shares are counts "
             "divided by the sample size.")


@exercise(lab="09", name="psi", title="The population stability index", hint=_PSI_HINT)
def check_psi(psi):
    """``psi(reference, live)``: the PSI of ``live`` against ``reference`` with ten quantile bins of the
    reference; compared with :func:`glassbox.monitoring.psi` on cases with and without a shift."""
    expect_answered(psi, "psi")
    expect(callable(psi), "`psi` should be a function psi(reference, live).",
           hint="Define it with def psi(reference, live): ...")
    rng = np.random.default_rng(8)
    reference = rng.normal(50, 10, 20_000)
    same = rng.normal(50, 10, 3_000)
    moved = rng.normal(56, 10, 3_000)
    far = rng.normal(90, 5, 3_000)           # beyond the reference's range: many empty bins on one side
    results = [psi(reference, live) for live in (same, moved, far)]
    expect(all(isinstance(r, (int, float, np.number)) and not isinstance(r, bool) for r in results),
           f"`psi` returned {results[0]!r}, not a number: does it end with a `return`?",
           hint="The last line of the function should return the sum, as a float.")
    value_same, value_moved, value_far = (float(r) for r in results)
    expect(all(np.isfinite([value_same, value_moved, value_far])),
           "Your PSI is infinite or NaN when some bins are empty (traffic far outside the training range).",
           hint=("An empty bin has a share of 0, and ln(0) is infinite.",
                 "Give every share a small floor before taking the logarithm (`np.clip`)."))
    expect(value_same >= -1e-12 and value_moved >= -1e-12, "A PSI is never negative: each term has the sign of "
                                                           "(actual - expected) twice.",
           hint="Multiply (actual - expected) by ln(actual / expected), not by ln(expected / actual).")
    expect(value_moved > 0.01, "Your PSI is (about) zero for a clearly shifted distribution.", hint=_PSI_HINT)
    expect(value_same < 0.05, f"Your PSI is {value_same:.2f} for two samples of the same distribution; it "
                              "should be close to 0.",
           hint="Compare shares (counts divided by the sample size), not raw counts: the samples differ in size.")
    reference_value = monitoring.psi(reference, moved)
    expect(abs(value_moved - reference_value) < 0.03 + 0.15 * reference_value,
           f"For a shift of 0.6 standard deviations your PSI is {value_moved:.3f}; ten quantile bins of the "
           f"reference give about {reference_value:.3f}.",
           hint=("Take the bin edges from the reference's deciles, open the outer edges to -inf and +inf, and "
                 "count both samples in the same bins.", _PSI_HINT[1]))
    beyond = np.concatenate([rng.normal(50, 10, 2_100), reference.max() + rng.uniform(1, 30, 900)])
    value_beyond, reference_beyond = float(psi(reference, beyond)), monitoring.psi(reference, beyond)
    expect(np.isfinite(value_beyond) and abs(value_beyond - reference_beyond) < 0.03 + 0.15 * reference_beyond,
           f"With 30 % of the live values above the reference's maximum your PSI is {value_beyond:.3f}, not about "
           f"{reference_beyond:.3f}. Live values beyond the reference's range are not counted: make the outer "
           "edges -inf and +inf.",
           hint=("`np.histogram` drops values outside its first and last edges: the deciles' minimum and maximum "
                 "close the outer bins.", "Replace the first and last edge by `-np.inf` and `np.inf`."))
    coins = (rng.random(5000) < 0.5).astype(float)
    flipped = (rng.random(1000) < 0.9).astype(float)
    value_coins = float(psi(coins, flipped))
    expect(np.isfinite(value_coins) and value_coins > 0.25,
           "On a 0/1 feature whose share of ones moved from 50 % to 90 % your PSI is "
           f"{value_coins:.3f}; it should be well above 0.25.",
           hint="With few distinct values many decile edges coincide: use np.unique on the edges.")
    return "well done: above 0.25 is the usual threshold for a significant shift."


DRIFT_OPTIONS = {
    "a": "every feature: the new partner's applications differ in everything",
    "b": "income and debt_to_income, and nothing else",
    "c": "none: the applicants are no different, only the way two fields are recorded",
    "d": "income only: adding 0.15 to a ratio is too small a change to notice",
}
_DRIFT_WHY = {
    "a": "The partner's applicants are drawn like the others; only two fields are recorded differently, so the "
         "other nine features keep their distribution.",
    "b": "Right: PSI compares distributions, and exactly the two re-recorded fields moved. Income is 30 % lower "
         "across the board and debt-to-income moved by 0.15, several of its deciles.",
    "c": "PSI cannot know why a distribution moved: a changed recording moves the numbers the model sees as "
         "surely as a changed population does.",
    "d": "Small in absolute terms, but debt-to-income lives between 0 and 1: 0.15 crosses several of its "
         "deciles, so many rows land in other bins.",
}


@exercise(lab="09", name="drift-prediction", title="Predict which features the drift monitor flags",
          hint=("Ask, for each feature, whether the numbers the model receives change for the new partner's rows.",
                "PSI sees only distributions: it cannot tell a changed population from a changed recording."))
def check_drift_prediction(prediction):
    """``prediction``: the letter of :data:`DRIFT_OPTIONS` the learner predicts before the replay."""
    expect_answered(prediction, "prediction")
    return choose(prediction, DRIFT_OPTIONS, correct="b", why=_DRIFT_WHY)


CONTRACT_OPTIONS = {
    "a": "retrain on the new partner's data and serve that model to all traffic: it scores best on the new rows",
    "b": "fix the data contract: map the new partner's two fields back to their agreed meaning at ingestion (and "
         "have the partner send them as agreed); the serving model is then right for both segments",
    "c": "raise the drift alert's threshold above what the new partner causes, so that the alerts stop",
    "d": "keep the serving model and lower its decision threshold until its approval rate is back to normal",
}
_CONTRACT_WHY = {
    "a": "The model retrained on the new recording is the worst of all on the old partners' rows (its log loss "
         "there is far above the serving model's): it learnt a recording, not the applicants.",
    "b": "Right: the applicants did not change, the meaning of two fields did. Mapping them back restores the "
         "inputs the model was validated on, for every segment, today, without waiting months for outcomes. "
         "Retraining is the answer when the population itself changes; here it would bake a recording bug "
         "into the model.",
    "c": "The alert is right: the inputs moved. Silencing it leaves biased predictions in place.",
    "d": "One threshold cannot undo a shift in two features' meaning: the ranking within the new partner's rows "
         "and the probabilities would still be read from the wrong numbers, and old partners would be hit too.",
}


@exercise(lab="09", name="contract-or-retrain", title="Fix the data contract, or retrain?",
          hint=("Read the table per segment: which option is no worse than today on the old partners *and* good "
                "on the new one?",
                "What changed: the applicants, or what the partner writes into two fields?"))
def check_contract_or_retrain(answer):
    """``answer``: the letter of :data:`CONTRACT_OPTIONS`."""
    expect_answered(answer, "answer")
    return choose(answer, CONTRACT_OPTIONS, correct="b", why=_CONTRACT_WHY)


# -- 3. roll-out -------------------------------------------------------------------------------------------------

CANARY_OPTIONS = {
    "a": "promote: in every segment the whole interval lies below the margin",
    "b": "roll back: in some segment the whole interval lies above the margin",
    "c": "extend: no interval lies wholly above the margin, but one straddles it (or a segment has too few rows): "
         "keep the split and gather more batches",
    "d": "promote: the paired difference itself is below the margin in every segment",
    "e": "roll back: in some segment the interval reaches above the margin, so harm cannot be ruled out",
}
_CANARY_HINT = ("For each segment, find where the margin (0.02) falls against the canary's interval: below its lower "
                "bound, above its upper bound, or between the two.",
                "Promote and roll back each need the evidence to point one way. Which way does each segment's "
                "interval point, and is that enough for either?")


def _canary_evidence(verdict) -> dict[str, tuple[str, float, float, float]]:
    """``{segment: (what its interval shows, difference, low, high)}``: ``"within"``, ``"beyond"`` or ``"unclear"``
    (:func:`glassbox.monitoring.canary.loss_evidence`), ``"few"`` for a segment with too few rows to judge."""
    column = "paired diff" if "paired diff" in verdict.table.columns else "diff"
    margin, found = verdict.max_loss_increase, {}
    for (segment, arm), row in verdict.table.iterrows():
        if arm == "canary":
            few = any(reason.startswith(f"{segment}: too few rows") for reason in verdict.reasons)
            call = "few" if few else loss_evidence(row["95% low"], row["95% high"], margin)
            found[segment] = (call, float(row[column]), float(row["95% low"]), float(row["95% high"]))
    return found


def _canary_why(evidence: dict, margin: float) -> dict[str, str]:
    """Why each option is right or wrong on these intervals, with their figures."""
    def first(condition):
        return next(((segment, *figures[1:]) for segment, figures in evidence.items()
                     if figures[0] != "few" and condition(figures)), None)

    beyond, unclear = first(lambda f: f[0] == "beyond"), first(lambda f: f[0] == "unclear")
    reaching = unclear or first(lambda f: f[3] >= margin)   # an upper bound at or above the margin
    starting = unclear or first(lambda f: f[2] <= margin)   # a lower bound at or below it
    few = next((segment for segment, figures in evidence.items() if figures[0] == "few"), None)
    too_few = f"On {few} the canary saw too few rows to judge"
    why = {}
    if reaching:
        segment, diff, low, high = reaching
        why["a"] = (f"On {segment} the interval reaches {high:+.3f}, above the {margin:g} margin: the evidence does "
                    "not show the canary within it.")
        why["d"] = (f"The point estimate is one draw of the traffic's luck: on {segment} it is {diff:+.3f}, but the "
                    f"interval reaches {high:+.3f}, so the canary may be worse than the {margin:g} margin allows. "
                    "The rule reads the whole interval, not its middle.")
    elif few:
        why["a"] = f"{too_few}: there is no evidence yet that it is within the margin."
        why["d"] = f"{too_few}: a point estimate from a handful of rows is no evidence either way."
    else:
        why["a"] = ("Right: every interval's upper bound lies below the margin, so the evidence shows the canary "
                    "within it everywhere.")
        why["d"] = ("The decision is right here, but not for that reason: a point estimate inside the margin with an "
                    "interval reaching past it would not be evidence. The rule reads the whole interval.")
    if beyond:
        segment, diff, low, high = beyond
        why["b"] = (f"Right: on {segment} even the interval's lower bound, {low:+.3f}, lies above the {margin:g} "
                    "margin: the evidence shows the canary worse than you accept. Roll back.")
        why["e"] = ("The decision is right here, but a roll back needs evidence of harm (the whole interval above the "
                    "margin), not harm that cannot be ruled out.")
        why["c"] = "More traffic cannot help a canary whose whole interval lies above the margin: that is harm, shown."
    elif starting:
        segment, diff, low, high = starting
        why["b"] = (f"No interval lies wholly above the margin: on {segment} it starts at {low:+.3f}, below "
                    f"{margin:g}, so the canary may be within the margin.")
        why["e"] = (f"A roll back needs evidence of harm: on {segment} the interval starts at {low:+.3f}, below the "
                    f"{margin:g} margin, so the canary may be no worse than you accept. Every short canary has an "
                    "interval reaching past the margin: rolling back on that would reject them all.")
    else:
        why["b"] = why["e"] = f"{too_few}: too few rows call for more traffic; they are no evidence of harm."
    if unclear and not beyond:
        segment, diff, low, high = unclear
        why["c"] = (f"Right: on {segment} the interval ({low:+.3f} to {high:+.3f}) straddles the {margin:g} margin: "
                    "not enough evidence either way. Keep the traffic split, gather more batches, and decide again.")
    elif few and not beyond:
        why["c"] = (f"Right: {too_few[0].lower()}{too_few[1:]}: not enough evidence either way. Keep the traffic "
                    "split, gather more batches, and decide again.")
    elif not beyond:
        why["c"] = ("Every interval lies below the margin already: the evidence is in, and more traffic would only "
                    "delay the promotion.")
    return why


@exercise(lab="09", name="canary-decision", title="Predict the canary's decision from its intervals",
          hint=_CANARY_HINT)
def check_canary_decision(decision, verdict):
    """``decision``: the letter of :data:`CANARY_OPTIONS` the learner predicts from the table of ``verdict`` (a
    :class:`glassbox.monitoring.CanaryVerdict` with intervals), judged on that table's log-loss intervals."""
    expect(isinstance(verdict, monitoring.CanaryVerdict) and {"95% low", "95% high"} <= set(verdict.table.columns),
           "The canary's verdict with its intervals is missing: run the canary cells above first.",
           "Run the cell that loads version 3 into the canary server and prints its table.")
    expect_answered(decision, "decision")
    evidence = _canary_evidence(verdict)
    expect(evidence, "The canary's table has no canary rows: run the canary cells above again.")
    calls = {call for call, *_ in evidence.values()}
    correct = "b" if "beyond" in calls else "c" if calls & {"unclear", "few"} else "a"
    return choose(decision, CANARY_OPTIONS, correct=correct, why=_canary_why(evidence, verdict.max_loss_increase))



@exercise(lab="09", name="rollout", title="Promote the candidate: swap it in under load",
          hint=("The server's model-repository extension loads a new version from disk while it keeps serving.",
                "POST to the repository's `load` endpoint for the model `credit`, with the caller's `headers()`."))
def check_rollout(load, swap, candidate_version: str):
    """``load``: the :class:`glassbox.monitoring.LoadResult` of the load that ran during the swap;
    ``swap``: the server's response (an ``httpx.Response``) to ``POST /v2/repository/models/{name}/load``."""
    expect(not is_stub(swap), "`swap` is still the stub: the candidate has not been loaded.",
           hint=check_rollout.hints)
    status = getattr(swap, "status_code", None)
    expect(status is not None, f"`swap` should be the server's HTTP response, not a {type(swap).__name__}.",
           hint="Keep what the POST request returns (an `httpx.Response`), not the URL or its text.")
    if status == 401:
        fail("The server refused the load request (401): it needs the API key like any other call.",
             hint="The repository is protected like inference: send the caller's `headers()`.")
    if status == 404:
        fail("The server answered 404: that is not the repository's load endpoint for `credit`.",
             hint="The repository extension lives under `/v2/repository/models/{name}/...`, not `/v2/models/...`.")
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
           hint="Save the candidate as `CANDIDATE_VERSION` into `MODEL_DIR` first (the cell above), then ask the "
                "server to load.")
    _expect_load_lost_nothing(
        load, "swap", start_hint="Make the request inside the `with monitoring.BackgroundLoad(...)` block and "
                                 "pass its `.result`.",
        failure_hint="The repository extension swaps without dropping requests; other changes made at the same time "
                     "(a key rotation, a server restart) do not.")
    return "well done: a new model in service, and not one request lost."


# -- 4. secret rotation, the agent's token -------------------------------------------------------------------------

def _eventually(condition, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def _server_accepts(server_url: str, key: str) -> bool:
    import httpx

    try:
        answer = httpx.get(f"{server_url.rstrip('/')}/v2/models/credit", timeout=5,
                           headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


@exercise(lab="09", name="rotation", title="Rotate the API key, and hand the agent its next secret ID, under load",
          hint=("Two hand-overs: a new KV version of the key (check-and-set on the version you read), and a new "
                "response-wrapped secret ID, issued by the orchestrator, in the file the agent reads at its next "
                "login.",
                "The KV write's `cas` is the version you read; a wrapped request answers with its token under "
                "`wrap_info`, and the orchestrator may wrap for at most five minutes; `write_private` writes a "
                "file 0600."))
def check_rotation(load, client, version_before: int, wrapping_token, server_url: str, agent_dir,
                   wait: float = 10.0):
    """``load``: the load that ran during the rotation (callers with a :class:`~glassbox.monitoring.KeyCaller`);
    ``client``: the admin hvac client; ``version_before``: the key's KV version before the rotation;
    ``wrapping_token``: the new wrapped secret ID handed to the agent; ``server_url``: the model server;
    ``agent_dir``: the agent's directory (:mod:`glassbox.vault.agent`). The agent's rendering and the server's
    pick-up are awaited for up to ``wait`` seconds."""
    from pathlib import Path

    from glassbox.vault import agent, bootstrap

    meta = client.secrets.kv.v2.read_secret_metadata(path=bootstrap.SERVICE_PATH, mount_point=bootstrap.MOUNT)
    current = int(meta["data"]["current_version"])
    expect(current > int(version_before), f"The API key is still at version {version_before}: it was not rotated.",
           hint=("Write the new key as a new version of the service's secret (`setup.service_path` on "
                 "`setup.mount`), field `setup.api_key_field`.", check_rotation.hints[1]))
    expect(not is_stub(wrapping_token), "`wrapping_token` is still the stub: the secret ID was not rotated.",
           hint=check_rotation.hints)
    expect(isinstance(wrapping_token, str), f"`wrapping_token` should be the wrapping token (a string), not a "
                                            f"{type(wrapping_token).__name__}.",
           hint="The response of a wrapped request holds it under `wrap_info`.")
    info = wrapping_lookup(client.url, wrapping_token)
    if info is None:
        if is_plain_secret_id(client, wrapping_token):
            fail("`wrapping_token` is the secret ID itself, in the clear: the agent accepts only a response-wrapped "
                 "one (single-use, short-lived, and its creation path proves it came from Vault). The orchestrator's "
                 "policy would not even issue it unwrapped: the root token did.",
                 hint=("Issue it as the orchestrator, with a `wrap_ttl`, and hand over `wrap_info`'s token.",
                       "`orchestrator`, not `client`: the root token is not for starting services."))
        fail("`wrapping_token` is no valid wrapping token: unknown, expired, or already unwrapped by someone.",
             hint=("A wrapping token works once, within its wrap TTL: the agent must be the first to open it.",
                   "Issue a fresh one, wrapped no longer than the orchestrator allows (five minutes), and do not "
                   "unwrap it yourself."))
    expect(info.get("creation_path") == bootstrap.Setup().secret_id_creation_path,
           f"`wrapping_token` wraps something made at {info.get('creation_path')}, not a secret ID of the service's "
           "role: the agent would refuse it (it checks the creation path).",
           hint="Generate it for the service's role, `setup.role`.")
    ttl = int(info.get("creation_ttl") or 0)
    expect(0 < ttl <= MAX_WRAP_TTL,
           f"`wrapping_token` lives {ttl} s: a wrapped secret ID is a credential for the next few minutes, so keep "
           f"its wrap TTL at {MAX_WRAP_TTL} s or less.",
           hint=("Whoever finds a wrapping token before it expires can open it: it only has to last until the "
                 "agent's next login, which the orchestrator arranges soon.",
                 "Issue it as the orchestrator, whose policy caps the wrap TTL at five minutes."))
    expect(token_display_name(client, wrapping_token) == ORCHESTRATOR_DISPLAY,
           "The wrapped secret ID was issued with the root token, not the orchestrator's.",
           hint=("Secret zero comes from the trusted orchestrator, whose token can do nothing else: the root token "
                 "is not for starting services.", "Use the `orchestrator` client, not `client`."))
    delivered = Path(agent_dir) / agent.SECRET_ID_FILE
    held = delivered.read_text(encoding="utf-8").strip() if delivered.is_file() else None
    expect(held == wrapping_token,
           "The new wrapped secret ID is not in the agent's directory, so its next login cannot use it"
           + (": the file there holds something else." if held else f" (no file {delivered.name} there)."),
           hint=("The agent reads its secret ID from `AGENT_DIR / agent.SECRET_ID_FILE` at each login.",
                 "Write the wrapping token into that file."))
    expect(not delivered.stat().st_mode & 0o077,
           f"{delivered.name} is readable by others (mode {delivered.stat().st_mode & 0o777:o}): a credential's file "
           "must be the owner's only, 0600, even inside a private directory.",
           hint=("`Path.write_text` keeps the default mode (0644 here).",
                 "`glassbox.paths.write_private(path, text)` writes it 0600, in one step."))
    key = bootstrap.read_api_key(client)
    key_file = Path(agent_dir) / agent.KEY_FILE

    def rendered() -> bool:
        try:
            return key_file.read_text(encoding="utf-8").strip() == key
        except OSError:
            return False

    expect(_eventually(rendered, wait), f"The agent has not rendered key version {current} within {wait:.0f} s.",
           hint="Is the agent still running (`service_agent.running`)? It renders the key every `render_interval`.")
    expect(_eventually(lambda: _server_accepts(server_url, key), wait),
           "The server does not accept the new key: it has not re-read the agent's file.",
           hint="The server re-reads `GLASSBOX_API_KEY_FILE` every `GLASSBOX_KEY_REFRESH_SECONDS`: is it running?")
    _expect_load_lost_nothing(
        load, "rotation", start_hint="Rotate inside the `with monitoring.BackgroundLoad(...)` block and pass its "
                                     "`.result`.",
        failure_hint="Give the load a monitoring.KeyCaller that reads the key from Vault: it picks up the new key "
                     "when refused, which a fixed key never does.")
    return ("well done: a new key, rendered by the agent and picked up by the server, without one failed request for "
            "callers that follow Vault; and a new wrapped secret ID, from the orchestrator, waits a few minutes "
            "for the agent's next login.")


LIFECYCLE_OPTIONS = {
    "a": "about one login per second: each render of the key logs in with AppRole, and the render after Exercise 7 "
         "used the new wrapped secret ID",
    "b": "one login, and about one renewal per second: each render of the key renews the token",
    "c": "one login, a renewal right after it, and then one renewal every ten minutes or so (two thirds of the "
         "token's 15-minute period); the new wrapped secret ID is still unopened",
    "d": "two logins: one at the start, and one right after the key rotation, with the new secret ID: a new key "
         "version needs a new token",
}
_LIFECYCLE_WHY = {
    "a": "The agent logs in once and reuses its token for every read: a login per render would spend a single-use "
         "secret ID every second, and the agent was handed one.",
    "b": "Reading a secret does not renew the token: the agent renews on a timer of its own, at about two thirds "
         "of the token's lease (here its 15-minute period), whatever the template does.",
    "c": "Right: one AppRole login, then renewals only. The token is periodic: each renewal grants another "
         "15-minute period, with no maximum lifetime, so the agent never needs its secret ID again while it runs; "
         "the new wrapped secret ID waits for its next login (a restart, or a token it could not renew).",
    "d": "A new key version is new data, not a new identity: the token's policy reads the secret's latest version, "
         "so the same token reads the rotated key; nothing makes the agent log in again.",
}


@exercise(lab="09", name="token-lifecycle", title="The agent's token: renewed, or logged in again?",
          hint=("Ask what the agent needs a login for, and what it needs a renewal for: which of the two does "
                "reading a secret require?",
                "A periodic token lives one period after each renewal, with no maximum lifetime; the agent renews "
                "at about two thirds of the lease."))
def check_token_lifecycle(prediction):
    """``prediction``: the letter of :data:`LIFECYCLE_OPTIONS` the learner predicts before reading the agent's log."""
    expect_answered(prediction, "lifecycle")
    return choose(prediction, LIFECYCLE_OPTIONS, correct="c", why=_LIFECYCLE_WHY)


# -- 5. scale-out -------------------------------------------------------------------------------------------------

def cores(quantity) -> float:
    """A Kubernetes CPU quantity (``"500m"``, ``"1"``, ``0.5``) in cores."""
    text = str(quantity).strip()
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _cpu_metric(hpa: dict) -> dict:
    for metric in hpa["spec"]["metrics"]:
        kind = metric["type"]
        source = metric.get("resource") if kind == "Resource" else metric.get("containerResource")
        if kind in ("Resource", "ContainerResource") and source and source["name"] == "cpu":
            return {"type": kind, **source}
    raise ValueError("the HPA has no CPU utilisation metric")


def pod_cpu_request(deployment: dict, hpa: dict) -> float:
    """The CPU request (cores) that the HPA's CPU utilisation is measured against, for one pod.

    A ``Resource`` metric: every container of the pod, including the Vault Agent sidecar the injector adds when
    ``vault.hashicorp.com/agent-inject`` is ``"true"`` (its request from ``agent-requests-cpu``, else the
    injector's default). A ``ContainerResource`` metric: the named container only. Init containers do not count.
    """
    template = deployment["spec"]["template"]
    containers = template["spec"]["containers"]
    metric = _cpu_metric(hpa)
    if metric["type"] == "ContainerResource":
        container = next(c for c in containers if c["name"] == metric["container"])
        return cores(container["resources"]["requests"]["cpu"])
    total = sum(cores(c["resources"]["requests"]["cpu"]) for c in containers)
    notes = template["metadata"].get("annotations", {})
    if str(notes.get("vault.hashicorp.com/agent-inject", "")).lower() == "true":
        total += cores(notes.get("vault.hashicorp.com/agent-requests-cpu", INJECTOR_DEFAULT_CPU_REQUEST))
    return total


def replicas_at_peak(peak_rps: float, per_replica_rps: float, deployment: dict, hpa: dict) -> int:
    """Where the HPA settles at ``peak_rps`` when one pod at its CPU limit serves ``per_replica_rps``.

    CPU needed in all = ``peak_rps / per_replica_rps`` x the server's CPU limit (cores); each pod at the target
    uses ``target x pod_cpu_request``; round up, never below ``minReplicas`` (``maxReplicas`` caps what the HPA
    may do, not what the peak needs).
    """
    server = deployment["spec"]["template"]["spec"]["containers"][0]
    needed = peak_rps / per_replica_rps * cores(server["resources"]["limits"]["cpu"])
    target = _cpu_metric(hpa)["target"]["averageUtilization"] / 100
    return max(math.ceil(needed / (target * pod_cpu_request(deployment, hpa)) - 1e-9), hpa["spec"].get("minReplicas", 1))


_REPLICAS_HINT = ("The autoscaler's utilisation is CPU used divided by CPU *requested*, not by one core; find "
                  "every container's request that the manifest's metric counts.",
                  "Add the pod's requests in cores (`cores()` reads `\"500m\"`); then CPU needed at the peak, divided "
                  "by what one pod may use at the target, rounded up.")


@exercise(lab="09", name="replicas", title="How many replicas for the peak?", hint=_REPLICAS_HINT)
def check_replicas(request_cores, replicas, peak_rps: float, per_replica_rps: float, hpa: dict, deployment: dict):
    """``request_cores``: the pod's CPU request (cores) the HPA measures against; ``replicas``: the pods it settles
    on at ``peak_rps`` when one pod at full CPU serves ``per_replica_rps`` (manifests as parsed from deploy/k8s)."""
    expect_answered(request_cores, "pod_request")
    metric = _cpu_metric(hpa)
    truth = pod_cpu_request(deployment, hpa)
    server = cores(deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"])
    try:
        number = float(request_cores)
    except (TypeError, ValueError):
        fail(f"`pod_request` should be a number of cores, not {request_cores!r}.", hint=_REPLICAS_HINT)
    if math.isclose(number, truth * 1000, rel_tol=1e-6):
        fail("`pod_request` is in millicores; give it in cores (500m is 0.5).", hint="Divide by 1000.")
    if math.isclose(number, 1.0) and not math.isclose(truth, 1.0):
        fail("The HPA does not measure utilisation against one core: it divides the CPU used by the CPU "
             "*requested*.", hint=_REPLICAS_HINT)
    if metric["type"] == "Resource" and math.isclose(number, server) and not math.isclose(truth, server):
        fail("That is the server container's request only; this HPA's metric is of `type: Resource`, which "
             "averages over every container of the pod, the Vault Agent sidecar included.",
             hint=("The injector adds the sidecar; its request is in the pod's annotations.",
                   "Look for `vault.hashicorp.com/agent-requests-cpu`."))
    expect_close(number, truth, 1e-6, f"`pod_request` is {number:g} cores; the pod requests {truth:g}.",
                 hint=_REPLICAS_HINT)
    expect_answered(replicas, "replicas")
    expect(isinstance(replicas, (int, np.integer)) and not isinstance(replicas, bool),
           f"`replicas` should be a whole number of pods, not {replicas!r}.",
           hint="Half a pod does not exist: round up, and rounding down leaves the peak unserved.")
    expected = replicas_at_peak(peak_rps, per_replica_rps, deployment, hpa)
    expect(expected > hpa["spec"].get("minReplicas", 1),
           f"At {peak_rps:g} req/s the peak is below one pod's share: this case cannot test the method (every way "
           f"of counting gives minReplicas, {hpa['spec'].get('minReplicas', 1)}).",
           hint="Keep the lab's `PEAK_RPS`, a few times what one pod serves.")
    target = metric["target"]["averageUtilization"] / 100
    needed = peak_rps / per_replica_rps
    one_core = max(math.ceil(needed / target - 1e-9), hpa["spec"].get("minReplicas", 1))
    if replicas == one_core and replicas != expected:
        fail(f"{replicas} pods would be right if utilisation were measured against one core; the HPA measures it "
             f"against the pod's request ({truth:g} cores).", hint=_REPLICAS_HINT)
    if replicas == math.ceil(needed - 1e-9) and replicas != expected:
        fail("That many pods would all run at their CPU limit at the peak; the autoscaler aims at its target "
             "utilisation.", hint="Each pod may use only `target x request` cores before the HPA adds another.")
    if replicas == expected - 1:
        fail("One pod short: rounding down leaves part of the peak unserved.", hint="Round up.")
    expect(replicas == expected, f"{replicas} pods is not what the autoscaler would settle on.", hint=_REPLICAS_HINT)
    return "well done: that is where the HPA settles at the peak (compare it with its maxReplicas)."


# -- 6. the industry's serving platforms ---------------------------------------------------------------------------

LAYERS = ("course", "kserve", "seldon")
# capability -> (the layers that give it without code of one's own, why for each layer that is put in or left out)
CAPABILITIES = {
    "an explanation in the same response": ({"course"}, {
        "course": "the course's server returns the `explanation` output (TreeSHAP) in the same answer (lab 07).",
        "kserve": "KServe runs an explainer as a separate component: another call (`:explain`), not an output "
                  "of the same response.",
        "seldon": "Seldon Core v2 serves an explainer (Alibi Explain) as another model: another call, not an "
                  "output of the same response."}),
    "checks the artifact before loading": ({"course"}, {
        "course": "the course's server verifies the manifest's sha256s and loads only the reviewed skops types "
                  "(lab 07).",
        "kserve": "a `storageUri` is copied into the pod, not verified: KServe's scikit-learn runtime calls "
                  "`joblib.load` on whatever it finds there.",
        "seldon": "a `storageUri` is copied, not verified: Seldon's MLServer calls `joblib.load` on whatever it "
                  "finds there."}),
    "asks every caller for a key": ({"course"}, {
        "course": "the course's server refuses every call without the key Vault Agent renders.",
        "kserve": "KServe's predictor asks for no key: authentication belongs to the gateway or mesh in front.",
        "seldon": "Seldon's servers ask for no key: authentication belongs to the gateway or mesh in front."}),
    "splits traffic for a canary": ({"kserve", "seldon"}, {
        "course": "the course's Deployment only does a rolling update (pods replaced one by one, all traffic "
                  "moves with them); section 4's canary was code in this notebook, not the manifests.",
        "kserve": "KServe's `canaryTrafficPercent` splits traffic between the last ready revision and the new one.",
        "seldon": "Seldon Core v2's `Experiment` resource splits traffic between two models."}),
    "pulls the model from a storage URI": ({"kserve", "seldon"}, {
        "course": "the course's image carries its model, trained into it at build time (lab 08): nothing is "
                  "pulled when a pod starts.",
        "kserve": "that is what `storageUri` is for: KServe's storage initializer pulls the model before the "
                  "server starts.",
        "seldon": "that is what `storageUri` is for: Seldon's agent pulls the model into the server that loads it."}),
}
_LAYERS_HINT = ("For each capability, ask which manifest or server would do it if you wrote no code: read the "
                "three manifests' fields, and remember what lab 07's server did in the same answer.",
                "A `storageUri` says where a model is copied from, not that it is checked; a traffic split needs "
                "two versions live at once, which a rolling update never has for long.")


@exercise(lab="09", name="serving-layers", title="Which layer does what?", hint=_LAYERS_HINT)
def check_serving_layers(answer):
    """``answer``: ``{capability: set of layers}`` for every key of :data:`CAPABILITIES`, layers from
    :data:`LAYERS`."""
    expect_answered(answer, "answer")
    expect(isinstance(answer, dict), f"`answer` should be a dict of sets (one per capability), not "
                                     f"{type(answer).__name__}.", hint="Keep the keys the stub gives; fill each value.")
    missing, extra = sorted(set(CAPABILITIES) - set(answer)), sorted(set(answer) - set(CAPABILITIES))
    expect(not missing and not extra, f"`answer` should have exactly the stub's keys: missing {missing}, "
                                      f"unexpected {extra}.", hint="Keep the keys the stub gives; fill each value.")
    reasons = []
    for capability, (truth, why) in CAPABILITIES.items():
        given = answer[capability]
        expect_answered(given, f"answer[{capability!r}]")
        if isinstance(given, str):
            given = {given}
        expect(isinstance(given, (set, frozenset, list, tuple)),
               f"`answer[{capability!r}]` should be a set of layers, not {type(given).__name__}.",
               hint=f"For example `{{\"kserve\"}}`, or `set()` if no layer does it; layers: {', '.join(LAYERS)}.")
        given = {str(layer).strip().lower() for layer in given}
        unknown = sorted(given - set(LAYERS))
        expect(not unknown, f"{unknown} under {capability!r} is not one of the layers {list(LAYERS)}.",
               hint="Name the layers as the stub does.")
        reasons += [f"**{capability}**: {why[layer]}" for layer in sorted(given ^ truth)]
    expect(not reasons, "not quite:\n\n" + "\n\n".join(f"- {reason}" for reason in reasons), hint=_LAYERS_HINT)
    return ("right: the platforms give you placement, pulling and traffic splits on every model; the key, the "
            "explanation and the trust in the file stay yours.")
