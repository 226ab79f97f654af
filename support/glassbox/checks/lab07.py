"""Self-checks for Lab 07 – Packaging and serving.

Loading with skops and an explicit trusted list, finding the files of an artifact that changed, reading the
model card's group metrics, calling the model server over plain HTTP, predicting how it answers a malformed
request, reading an explanation that came over HTTP, and predicting what a restart of Vault Agent needs. No
message shows a secret.

Mistakes the checks name (the lab's catalogue is ``tests/mistakes/lab07.py``):

====================================  =========================================================================
answer                                what the check says
====================================  =========================================================================
``return model``                      `load_reviewed(model_path)` is `model` itself: nothing was loaded
a pickle round trip of ``model``      it predicts like `model` in memory, not like the model in `model_path`
trusting what the file lists          it also loaded a file that needs `posix.system`: it trusts whatever the
                                      file asks for
``pickle.dump`` over ``model_path``   `model_path` is no longer a skops archive (a zip): it holds a pickle
sizes instead of hashes               a flipped bit keeps the size: only a hash of the content sees it
a request the server refuses          the server answered 4xx, with the server's own ``error`` message
probabilities or SHAP values made     the server's answer has no such output, so the values did not come from it
in the notebook
====================================  =========================================================================
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from glassbox.checks import choose, exercise, expect, expect_answered, fail

__all__ = ["check_safe_load", "check_changed_files", "check_group_metrics", "check_http_inference",
           "check_status_prediction", "check_explanation", "check_trusted_risk", "check_agent_restart",
           "server_said"]


# -- exercise 1: skops with a reviewed trusted list --------------------------------------------------------

@exercise(lab="07", name="safe-load", title="Load a model with skops, trusting only what you reviewed",
          hint=("skops refuses the types it does not know until you name them: the names you reviewed, written "
                "out as a list of strings, not a blanket yes.",
                "Your function gets any path, one you never reviewed too: the list it trusts must not be read "
                "from the file it loads. `sio.load` takes that list as its `trusted` argument."))
def check_safe_load(trusted, load_reviewed, model_path, model, X):
    """``trusted``: exactly the file's untrusted types (reviewed); ``load_reviewed(path)``: ``path`` read with skops,
    trusting ``trusted`` only.

    ``model`` is the model already in memory (the file holds another one), so that a copy of it is told apart
    from what was loaded. The rule is also tried on a file that needs ``os.system``: it must refuse it.
    """
    import os

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    expect_answered(trusted, "trusted")
    expect(trusted is not True, "`trusted=True` trusts whatever the file holds, exactly like pickle (skops "
           "refuses it since CVE-2024-37065).", hint="Pass the list of type names you reviewed instead.")
    expect(isinstance(trusted, (list, tuple)) and all(isinstance(t, str) for t in trusted),
           f"`trusted` should be a list of type names (strings), not {type(trusted).__name__}.",
           hint=("A list, even for one name: `[...]` around the strings you reviewed.",))
    model_path = Path(model_path)
    expect(model_path.is_file(), f"`{model_path.name}` is gone: re-run the cell that writes it.",
           hint="Run the cells of section 3 again, in order.")
    if not zipfile.is_zipfile(model_path):
        is_pickle = model_path.read_bytes()[:1] == b"\x80"
        fail(f"`model_path` is no longer a skops archive (a zip){': it holds a pickle' if is_pickle else ''}. "
             "Your code overwrote the file you were asked to load.",
             hint=("Re-run the cell of section 3 that writes `model_path`, then load it with skops without "
                   "writing to it.", "Nothing in this exercise calls `pickle`: `sio.load` reads the file."))
    needed = set(sio.get_untrusted_types(file=model_path))
    missing, extra = sorted(needed - set(trusted)), sorted(set(trusted) - needed)
    expect(not missing, f"skops needs {len(missing)} more type(s) to be trusted to load this file: "
           f"{', '.join(missing)}.", hint="Review what `sio.get_untrusted_types` listed for `model_path` above.")
    expect(not extra, f"`trusted` also lists {', '.join(extra)}, which this file does not need.",
           hint="Trust exactly the types the file holds and you reviewed: a longer list only widens the door.")
    expect(callable(load_reviewed), "`load_reviewed` should be a function of a path.",
           hint=("Keep the `def load_reviewed(path):` line and complete its body.",))
    try:
        loaded = load_reviewed(model_path)
    except Exception as error:
        fail(f"`load_reviewed(model_path)` raised {type(error).__name__}: {str(error)[:200]}",
             hint=("`model_path` needs only the types you reviewed: your function should load it.",
                   "Pass your list to skops' loader as its `trusted` argument."))
    expect_answered(loaded, "load_reviewed(model_path)",
                    hint=("End the function with a `return` of what skops loaded from `path`.",))
    expect(loaded is not model, "`load_reviewed(model_path)` is `model` itself, the object already in memory: "
           "nothing was loaded from the file.",
           hint=("The exercise is to read the file: call skops' loader on `path`.",))
    expect(hasattr(loaded, "predict_proba"), f"`load_reviewed(model_path)` is a {type(loaded).__name__}, not a "
           "model.", hint="skops' loader returns the estimator that was dumped into the file.")
    reference = sio.load(model_path, trusted=sorted(needed))
    got = loaded.predict_proba(X)
    if not np.array_equal(got, reference.predict_proba(X)):
        if np.array_equal(got, model.predict_proba(X)):
            fail("`load_reviewed(model_path)` predicts like `model`, the model already in memory (a copy, or a "
                 "pickle round trip of it), not like the model in `model_path`.",
                 hint=("`model_path` holds another model than `model`: only reading the file gives it.",
                       "Load the file itself with skops; `pickle` plays no part here."))
        fail("`load_reviewed(model_path)` does not predict like the model in `model_path`.",
             hint="Load the file at `path` itself.")
    with tempfile.TemporaryDirectory(prefix="glassbox-lab07-check-") as scratch:
        unreviewed = Path(scratch) / "unreviewed.skops"
        sio.dump(FunctionTransformer(os.system), unreviewed)
        shell = ", ".join(sio.get_untrusted_types(file=unreviewed))
        try:
            accepted = load_reviewed(unreviewed)
        except Exception:
            accepted = None
    expect(accepted is None, f"`load_reviewed` also loaded a file that needs {shell} (a shell command, like "
           "`suspicious.skops`): it trusts whatever the file asks for. A list read from the file being loaded "
           "reviews nothing.",
           hint=("Trust the fixed list you reviewed (`trusted`), whatever the file lists: skops then refuses "
                 "every other type.",))
    return (f"loaded from the skops file with {len(trusted)} reviewed type(s) trusted, predictions identical; "
            f"a file that needs {shell} refused.")


# -- exercise 2: the files that changed --------------------------------------------------------------------

@exercise(lab="07", name="changed-files", title="Find the files of an artifact that no longer match the manifest",
          hint=("A file changed when the digest of its content no longer equals the one the manifest recorded.",
                "For each file the manifest lists: what is the sha256 of its bytes now, and is it still the "
                "hex digest its record holds?"))
def check_changed_files(changed_files, artifact_dir):
    """``changed_files(directory)`` must list exactly the files whose sha256 differs from the manifest's."""
    expect(callable(changed_files), "`changed_files` should be a function of the artifact's directory.",
           hint="Keep the `def changed_files(directory):` line and complete its body.")
    with tempfile.TemporaryDirectory(prefix="glassbox-lab07-check-") as scratch:
        cases = {
            "an untouched copy": ([], lambda d: None),
            "a copy whose model card was edited": (["MODEL_CARD.md"], lambda d: _append(d / "MODEL_CARD.md")),
            "a copy with one bit of the model flipped": (["model.skops"], lambda d: _flip(d / "model.skops")),
            "a copy with both changed": (["MODEL_CARD.md", "model.skops"],
                                         lambda d: (_append(d / "MODEL_CARD.md"), _flip(d / "model.skops"))),
        }
        for number, (what, (expected, damage)) in enumerate(cases.items()):
            copy = Path(scratch) / f"copy{number}"
            shutil.copytree(artifact_dir, copy)
            damage(copy)
            try:
                found = changed_files(copy)
            except Exception as error:
                name = f"{type(error).__name__}: {error}"
                hint = "Loop over the files the manifest lists (`manifest['files']`), not over the directory."
                if isinstance(error, KeyError) and "manifest.json" in str(error):
                    hint = ("`manifest.json` is not in its own list: loop over `manifest['files']`, the files it "
                            "vouches for, not over the directory.")
                fail(f"your `changed_files` raised {name} on {what}.", hint=hint)
            if found is None:
                fail("`changed_files` returned None.",
                     hint="End with a `return` of a list of file names (empty when nothing changed).")
            expect(isinstance(found, (list, tuple, set)), f"`changed_files` returned a {type(found).__name__}, "
                   "not a list.", hint="Return a list of file names such as ['model.skops'].")
            names = sorted(Path(str(name)).name for name in found)
            if names == expected:
                continue
            if not expected and len(names) >= 2:
                fail(f"on {what} it reported every file as changed ({names}): the digest you compare is not the "
                     "manifest's kind, or the comparison is the wrong way round.",
                     hint=("The manifest records the sha256 of each file's **bytes** (not md5, not of the file's "
                           "name or path); a file changed when its digest differs (`!=`).",
                           "`hashlib.sha256(data).hexdigest()` where `data` is what `read_bytes()` returns."))
            if expected and not names:
                fail(f"on {what} it returned {names}, expected {expected}: a flipped bit keeps the size and the "
                     "name; only a hash of the content sees it.",
                     hint=("Compare digests of the content, not sizes or names.",
                           "`hashlib.sha256` of each listed file's bytes, against the record's `sha256`."))
            fail(f"on {what} it returned {names}, expected {expected}.",
                 hint=("Check every file the manifest lists, and return each one whose digest differs.",))
    return "untouched, edited and bit-flipped copies all told apart."


