"""glassbox.monitoring: the load generator against a real HTTP server (bounded, loopback only, counting what
failed, picking up a rotated key), Prometheus scraping and quantiles, and drift detection that alerts on the
features that moved and stays quiet on the ones that did not."""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import pick_free_port, write_atomically
from glassbox import monitoring
from glassbox.data import load_credit

# -- a small real server (run as a separate process: python tests/test_monitoring.py PORT KEYFILE) --------

def _serve(port: int, keyfile: str) -> None:
    import uvicorn
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    registry = CollectorRegistry()
    latency = Histogram("demo_request_duration_seconds", "latency", ["endpoint"], registry=registry,
                        buckets=(0.001, 0.002, 0.005, 0.01, 0.05))
    failures = Counter("demo_request_failures", "failures", registry=registry)

    async def infer(request):
        started = time.perf_counter()
        body = json.loads(await request.body())
        keys = Path(keyfile).read_text().split()
        if request.headers.get("authorization", "")[len("Bearer "):] not in keys:
            failures.inc()
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        latency.labels("infer").observe(time.perf_counter() - started)
        return JSONResponse({"outputs": [{"name": "n", "shape": [1], "datatype": "INT64",
                                          "data": [body["inputs"][0]["shape"][0]]}]})

    async def broken(request):
        failures.inc()
        return JSONResponse({"error": "no"}, status_code=500)

    async def metrics(request):
        return Response(generate_latest(registry), media_type="text/plain")

    app = Starlette(routes=[Route("/infer", infer, methods=["POST"]), Route("/broken", broken, methods=["POST"]),
                            Route("/metrics", metrics)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    keyfile = tmp_path_factory.mktemp("monitoring") / "keys"
    write_atomically(keyfile, "first-key\n")
    port = pick_free_port()
    process = subprocess.Popen([sys.executable, __file__, str(port), str(keyfile)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/metrics", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("the test server did not start")
    yield url, keyfile
    process.terminate()
    process.wait(10)


BODY = monitoring.v2_request(np.arange(12.0).reshape(1, 12))


# -- requests ----------------------------------------------------------------------------------------------

def test_v2_request_is_the_protocols_json_form():
    rows = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.5]})
    request = json.loads(monitoring.v2_request(rows, outputs=["predict_proba"]))
    assert request["inputs"] == [{"name": "input-0", "shape": [2, 2], "datatype": "FP64",
                                  "data": [1.0, 3.0, 2.0, 4.5]}]
    assert request["outputs"] == [{"name": "predict_proba"}]


def test_load_sends_exactly_the_requests_asked_for_and_measures_each(server):
    url, keyfile = server
    write_atomically(keyfile, "first-key\n")
    result = monitoring.run_load(url + "/infer", [BODY], concurrency=4, requests=300, api_key="first-key")
    assert result.requests == 300 and result.ok == 300 and result.failed == 0
    assert result.statuses == {200: 300}
    assert np.all(result.latency > 0) and np.all(np.diff(result.started) >= 0)
    assert 0 < result.percentile(50) <= result.percentile(99) < 1000
    assert result.throughput > 50
    timeline = result.timeline(0.1)
    assert timeline["throughput"].sum() * 0.1 == pytest.approx(300)
    assert (timeline["error_rate"] == 0).all()


def test_load_stops_at_its_duration(server):
    url, _ = server
    started = time.perf_counter()
    result = monitoring.run_load(url + "/infer", BODY, concurrency=2, duration=0.5, api_key="first-key")
    assert 0.5 <= time.perf_counter() - started < 3
    assert result.requests > 10 and result.failed == 0


def test_failures_are_counted_not_hidden(server, free_port):
    url, _ = server
    result = monitoring.run_load(url + "/broken", BODY, concurrency=2, requests=20)
    assert result.failed == 20 and result.statuses == {500: 20}
    wrong_key = monitoring.run_load(url + "/infer", BODY, concurrency=2, requests=20, api_key="not-the-key")
    assert wrong_key.statuses == {401: 20}
    nobody_there = monitoring.run_load(f"http://127.0.0.1:{free_port}/infer", BODY, concurrency=2, requests=10)
    assert nobody_there.failed == 10 and nobody_there.statuses == {0: 10}
    assert nobody_there.errors and "refused" in nobody_there.errors[0].lower()


@pytest.mark.parametrize("url", ["http://10.1.2.3:8080/infer", "http://192.168.0.1/x", "https://10.1.2.3/x",
                                 "ftp://127.0.0.1/x"])
def test_load_only_goes_to_this_machine(url):
    with pytest.raises(ValueError):
        monitoring.run_load(url, BODY, requests=1)


@pytest.mark.parametrize("bounds", [{}, {"requests": 0}, {"requests": monitoring.MAX_REQUESTS + 1},
                                    {"duration": 0}, {"duration": monitoring.MAX_DURATION + 1},
                                    {"requests": 5, "concurrency": 1000}])
def test_load_is_always_bounded(bounds):
    with pytest.raises(ValueError):
        monitoring.run_load("http://127.0.0.1:9/x", BODY, **bounds)


def test_a_caller_that_picks_up_the_rotated_key_sees_no_failure(server):
    """The server switches keys mid-run; a fixed-key caller starts failing, a KeyCaller never does — whether
    it learns the new key before the server does (the server still on the old key) or after."""
    url, keyfile = server
    write_atomically(keyfile, "key-1\n")
    vault = {"key": "key-1"}                                   # what the caller reads (its "Vault")
    caller = monitoring.KeyCaller(lambda: vault["key"], min_interval=0)
    assert "key-1" not in repr(caller)
    with monitoring.BackgroundLoad(url + "/infer", [BODY], concurrency=4, duration=1.5, api_key=caller) as load, \
            monitoring.BackgroundLoad(url + "/infer", [BODY], concurrency=1, duration=1.5, api_key="key-1") as fixed:
        time.sleep(0.4)
        vault["key"] = "key-2"          # rotated in "Vault"; the server does not know it yet
        time.sleep(0.4)
        write_atomically(keyfile, "key-2\n")   # the server picks it up
    result = load.result
    assert result.failed == 0, result.statuses
    assert caller.refreshes == 1 and caller.keys == ["key-2", "key-1"]
    assert result.retried >= 1 and result.requests > 100
    assert fixed.result.statuses.get(401, 0) > 0      # a caller that never re-reads is locked out


def test_background_load_can_be_stopped_early(server):
    url, _ = server
    load = monitoring.BackgroundLoad(url + "/infer", [BODY], duration=30, api_key="first-key").start()
    time.sleep(0.3)
    started = time.perf_counter()
    result = load.stop()
    assert time.perf_counter() - started < 2 and result.requests > 0


# -- metrics -------------------------------------------------------------------------------------------------

def test_histogram_quantile_interpolates_like_prometheus():
    buckets = [(0.1, 10.0), (0.2, 60.0), (0.5, 100.0), (float("inf"), 100.0)]
    assert monitoring.histogram_quantile(0.05, buckets) == pytest.approx(0.05)
    assert monitoring.histogram_quantile(0.5, buckets) == pytest.approx(0.1 + 0.1 * 40 / 50)
    assert monitoring.histogram_quantile(0.99, buckets) == pytest.approx(0.2 + 0.3 * 39 / 40)
    assert monitoring.histogram_quantile(0.99, [(0.1, 0.0), (float("inf"), 5.0)]) == 0.1  # in +Inf
    assert np.isnan(monitoring.histogram_quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]))


