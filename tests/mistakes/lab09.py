"""Lab 09's catalogue of realistic mistakes (see tests/mistakes/__init__.py for the format)."""

from mistakes import Mistake

_RIGHT_RATES = '''span = after.time - before.time
earlier = dict(before.buckets(LATENCY, endpoint="infer"))
bucket_rates = [(le, (count - earlier.get(le, 0.0)) / span) for le, count in after.buckets(LATENCY, endpoint="infer")]
'''

_PSI_BINS = '''edges = np.quantile(reference, np.linspace(0, 1, 11))
edges[0], edges[-1] = -np.inf, np.inf
'''

_NEW_KEY = '''kv.create_or_update_secret(path=setup.service_path, secret={setup.api_key_field: secrets.token_urlsafe(32)},
                           cas=version_before, mount_point=setup.mount)
'''

_LAYERS = '''answer = {"an explanation in the same response": {"course"}, "checks the artifact before loading": {"course"},
          "asks every caller for a key": {"course"}, "splits traffic for a canary": {"kserve", "seldon"},
          "pulls the model from a storage URI": {"kserve", "seldon"}}'''

MISTAKES = [
    # -- Exercise 1: quantiles from rates ----------------------------------------------------------------------
    Mistake("latency-quantiles", "increases between the scrapes, not rates per second",
            '''earlier = dict(before.buckets(LATENCY, endpoint="infer"))
bucket_rates = [(le, count - earlier.get(le, 0.0)) for le, count in after.buckets(LATENCY, endpoint="infer")]
quantiles = {q: monitoring.histogram_quantile(q / 100, bucket_rates) * 1000 for q in (50, 95, 99)}''',
            says=("increases", "per second"), to_the_end=True),
    Mistake("latency-quantiles", "every request since the server started, not the window",
            '''span = after.time - before.time
bucket_rates = [(le, count / span) for le, count in after.buckets(LATENCY, endpoint="infer")]
quantiles = {q: monitoring.histogram_quantile(q / 100, bucket_rates) * 1000 for q in (50, 95, 99)}''',
            says=("since the server started",)),
    Mistake("latency-quantiles", "quantiles left in seconds",
            _RIGHT_RATES + "quantiles = {q: monitoring.histogram_quantile(q / 100, bucket_rates) for q in (50, 95, 99)}",
            says=("milliseconds",)),
    Mistake("latency-quantiles", "the caller's percentiles instead of the server's histogram",
            _RIGHT_RATES + "quantiles = {q: load.percentile(q) for q in (50, 95, 99)}",
            says=("differ", "histogram")),
    # -- Exercise 2: the PSI -------------------------------------------------------------------------------------
    Mistake("psi", "raw counts instead of shares",
            _PSI_BINS + '''expected = np.clip(np.histogram(reference, edges)[0], 1, None).astype(float)
actual = np.clip(np.histogram(live, edges)[0], 1, None).astype(float)
return float(np.sum((actual - expected) * np.log(actual / expected)))''',
            says=("shares",), to_the_end=True),
    Mistake("psi", "no floor for empty bins",
            _PSI_BINS + '''expected = np.histogram(reference, edges)[0] / len(reference)
actual = np.histogram(live, edges)[0] / len(live)
with np.errstate(divide="ignore", invalid="ignore"):
    return float(np.sum((actual - expected) * np.log(actual / expected)))''',
            says=("empty",)),
    Mistake("psi", "the logarithm turned round",
            _PSI_BINS + '''expected = np.clip(np.histogram(reference, edges)[0] / len(reference), 1e-4, None)
actual = np.clip(np.histogram(live, edges)[0] / len(live), 1e-4, None)
return float(np.sum((actual - expected) * np.log(expected / actual)))''',
            says=("never negative",)),
    Mistake("psi", "the sum computed but not returned",
            _PSI_BINS + '''expected = np.clip(np.histogram(reference, edges)[0] / len(reference), 1e-4, None)
actual = np.clip(np.histogram(live, edges)[0] / len(live), 1e-4, None)
value = float(np.sum((actual - expected) * np.log(actual / expected)))''',
            says=("return",)),
    Mistake("psi", "closed outer bins: the reference's minimum and maximum as edges",
            '''edges = np.quantile(reference, np.linspace(0, 1, 11))
expected = np.clip(np.histogram(reference, edges)[0] / len(reference), 1e-4, None)
actual = np.clip(np.histogram(live, edges)[0] / len(live), 1e-4, None)
return float(np.sum((actual - expected) * np.log(actual / expected)))''',
            says=("beyond the reference's range", "-inf and +inf")),
    # -- Exercise 3: predict the monitor's verdict ---------------------------------------------------------------
    Mistake("drift-prediction", "predicted that every feature drifts", 'prediction = "a"',
            says=("nine features",), to_the_end=True),
    Mistake("drift-prediction", "predicted no drift, since the applicants are the same", 'prediction = "c"',
            says=("recording",)),
    Mistake("drift-prediction", "predicted that only income drifts", 'prediction = "d"', says=("deciles",)),
    # -- Exercise 4: fix the contract, or retrain? ---------------------------------------------------------------
    Mistake("contract-or-retrain", "retrain on the new partner and serve it to everyone", 'answer = "a"',
            says=("old partners",), to_the_end=True),
    Mistake("contract-or-retrain", "raise the alert threshold", 'answer = "c"', says=("Silencing",)),
    Mistake("contract-or-retrain", "lower the decision threshold", 'answer = "d"', says=("threshold",)),
    # -- Exercise 5: the canary's decision -------------------------------------------------------------------
    Mistake("canary-decision", "promoted on the point estimate inside the margin", 'decision = "d"',
            says=("one draw of the traffic's luck", "+0.047"), to_the_end=True),
    Mistake("canary-decision", "rolled back because harm cannot be ruled out", 'decision = "e"',
            says=("needs evidence of harm", "-0.015")),
    Mistake("canary-decision", "read the interval as wholly below the margin", 'decision = "a"',
            says=("does not show the canary within it",)),
    Mistake("canary-decision", "read the interval as wholly above the margin", 'decision = "b"',
            says=("No interval lies wholly above the margin",)),
    # -- Exercise 6: the swap under load -------------------------------------------------------------------------
    Mistake("rollout", "load request without the API key",
            'swap = httpx.post(f"{model_server.url}/v2/repository/models/credit/load", timeout=60)',
            says=("401", "API key"), to_the_end=True),
    Mistake("rollout", "the inference path instead of the repository's",
            'swap = httpx.post(f"{model_server.url}/v2/models/credit/load", headers=headers(), timeout=60)',
            says=("404", "repository")),
    Mistake("rollout", "the URL kept instead of the server's answer",
            'swap = f"{model_server.url}/v2/repository/models/credit/load"',
            says=("HTTP response",)),
    # -- Exercise 7: rotation under load -------------------------------------------------------------------------
    Mistake("rotation", "key rotated, no new secret ID handed over", _NEW_KEY,
            says=("secret ID was not rotated",), to_the_end=True),
    Mistake("rotation", "new wrapped secret ID not written to the agent's directory",
            _NEW_KEY + 'wrapping_token = orchestrator.auth.approle.generate_secret_id(setup.role, wrap_ttl="300s")'
                       '["wrap_info"]["token"]',
            says=("not in the agent's directory",)),
    Mistake("rotation", "the wrapped secret ID written world-readable",
            _NEW_KEY + '''wrapping_token = orchestrator.auth.approle.generate_secret_id(setup.role, wrap_ttl="300s")["wrap_info"]["token"]
(AGENT_DIR / agent.SECRET_ID_FILE).write_text(wrapping_token)''',
            says=("readable by others", "0600")),  # before any write_private: a new file
    Mistake("rotation", "the secret ID in the clear, from the root token",
            _NEW_KEY + '''wrapping_token = client.auth.approle.generate_secret_id(setup.role)["data"]["secret_id"]
write_private(AGENT_DIR / agent.SECRET_ID_FILE, wrapping_token)''',
            says=("secret ID itself", "root token")),
    Mistake("rotation", "a wrapped secret ID, but from the root token",
            _NEW_KEY + '''wrapping_token = client.auth.approle.generate_secret_id(setup.role, wrap_ttl="300s")["wrap_info"]["token"]
write_private(AGENT_DIR / agent.SECRET_ID_FILE, wrapping_token)''',
            says=("root token, not the orchestrator's",)),
    Mistake("rotation", "wrapped for a day, so that any later restart finds it",
            _NEW_KEY + '''wrapping_token = client.auth.approle.generate_secret_id(setup.role, wrap_ttl="24h")["wrap_info"]["token"]
write_private(AGENT_DIR / agent.SECRET_ID_FILE, wrapping_token)''',
            says=("lives 86400 s", "300 s or less")),
    Mistake("rotation", "new key written to another path",
            '''kv.create_or_update_secret(path="glassbox/api-key", secret={setup.api_key_field: secrets.token_urlsafe(32)},
                           mount_point=setup.mount)
wrapping_token = orchestrator.auth.approle.generate_secret_id(setup.role, wrap_ttl="300s")["wrap_info"]["token"]
write_private(AGENT_DIR / agent.SECRET_ID_FILE, wrapping_token)''',
            says=("not rotated",)),
    # -- Exercise 8: the agent's token -----------------------------------------------------------------------------
    Mistake("token-lifecycle", "a login for every read of the key", 'lifecycle = "a"',
            says=("reuses its token",), to_the_end=True),
    Mistake("token-lifecycle", "a renewal for every read of the key", 'lifecycle = "b"',
            says=("does not renew",)),
    Mistake("token-lifecycle", "a new login for a new key version", 'lifecycle = "d"',
            says=("not a new identity",)),
    # -- Exercise 9: the autoscaler ------------------------------------------------------------------------------
    Mistake("replicas", "utilisation measured against one core",
            '''pod_request = 1.0
target = metric["resource"]["target"]["averageUtilization"] / 100
replicas = max(math.ceil(PEAK_RPS / (per_replica_rps * target)), hpa["spec"]["minReplicas"])''',
            says=("one core",), to_the_end=True),
    Mistake("replicas", "the server's request without the Vault Agent sidecar",
            '''pod_request = cores(container["resources"]["requests"]["cpu"])
target = metric["resource"]["target"]["averageUtilization"] / 100
replicas = max(math.ceil(PEAK_RPS / per_replica_rps / (target * pod_request)), hpa["spec"]["minReplicas"])''',
            says=("sidecar",)),
    Mistake("replicas", "the request in millicores",
            '''pod_request = 500 + 50
replicas = 5''',
            says=("millicores",)),
    Mistake("replicas", "a fraction of a pod",
            '''pod_request = cores(container["resources"]["requests"]["cpu"]) + cores(notes["vault.hashicorp.com/agent-requests-cpu"])
target = metric["resource"]["target"]["averageUtilization"] / 100
replicas = PEAK_RPS / per_replica_rps / (target * pod_request)''',
            says=("whole number",)),
    # -- Exercise 10: which layer does what -------------------------------------------------------------------
    Mistake("serving-layers", "a storage URI taken for a verified artifact",
            _LAYERS.replace('"checks the artifact before loading": {"course"}',
                            '"checks the artifact before loading": {"course", "kserve", "seldon"}'),
            says=("copied", "not verified"), to_the_end=True),
    Mistake("serving-layers", "the rolling update taken for a canary's traffic split",
            _LAYERS.replace('"splits traffic for a canary": {"kserve", "seldon"}',
                            '"splits traffic for a canary": {"course", "kserve", "seldon"}'),
            says=("rolling update",)),
    Mistake("serving-layers", "the platforms believed to add explanations to the answer",
            _LAYERS.replace('"an explanation in the same response": {"course"}',
                            '"an explanation in the same response": {"course", "kserve", "seldon"}'),
            says=("another call",)),
    Mistake("serving-layers", "the platforms believed to ask for a key",
            _LAYERS.replace('"asks every caller for a key": {"course"}',
                            '"asks every caller for a key": {"course", "kserve"}'),
            says=("gateway or mesh",)),
]