# -- exercise 3: reading the model card's group metrics ---------------------------------------------------

_GROUP_OPTIONS = {
    "a": "`gender` is not an input, so the model treats both groups alike: every difference in the table is zero.",
    "b": "The true positive rates differ the most: the model flags one group's real defaulters more often than "
         "the other's, so it treats the two groups' defaulters differently.",
    "c": "The model flags one group more often because it reads `gender` from the request.",
    "d": "The false positive rates differ the most: the model wrongly flags one group's good payers far more often.",
    "e": "The true positive rates differ the most, but that gap's interval includes 0: these rows can neither "
         "show a disparity nor rule out one of about 0.19.",
}
_GROUP_WHY = {
    "a": "Leaving an attribute out removes its direct use, not its influence: `income` differs by group and is "
         "an input, so the groups' scores differ too (the table's differences are not zero).",
    "b": "The largest gap is the true positive rate's (0.075), but read the row under it: its 95 % interval runs "
         "from -0.038 to +0.186. With about 145 defaulters per group, these rows cannot tell that gap from "
         "chance: they show neither a difference nor its absence.",
    "c": "The model's features (the server's metadata, the card's feature table) do not include `gender`: "
         "it cannot read it.",
    "d": "Read the difference row again: the false positive rates are the closest of the three.",
    "e": "Right: the true positive rate differs the most (0.075), and its interval (-0.038 to +0.186) includes 0 "
         "as well as gaps more than twice as large. With about 145 defaulters per group (140 and 151), the card "
         "can neither claim a disparity nor rule one out: that takes more held-out rows. `income` carries "
         "group information into the scores, which is why a card reports group metrics with their intervals, "
         "instead of claiming fairness by omission.",
}