def test_bucket_rates_are_promql_sum_by_le_of_rate_between_two_scrapes():
    """sum by (le) (rate(h_bucket[1m])) from two scrapes a minute apart, two pods, worked by hand."""
    def scrape(at, per_pod):
        samples = {}
        for pod, counts in per_pod.items():
            for bound, count in zip(("0.1", "0.5", "+Inf"), counts):
                samples[("h_bucket", frozenset({("pod", pod), ("le", bound)}))] = count
        return monitoring.Metrics(at, samples)

    before = scrape(0.0, {"a": [10, 20, 20], "b": [0, 5, 10]})
    after = scrape(60.0, {"a": [70, 140, 140], "b": [60, 125, 190]})
    # increases a: 60, 120, 120; b: 60, 120, 180 -> summed 120, 240, 300 -> per second 2, 4, 5
    rates = monitoring.bucket_rates(before, after, "h")
    assert [b for b, _ in rates] == [0.1, 0.5, float("inf")]
    assert [r for _, r in rates] == pytest.approx([2.0, 4.0, 5.0])
    # p50: rank 2.5 in (0.1, 0.5]: 0.1 + 0.4 * 0.5 / 2 = 0.2; p99: rank 4.95 in +Inf: the highest finite bound
    assert monitoring.histogram_quantile(0.5, rates) == pytest.approx(0.2)
    assert monitoring.histogram_quantile(0.99, rates) == 0.5
    assert [r for _, r in monitoring.bucket_rates(before, after, "h", pod="a")] == pytest.approx([1.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="after"):
        monitoring.bucket_rates(after, before, "h")


def test_scraping_sees_the_requests_the_load_made(server):
    url, keyfile = server
    write_atomically(keyfile, "first-key\n")
    before = monitoring.scrape(url + "/metrics")
    with monitoring.Scraper(url + "/metrics", interval=0.2) as scraper:
        result = monitoring.run_load(url + "/infer", BODY, concurrency=2, requests=400, api_key="first-key")
        monitoring.run_load(url + "/infer", BODY, concurrency=1, requests=7, api_key="wrong")
    after = scraper.snapshots[-1]
    name = "demo_request_duration_seconds"
    assert after.value(name + "_count", endpoint="infer") - before.value(name + "_count") == 400
    assert after.value("demo_request_failures_total") - before.value("demo_request_failures_total") == 7
    assert after.labels(name + "_count", "endpoint") == ["infer"]
    assert after.buckets(name)[-1] == (float("inf"), after.value(name + "_count"))
    rates = scraper.rates(name, errors=lambda m: m.value("demo_request_failures_total"))
    spans = np.diff(np.concatenate([[0.0], rates["time"].to_numpy()]))
    # the rates add up to what the scrapes saw between the first and the last (the first may come after the
    # load began, on a busy machine)
    seen = after.value(name + "_count", endpoint="infer") - scraper.snapshots[0].value(name + "_count", endpoint="infer")
    assert seen > 0 and (rates["throughput"] * spans).sum() == pytest.approx(seen, rel=0.02)   # times in ms
    assert (rates[["p50", "p95", "p99"]].dropna() <= 50).all().all()   # ms, within the histogram's range
    assert result.failed == 0 and scraper.errors == 0


def test_scraping_is_loopback_only():
    with pytest.raises(ValueError):
        monitoring.scrape("http://10.0.0.1:9090/metrics")


# -- drift ----------------------------------------------------------------------------------------------------

def test_psi_is_zero_without_shift_and_grows_with_it():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=20_000)
    assert monitoring.psi(reference, rng.normal(size=5000)) < 0.01
    small, large = (monitoring.psi(reference, rng.normal(loc, size=5000)) for loc in (0.2, 1.0))
    assert 0.02 < small < 0.1 < 0.25 < large
    # a discrete feature: bins are its values
    coins = rng.integers(0, 2, 10_000)
    assert monitoring.psi(coins, rng.integers(0, 2, 2000)) < 0.01
    assert monitoring.psi(coins, (rng.random(2000) < 0.8).astype(int)) > 0.25


