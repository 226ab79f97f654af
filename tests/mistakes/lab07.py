"""Lab 07's catalogue of realistic mistakes: each replaces the solution block(s) of its exercise's cell."""

from mistakes import Mistake

TREE = '["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]'
REQUEST = '''request_body = {
    "inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                "data": rows.to_numpy().ravel().tolist()}],
    "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
}'''
READ_PROBA = '''outputs = {output["name"]: output for output in response.json()["outputs"]}
proba_http = np.array(outputs["predict_proba"]["data"]).reshape(outputs["predict_proba"]["shape"])'''
BODY = '''body = {"inputs": [{"name": "input-0", "shape": list(applicant.shape), "datatype": "FP64",
                    "data": applicant.to_numpy().ravel().tolist()}],
        "outputs": [{"name": "predict_proba"}, {"name": "explanation"}]}'''
READ_EXPLANATION = '''explanation = {o["name"]: o for o in reply.json()["outputs"]}["explanation"]
base_value = explanation["parameters"]["base_value"]
contributions = pd.Series(explanation["data"], index=explanation["parameters"]["feature_names"])'''

MISTAKES = [
    # -- exercise 1: what trusting everything risks (each wrong option)
    Mistake("trusted-risk", "believed a skops file is harmless whatever it names", 'risk = "a"',
            ("importing what it names",), to_the_end=True),
    Mistake("trusted-risk", "believed skops checks a hash", 'risk = "c"', ("skops knows no hash",)),
    Mistake("trusted-risk", "believed trusting everything only costs time", 'risk = "d"', ("not time",)),

    # -- exercise 2: load with a reviewed trusted list (two blocks: `trusted`, the body of `load_reviewed`)
    Mistake("safe-load", "returned the model in memory instead of loading the file (`return model`)",
            (f"trusted = {TREE}", "return model"), ("is `model` itself", "nothing was loaded"), to_the_end=True),
    Mistake("safe-load", "made a copy with a pickle round trip instead of reading the skops file",
            (f"trusted = {TREE}", "return pickle.loads(pickle.dumps(model))"),
            ("pickle round trip", "not like the model in `model_path`")),
    Mistake("safe-load", "saved `model` to a pickle file and loaded that instead of the skops file",
            (f"trusted = {TREE}",
             "with open(Path(path).with_suffix('.pkl'), 'wb') as file:\n    pickle.dump(model, file)\n"
             "with open(Path(path).with_suffix('.pkl'), 'rb') as file:\n    return pickle.load(file)"),
            ("a pickle round trip", "pickle` plays no part")),
    Mistake("safe-load", "trusted an extra type the file does not need",
            ('trusted = unknown + ["posix.system"]', "return sio.load(path, trusted=trusted)"),
            ("posix.system", "does not need")),
    Mistake("safe-load", "passed `trusted=True`", ("trusted = True", "return sio.load(path, trusted=trusted)"),
            ("CVE-2024-37065", "names you reviewed")),
    Mistake("safe-load", "trusted whatever the file asks for (`trusted = unknown`, read again from each file)",
            ("trusted = unknown", "return sio.load(path, trusted=sio.get_untrusted_types(file=path))"),
            ("trusts whatever the file asks for", "posix.system", "fixed list you reviewed")),

    # -- exercise 3: the model card's group metrics (each wrong option)
    Mistake("group-metrics", "concluded that leaving `gender` out makes the groups' rates equal", 'reading = "a"',
            ("not its influence",), to_the_end=True),
    Mistake("group-metrics", "took the largest gap for a proven disparity, without its interval", 'reading = "b"',
            ("cannot tell that gap from chance",)),
    Mistake("group-metrics", "believed the model reads `gender`", 'reading = "c"', ("cannot read it",)),
    Mistake("group-metrics", "read the false positive rates as the largest gap", 'reading = "d"',
            ("false positive rates are the closest",)),

    # -- exercise 4: the files that changed
    Mistake("changed-files", "compared sizes instead of hashes",
            'return sorted(name for name, record in manifest["files"].items()\n'
            '              if (directory / name).stat().st_size != record["bytes"])',
            ("flipped bit keeps the size",), to_the_end=True),
    Mistake("changed-files", "hashed with md5 instead of sha256",
            'return sorted(name for name, record in manifest["files"].items()\n'
            '              if hashlib.md5((directory / name).read_bytes()).hexdigest() != record["sha256"])',
            ("every file as changed", "not md5")),
    Mistake("changed-files", "hashed the file's name instead of its content",
            'return sorted(name for name, record in manifest["files"].items()\n'
            '              if hashlib.sha256(name.encode()).hexdigest() != record["sha256"])',
            ("every file as changed", "not of the file's name")),
    Mistake("changed-files", "looped over the directory instead of the manifest's list",
            'return sorted(path.name for path in directory.iterdir()\n'
            '              if hashlib.sha256(path.read_bytes()).hexdigest() != manifest["files"][path.name]["sha256"])',
            ("raised KeyError", "manifest.json")),
    Mistake("changed-files", "computed the list but forgot to return it",
            'changed = sorted(name for name, record in manifest["files"].items()\n'
            '                 if hashlib.sha256((directory / name).read_bytes()).hexdigest() != record["sha256"])',
            ("returned None",)),

    # -- exercise 5: probabilities over HTTP
    Mistake("http-inference", "kept the answer's data flat (no reshape)",
            (REQUEST, 'outputs = {output["name"]: output for output in response.json()["outputs"]}\n'
                      'proba_http = np.array(outputs["predict_proba"]["data"])'),
            ("shape (10,)", "reshape"), to_the_end=True),
    Mistake("http-inference", "wrote `size` instead of `shape` in the tensor",
            (REQUEST.replace('"shape": list(rows.shape)', '"size": list(rows.shape)'), READ_PROBA),
            ("the server answered 400", "unknown field(s): size")),
    Mistake("http-inference", "gave the tensor the flat data's shape ([45]) instead of [rows, features]",
            (REQUEST.replace('"shape": list(rows.shape)', '"shape": [rows.size]'), READ_PROBA),
            ("the server answered 400", "the model takes [n, 9]")),
    Mistake("http-inference", "computed the probabilities in the notebook instead of asking the server",
            (REQUEST.replace(', {"name": "predict_proba"}', ''), "proba_http = model.predict_proba(rows)"),
            ("no 'predict_proba' output", "did not come from the server")),
    Mistake("http-inference", "took the 'predict' output (classes) instead of 'predict_proba'",
            (REQUEST, 'outputs = {output["name"]: output for output in response.json()["outputs"]}\n'
                      'proba_http = np.array(outputs["predict"]["data"])'),
            ("the 'predict' output",)),

    # -- exercise 6: an explanation over HTTP
    Mistake("explanation", "did not sort the contributions by absolute size", (BODY, READ_EXPLANATION),
            ("not sorted by absolute size",), to_the_end=True),
    Mistake("explanation", "computed SHAP values in the notebook instead of asking the server",
            (BODY.replace(', {"name": "explanation"}', ''),
             "import shap\nexplainer = shap.TreeExplainer(model)\nbase_value = float(np.ravel(explainer.expected_value)[-1])\n"
             "contributions = pd.Series(explainer.shap_values(applicant.to_numpy())[0], index=FEATURES)\n"
             "contributions = contributions.sort_values(key=abs, ascending=False)"),
            ("no 'explanation' output", "did not come from the server")),
    Mistake("explanation", "took the whole `parameters` dict as the base value",
            (BODY, READ_EXPLANATION.replace('base_value = explanation["parameters"]["base_value"]',
                                            'base_value = explanation["parameters"]')
             + "\ncontributions = contributions.sort_values(key=abs, ascending=False)"),
            ("`base_value` should be a number, not dict",)),
    Mistake("explanation", "made the Series without the feature names as its index",
            (BODY, READ_EXPLANATION.replace(', index=explanation["parameters"]["feature_names"]', '')
             + "\ncontributions = contributions.sort_values(key=abs, ascending=False)"),
            ("indexed by the feature names",)),
    Mistake("explanation", "sent the applicant as a 1-D tensor (shape [9])",
            (BODY.replace('"shape": list(applicant.shape)', '"shape": [applicant.size]'), READ_EXPLANATION),
            ("the server answered 400", "the model takes [n, 9]")),

    # -- exercise 7: predict the status of a malformed request (each wrong option)
    Mistake("status-prediction", "expected the server to fill in the missing feature", 'prediction = "a"',
            ("guesses a missing value",), to_the_end=True),
    Mistake("status-prediction", "expected a server error (500)", 'prediction = "c"', ("5xx means the server failed",)),
    Mistake("status-prediction", "expected 401 for a bad body", 'prediction = "d"', ("401 is about the key",)),

    # -- exercise 8: a restart of Vault Agent (each wrong option)
    Mistake("agent-restart", "believed a periodic token lives on without renewal, and that the agent keeps it",
            'restart = "a"', ("buys only one more period", "no token sink"), to_the_end=True),
    Mistake("agent-restart", "believed the agent can log in again with its first secret ID", 'restart = "b"',
            ("single-use", "deleted its file")),
    Mistake("agent-restart", "believed the model server holds a Vault token of its own", 'restart = "d"',
            ("holds no Vault token",)),
]