@exercise(lab="07", name="group-metrics", title="Read the model card's group metrics",
          hint=("Read the card's 'Group metrics' table: each column is a rate per group; below them, the gap "
                "between the groups and that gap's interval.",
                "Which of the three gaps is the largest, and what does its interval say the rows can tell apart?"))
def check_group_metrics(answer):
    """``answer``: the letter of the statement the card's group metrics support."""
    expect_answered(answer, "answer")
    return choose(answer, _GROUP_OPTIONS, correct="e", why=_GROUP_WHY)


# -- exercise 4: probabilities over HTTP ------------------------------------------------------------------

def server_said(answer) -> str:
    """The status and the server's own ``error`` message of a refused answer (for the lab's later cells)."""
    try:
        message = answer.json().get("error", "")
    except Exception:
        message = answer.text[:200]
    return f"the server answered {answer.status_code}: {message}"


def _outputs_of(answer, url_part: str, what: str) -> dict:
    """The outputs of the server's successful ``answer`` by name, or a failed check that says what is wrong."""
    import httpx

    expect(isinstance(answer, httpx.Response),
           f"`{what}` should be the server's raw response (what `httpx.post` returns), not a "
           f"{type(answer).__name__}.", hint=("Keep the cell's `httpx.post(...)` line: the check reads its answer.",))
    try:
        request = answer.request
    except RuntimeError:
        fail(f"`{what}` was not produced by a request to the server.",
             hint=("Keep the cell's `httpx.post(...)` line: the check reads its answer.",))
    expect(request.method == "POST" and str(request.url).endswith(url_part),
           f"`{what}` answers a {request.method} to {request.url.path}, not a POST to the model's infer endpoint.",
           hint=("Send the request to `infer_url`.",))
    if answer.status_code != 200:
        fail(f"{server_said(answer)}.",
             hint=("The server's message says what it refused in your request: fix the tensor it names.",
                   "One tensor: `name` 'input-0', `datatype` 'FP64', `shape` [rows, features], `data` the values "
                   "flat, row after row."))
    try:
        body = answer.json()
        return {output["name"]: output for output in body["outputs"]}
    except Exception:
        fail(f"`{what}` is not an inference answer of the protocol (no `outputs`).",
             hint=("Send the request to `infer_url`.",))