def test_ks_detects_a_shift_in_scale():
    rng = np.random.default_rng(1)
    statistic, pvalue = monitoring.ks(rng.normal(size=5000), rng.normal(scale=1.5, size=500))
    assert statistic > 0.05 and pvalue < 1e-3
    assert monitoring.ks(rng.normal(size=5000), rng.normal(size=500))[1] > 0.01


def _shifted(frame):
    """A downturn: incomes 30 % lower, debt-to-income up; nothing else moves."""
    frame = frame.copy()
    frame["income"] = frame["income"] * 0.7
    frame["debt_to_income"] = np.clip(frame["debt_to_income"] + 0.15, 0, 1)
    return frame


@pytest.mark.parametrize("method", ["psi", "ks"])
def test_drift_monitor_alerts_on_the_features_that_moved_and_only_then(method):
    reference = load_credit(4000, seed=0).X
    live = load_credit(1200, seed=1).X
    traffic = pd.concat([live.iloc[:600], _shifted(live.iloc[600:])], ignore_index=True)
    seen = []
    monitor = monitoring.DriftMonitor(reference, window=300, step=50, method=method, on_alert=seen.append)
    raised = []
    for start in range(0, len(traffic), 37):          # batches that do not line up with the step
        raised += monitor.update(traffic.iloc[start:start + 37])
    assert raised == seen == monitor.alerts
    assert len(raised) >= 1
    first = raised[0]
    assert 600 < first.position <= 900                 # after the shift began, before a full window of it
    assert {f for a in raised for f in a.features} == {"income", "debt_to_income"}
    assert monitor.drifted == {"income", "debt_to_income"}
    assert all(a.position > 600 for a in raised)      # no false alarm on the first 600 rows
    # each feature alerts once while it stays drifted
    alerted = [f for a in raised for f in a.features]
    assert sorted(alerted) == ["debt_to_income", "income"]
    history = monitor.history
    assert set(history["position"]) == set(range(300, 1201, 50))
    assert monitor.scores()["feature"].iloc[0] in {"income", "debt_to_income"}
    assert "DRIFT at row" in str(first)


def test_drift_monitor_settles_when_the_traffic_returns():
    reference = load_credit(4000, seed=0).X
    live = load_credit(1500, seed=2).X
    traffic = pd.concat([_shifted(live.iloc[:500]), live.iloc[500:]], ignore_index=True)
    monitor = monitoring.DriftMonitor(reference, window=200, step=50)
    monitor.update(traffic.iloc[:500])
    assert monitor.drifted == {"income", "debt_to_income"}
    monitor.update(traffic.iloc[500:])
    assert monitor.drifted == set()
    assert len(monitor.alerts) == 1


def test_drift_monitor_rejects_bad_settings():
    reference = pd.DataFrame({"a": np.arange(100.0)})
    with pytest.raises(ValueError):
        monitoring.DriftMonitor(reference, method="chi2")
    with pytest.raises(ValueError):
        monitoring.DriftMonitor(reference, window=5)


def test_load_runs_from_inside_a_running_event_loop_as_in_a_notebook(server):
    import asyncio
    url, keyfile = server
    write_atomically(keyfile, "first-key\n")

    async def inside():
        return monitoring.run_load(url + "/infer", BODY, concurrency=2, requests=50, api_key="first-key")

    result = asyncio.run(inside())
    assert result.requests == 50 and result.failed == 0


# -- canary ----------------------------------------------------------------------------------------------------

def _live(canary_p_shift=0.0, canary_fails=0, segments=("old", "new"), rows=300, seed=0, batch=10):
    """Labelled traffic in batches of ``batch`` rows, one batch in three to the canary, every canary row scored
    by stable too (``p_stable``); the canary's probabilities moved by ``canary_p_shift``."""
    rng = np.random.default_rng(seed)
    frames = []
    for number, segment in enumerate(segments):
        y = (rng.random(rows) < 0.3).astype(int)
        p = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.1, rows), 0.01, 0.99)   # an informative model
        batches = number * rows // batch + np.arange(rows) // batch
        arm = np.where(batches % 3 == 0, "canary", "stable")
        shifted = np.where(arm == "canary", np.clip(p + canary_p_shift, 0.01, 0.99), p)
        ok = np.ones(rows, bool)
        ok[np.flatnonzero(arm == "canary")[:canary_fails]] = False
        frames.append(pd.DataFrame({"arm": arm, "batch": batches, "segment": segment, "ok": ok, "latency_ms": 5.0,
                                    "y": y, "p": shifted, "p_stable": p}))
    return pd.concat(frames, ignore_index=True)