@exercise(lab="07", name="http-inference", title="Ask the server for probabilities over plain HTTP",
          hint=("An inference request carries its input tensors flat (row after row) together with their shape; "
                "the answer's outputs come flat with their shape too.",
                "Build `request_body` from the rows' `shape` and their values flattened (`ravel`), then reshape "
                "the answer's 'predict_proba' `data` with its `shape`."))
def check_http_inference(answer, proba_http, model, rows):
    """``answer``: the server's raw response; ``proba_http``: its ``predict_proba`` output, shaped (rows, classes)."""
    outputs = _outputs_of(answer, "/infer", "answer")
    if "predict_proba" not in outputs:
        fail(f"the server's answer holds {sorted(outputs)} but no 'predict_proba' output, so `proba_http` "
             "did not come from the server.",
             hint=("Ask for the output 'predict_proba' in the request's `outputs`, and take `proba_http` from "
                   "the answer, not from the model in this notebook.",))
    expect_answered(proba_http, "proba_http", hint=("Take the answer's 'predict_proba' output and reshape it.",))
    try:
        got = np.asarray(proba_http, dtype=np.float64)
    except (TypeError, ValueError):
        fail(f"`proba_http` is a {type(proba_http).__name__} that is not numbers.",
             hint=("Make an array of the output's `data`, shaped by its `shape`.",))
    served = np.asarray(outputs["predict_proba"]["data"], dtype=np.float64)
    expected = model.predict_proba(rows)
    classes = outputs.get("predict", {}).get("data")
    if classes is not None and got.size == len(classes) and np.array_equal(got.ravel(), np.asarray(classes)):
        fail("`proba_http` holds the 'predict' output (one class per row), not the probabilities.",
             hint=("Take the output named 'predict_proba'.",))
    expect(served.size == expected.size, f"the server answered for {served.size // expected.shape[1]} rows, "
           f"not the {len(rows)} rows of `rows`.", hint=("Send all the rows in one tensor.",))
    expect(got.size == expected.size, f"`proba_http` has {got.size} values; {len(rows)} rows x "
           f"{expected.shape[1]} classes make {expected.size}.",
           hint=("Take the whole 'predict_proba' output of the answer.",))
    if got.shape != expected.shape:
        fail(f"`proba_http` has shape {got.shape}, not {expected.shape}: reshape the flat data.",
             hint=("The protocol sends data flat (row-major): reshape it with the output's `shape`.",))
    if np.allclose(got, got.round()) and not np.allclose(expected, expected.round()):
        fail("`proba_http` holds whole numbers: that looks like the 'predict' output.",
             hint=("Take the output named 'predict_proba'.",))
    expect(np.allclose(got.ravel(), served, rtol=0, atol=1e-12),
           "`proba_http` is not the server's 'predict_proba' output.",
           hint=("Take the values from the answer, in the order it sends them.",))
    expect(np.allclose(got, expected, rtol=0, atol=1e-9),
           "the server's probabilities differ from the model's predict_proba on the same rows.",
           hint=("Send the rows' features in the model's order (`FEATURES`), as FP64.",))
    return "the server's probabilities equal predict_proba in this process (to 1e-9)."


# -- exercise 5: predict the status of a malformed request -------------------------------------------------