def _noisier(live, noise, seed=1):
    """The canary's probabilities with logit noise of standard deviation ``noise``: worse, by an amount that
    grows with ``noise`` (about +0.01 in log loss at 0.35, about +0.05 at 0.8)."""
    live = live.copy()
    canary = live["arm"] == "canary"
    logit = np.log(live.loc[canary, "p"] / (1 - live.loc[canary, "p"]))
    noise = np.random.default_rng(seed).normal(0, noise, canary.sum())
    live.loc[canary, "p"] = 1 / (1 + np.exp(-(logit + noise)))
    return live


def _canary(verdict, segment):
    return verdict.table.loc[(segment, "canary")]


def test_canary_promotes_a_candidate_no_worse_than_stable():
    verdict = monitoring.canary_verdict(_live())
    assert verdict.decision == "promote" and verdict.promote and not verdict.reasons
    assert set(verdict.table.index.get_level_values("segment")) == {"old", "new"}
    better = _live()
    canary = better["arm"] == "canary"
    better.loc[canary, "p"] = better.loc[canary, "p"] + 0.3 * (better.loc[canary, "y"] - better.loc[canary, "p"])
    verdict = monitoring.canary_verdict(better)                # closer to the outcomes: clearly better
    assert verdict.decision == "promote"
    assert all(_canary(verdict, segment)["95% high"] < 0 for segment in ("old", "new"))


def test_canary_rolls_back_a_bad_candidate_on_its_live_metrics():
    worse = _live(canary_p_shift=0.3)                          # miscalibrated: far higher log loss
    verdict = monitoring.canary_verdict(worse)
    assert verdict.decision == "roll back" and not verdict.promote
    assert all(_canary(verdict, segment)["95% low"] > 0.1 for segment in ("old", "new"))
    assert any("log loss" in reason and "wholly above the 0.02 margin" in reason for reason in verdict.reasons)
    erring = monitoring.canary_verdict(_live(canary_fails=10))  # 10 of 100 canary requests failed
    assert erring.decision == "roll back" and any("error rate" in reason for reason in erring.reasons)
    slow = _live()
    slow.loc[slow["arm"] == "canary", "latency_ms"] = 500.0
    verdict = monitoring.canary_verdict(slow)
    assert verdict.decision == "roll back" and any("latency" in reason for reason in verdict.reasons)


def test_canary_latency_gate_follows_stable_and_rolls_back_a_twentyfold_slowdown():
    fast = _live()
    fast["latency_ms"] = 1.0                                    # a 1 ms stable server
    assert monitoring.canary_verdict(fast).promote
    slower = fast.copy()
    slower.loc[slower["arm"] == "canary", "latency_ms"] = 20.0  # 20 times slower: rolled back
    verdict = monitoring.canary_verdict(slower)
    assert verdict.decision == "roll back" and any("median latency" in reason for reason in verdict.reasons)
    a_little = fast.copy()
    a_little.loc[a_little["arm"] == "canary", "latency_ms"] = 3.0   # 2 ms more: within the few ms of slack
    assert monitoring.canary_verdict(a_little).promote
    assert str(monitoring.canary_verdict(fast)) == "promote: within the margins everywhere"


def test_canary_shows_the_paired_difference_with_a_batch_bootstrap_interval():
    live = _live()
    canary = (live["arm"] == "canary") & (live["segment"] == "old")
    live.loc[canary, "p"] = np.clip(live.loc[canary, "p"] + 0.05, 0.01, 0.99)   # a little worse on old
    verdict = monitoring.canary_verdict(live)
    row = verdict.table.loc[("old", "canary")]
    assert row["paired diff"] == pytest.approx(row["log loss"] - row["stable, same rows"], abs=1e-6)
    assert row["95% low"] < row["paired diff"] < row["95% high"]
    assert np.isnan(verdict.table.loc[("old", "stable"), "95% low"])
    again = monitoring.canary_verdict(live)
    assert again.table.loc[("old", "canary"), "95% high"] == row["95% high"]   # seeded
    by_row = monitoring.canary_verdict(live.drop(columns="batch")).table.loc[("old", "canary")]   # rows as requests
    assert by_row["paired diff"] == pytest.approx(row["paired diff"], abs=1e-9)
    assert by_row["95% low"] < by_row["paired diff"] < by_row["95% high"]


def test_canary_worse_by_about_the_margin_is_extended_and_more_traffic_decides():
    for noise, then, diff in ((0.35, "promote", 0.01), (0.8, "roll back", 0.05)):
        everything = _noisier(_live(rows=6000), noise)          # the same canary, 200 of its batches per segment
        first = everything[everything.groupby("segment").cumcount() < 240]   # its first 8 batches per segment
        early = monitoring.canary_verdict(first)
        assert early.decision == "extend", (noise, str(early))
        assert any("straddling the 0.02 margin" in reason for reason in early.reasons)
        assert any(_canary(early, s)["95% low"] < 0.02 < _canary(early, s)["95% high"] for s in ("old", "new"))
        later = monitoring.canary_verdict(everything)
        assert later.decision == then, (noise, str(later))
        for segment in ("old", "new"):
            row = _canary(later, segment)
            assert row["paired diff"] == pytest.approx(diff, abs=0.006)
            assert row["95% high"] - row["95% low"] < 0.5 * (_canary(early, segment)["95% high"]
                                                             - _canary(early, segment)["95% low"])


def test_canary_judges_every_segment_not_the_average():
    live = _live()
    old_canary = (live["segment"] == "old") & (live["arm"] == "canary")
    live.loc[old_canary, "p"] = np.clip(live.loc[old_canary, "p"] + 0.4, 0.01, 0.99)   # worse for one segment
    verdict = monitoring.canary_verdict(live)
    assert verdict.decision == "roll back" and verdict.reasons
    assert verdict.reasons == [r for r in verdict.reasons if r.startswith("old")]


def test_canary_with_too_few_rows_is_extended_not_promoted_nor_rolled_back():
    few = monitoring.canary_verdict(_live(rows=60))            # 20 canary rows per segment
    assert few.decision == "extend" and not few.promote
    assert any("too few rows to judge (20 on the canary, 50 needed)" in reason for reason in few.reasons)
    worse = monitoring.canary_verdict(_live(rows=60, canary_p_shift=0.3))   # worse, but on 20 rows: not judged
    assert worse.decision == "extend" and str(worse).startswith("extend: ")
    erring = monitoring.canary_verdict(_live(rows=60, canary_fails=10))     # failing requests are harm outright
    assert erring.decision == "roll back"
    one_arm = _live()
    one_arm = one_arm[~((one_arm["segment"] == "new") & (one_arm["arm"] == "canary"))]
    verdict = monitoring.canary_verdict(one_arm)
    assert verdict.decision == "extend" and verdict.reasons == ["new: one arm saw no traffic"]


def test_canary_without_shadow_scores_compares_the_arms_own_rows_with_an_interval():
    unpaired = _live(rows=3000).drop(columns="p_stable")       # each arm's own rows: more luck, more rows needed
    verdict = monitoring.canary_verdict(unpaired)
    assert verdict.decision == "promote" and "diff" in verdict.table.columns
    row = verdict.table.loc[("old", "canary")]
    stable = verdict.table.loc[("old", "stable")]
    assert row["diff"] == pytest.approx(row["log loss"] - stable["log loss"], abs=1e-9)
    few = monitoring.canary_verdict(_live().drop(columns="p_stable"))   # 100 canary rows: the luck dominates
    assert few.decision == "extend" and any("its own rows" in reason for reason in few.reasons)
    worse = monitoring.canary_verdict(_live(canary_p_shift=0.3).drop(columns="p_stable"))
    assert worse.decision == "roll back" and any("wholly above" in reason for reason in worse.reasons)
    unlabelled = monitoring.canary_verdict(_live().drop(columns=["y", "p", "p_stable"]))   # outcomes not known yet
    assert unlabelled.decision == "promote" and "95% low" not in unlabelled.table.columns