_STATUS_OPTIONS = {
    "a": "200, with a prediction: the server fills the missing feature with 0 and answers.",
    "b": "400, with a JSON body `{\"error\": ...}` that names the shape the model takes.",
    "c": "500 Internal Server Error: the model fails on the short row.",
    "d": "401 Unauthorized.",
}
_STATUS_WHY = {
    "a": "A server that guesses a missing value answers for an applicant nobody described, and the caller never "
         "learns about its bug: refusing is the only safe answer.",
    "b": "Right: the mistake is the client's, so the status is a 4xx, and the message says what the model takes. "
         "The server checks the tensor's shape before the model sees it.",
    "c": "5xx means the server failed; here the request is wrong. (MLServer answers some malformed requests with "
         "a 500 and a traceback; this server checks the shape first.)",
    "d": "401 is about the key, and this request carries a valid one (`headers`).",
}


@exercise(lab="07", name="status-prediction", title="Predict how the server answers a malformed request",
          hint=("Whose mistake is a tensor with too few values: the client's or the server's? Status codes "
                "say which.",
                "4xx: the request is wrong; 5xx: the server failed; 401: the key is missing or wrong."))
def check_status_prediction(prediction):
    """``prediction``: the letter of what the server answers a request with 8 values of a 9-feature model."""
    expect_answered(prediction, "prediction")
    return choose(prediction, _STATUS_OPTIONS, correct="b", why=_STATUS_WHY)


# -- exercise 6: an explanation over HTTP -----------------------------------------------------------------

@exercise(lab="07", name="explanation", title="Read a SHAP explanation that came over HTTP",
          hint=("The 'explanation' output carries one value per feature, and its `parameters` say which "
                "feature each value belongs to and the base value they add to.",
                "Values and names come in the same order: pair them, then order by size whatever the sign "
                "(pandas sorting can apply a function before comparing)."))
def check_explanation(reply, contributions, base_value, model, row):
    """``reply``: the server's raw response; ``contributions``: a Series by feature from its explanation, sorted
    by absolute size; it adds up with ``base_value`` to the model's log-odds for ``row``."""
    import pandas as pd

    outputs = _outputs_of(reply, "/infer", "reply")
    if "explanation" not in outputs:
        fail(f"the server's answer holds {sorted(outputs)} but no 'explanation' output, so `contributions` "
             "did not come from the server.",
             hint=("Ask for the output 'explanation' in the request's `outputs`; the explanation must come from "
                   "the server, not from an explainer in this notebook.",))
    served = outputs["explanation"]
    expect(len(served["data"]) == len(model.feature_names_in_),
           f"the server explained {len(served['data']) // len(model.feature_names_in_)} rows, not one.",
           hint=("Send the single row `applicant`.",))
    expect_answered(contributions, "contributions")
    expect(isinstance(contributions, pd.Series), f"`contributions` is a {type(contributions).__name__}, "
           "not a pandas Series.", hint=("Put the explanation's values in a `pd.Series`, indexed by feature.",))
    features = list(model.feature_names_in_)
    expect(sorted(map(str, contributions.index)) == sorted(features),
           "`contributions` should have one value per feature, indexed by the feature names.",
           hint=("The explanation output's `parameters` carry 'feature_names', in the order of its values.",))
    served_values = pd.Series(served["data"], index=served["parameters"]["feature_names"])
    expect(np.allclose(contributions[features].to_numpy(dtype=float), served_values[features].to_numpy(), atol=1e-9),
           "`contributions` are not the server's explanation: each feature's value differs from what the "
           "server sent for it.",
           hint=("Index the values with the explanation's own 'feature_names', in the order it sends them.",))
    expect_answered(base_value, "base_value", hint=("It is in the explanation output's `parameters`.",))
    order = np.argsort(-np.abs(contributions.to_numpy()), kind="stable")
    expect(list(order) == list(range(len(contributions))),
           "`contributions` is not sorted by absolute size, largest first.",
           hint=("Sort with a key that makes negative and positive values comparable by size.",))
    p = float(model.predict_proba(row)[0, -1])
    log_odds = np.log(p) - np.log1p(-p)
    try:
        total = float(base_value) + float(contributions.sum())
    except (TypeError, ValueError):
        fail(f"`base_value` should be a number, not {type(base_value).__name__}.",
             hint=("Take the number under 'base_value' in the explanation's `parameters`.",))
    if abs(total - p) < 1e-6 and abs(total - log_odds) > 1e-6:
        fail("base_value + contributions gives the probability, but SHAP values here are on the log-odds scale.",
             hint=("Use the server's base value as it comes: with the contributions it adds up to "
                   "log(p / (1 - p)).",))
    expect(abs(total - log_odds) < 1e-6,
           f"base_value + contributions = {total:.4f}, but the model's log-odds for this row are {log_odds:.4f}.",
           hint=("Use the base value of the same explanation output, unchanged.",))
    top = contributions.index[0]
    return f"adds up to the model's log-odds ({log_odds:.3f}); the largest contribution is {top!r}."


# -- exercise 7: what trusting everything would risk -------------------------------------------------------

_TRUST_OPTIONS = {
    "a": "Nothing: skops stores data, not code, so any file it loads is harmless.",
    "b": "The file names `os.system` as the transformer's function: trusting it gives you an object that runs "
         "its input as a shell command the first time it is used. Trusting every type is what pickle does.",
    "c": "skops would refuse the file anyway, because its sha256 does not match.",
    "d": "Only a slower load: skops checks each type it trusts.",
}
_TRUST_WHY = {
    "a": "skops stores the *names* of the types and functions an object is made of; trusting a name means "
         "importing what it names. The data is harmless only as long as the names are.",
    "b": "Right: skops refuses `posix.system` because a reviewer must decide about it, and `trusted=True` would "
         "have skipped that review for every type, as pickle does. That is why skops no longer accepts it.",
    "c": "skops knows no hash: that is the manifest's job (`artifacts.load` checks it before skops reads the file).",
    "d": "The cost of trusting everything is not time but whatever the file's author chose to name.",
}


@exercise(lab="07", name="trusted-risk", title="What trusting everything would risk",
          hint=("skops rebuilds objects from the type names a file lists. What does trusting a name allow?",
                "Look at what `get_untrusted_types` listed for `suspicious.skops`, and what that function does."))
def check_trusted_risk(answer):
    """``answer``: the letter of what loading ``suspicious.skops`` with every type trusted would have risked."""
    expect_answered(answer, "answer")
    return choose(answer, _TRUST_OPTIONS, correct="b", why=_TRUST_WHY)


# -- exercise 8: a restart of Vault Agent ------------------------------------------------------------------

_RESTART_OPTIONS = {
    "a": "The agent carries on with the token it had: a periodic token has no maximum lifetime, so it is still "
         "valid.",
    "b": "The agent logs in again with the same secret ID as at its first start, and renders the key again.",
    "c": "The agent cannot log in: it has no token and no usable secret ID. It retries until the orchestrator "
         "delivers a new wrapped secret ID; meanwhile the server answers with the last key it read, but does not "
         "see a rotation.",
    "d": "The model server stopped answering callers about 15 minutes after the agent stopped, when its Vault "
         "token expired.",
}
_RESTART_WHY = {
    "a": "A periodic token has no *max* TTL, but each renewal buys only one more period (15 minutes): nobody "
         "renewed it for 20 minutes, so it expired. And the agent never had it anywhere but in memory (its "
         "configuration has no token sink): a restarted agent would not have it even after 5 minutes.",
    "b": "That secret ID was single-use, spent at the first login, and the agent deleted its file once read; the "
         "wrapping token that carried it could be unwrapped once only anyway.",
    "c": "Right: the old token lived only in the agent's memory (and, unrenewed, died within its 15-minute "
         "period), and the secret ID was single-use and is spent. Only a new wrapped secret ID from the "
         "orchestrator lets it log in again. The server holds no Vault token, so it keeps serving with the last "
         "key it read; a key rotated meanwhile reaches it only once the agent is back.",
    "d": "The server holds no Vault token at all: it reads a file. Stopping the agent does not touch the key "
         "the server already read, so it keeps answering callers who present that key.",
}


@exercise(lab="07", name="agent-restart", title="What a restart of Vault Agent needs",
          hint=("List what each party holds, and where: the orchestrator, the agent (on disk and in memory), "
                "the model server.",
                "Which of the agent's credentials survive its process, and which can be used only once? What does "
                "a periodic token need to stay alive?"))
def check_agent_restart(answer):
    """``answer``: the letter of what happens when the agent, stopped for 20 minutes, starts again unaided."""
    expect_answered(answer, "answer")
    return choose(answer, _RESTART_OPTIONS, correct="c", why=_RESTART_WHY)


def _append(path: Path) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\nEdited by hand.\n")


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
