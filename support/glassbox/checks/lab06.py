"""Self-checks for Lab 06 – Packaging and serving.

Loading with skops and an explicit trusted list, finding the files of an artifact that changed, calling the
model server over plain HTTP, and reading an explanation that came over HTTP. No message shows a secret.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from glassbox.checks import exercise, expect, fail, is_stub

__all__ = ["check_safe_load", "check_changed_files", "check_http_inference", "check_explanation"]



@exercise(lab="06", name="safe-load", title="Load a model with skops, trusting only what you reviewed")
def check_safe_load(trusted, loaded, model_path, X):
    """``trusted`` must be exactly the file's untrusted types (reviewed), and ``loaded`` the model it holds."""
    import skops.io as sio

    expect(not is_stub(trusted), "`trusted` is still the stub.",
           hint="Set it to the list of type names you reviewed: start from sio.get_untrusted_types(file=...).")
    expect(trusted is not True, "`trusted=True` trusts whatever the file holds (skops refuses it since "
           "CVE-2024-37065).", hint="Pass the list of type names you reviewed instead.")
    expect(isinstance(trusted, (list, tuple)) and all(isinstance(t, str) for t in trusted),
           f"`trusted` should be a list of type names (strings), not {type(trusted).__name__}.",
           hint="For example ['sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor'].")
    needed = set(sio.get_untrusted_types(file=model_path))
    missing, extra = sorted(needed - set(trusted)), sorted(set(trusted) - needed)
    expect(not missing, f"skops needs {len(missing)} more type(s) to be trusted to load this file: "
           f"{', '.join(missing)}.", hint="Review what sio.get_untrusted_types(file=model_path) lists.")
    expect(not extra, f"`trusted` also lists {', '.join(extra)}, which this file does not need.",
           hint="Trust exactly the types the file holds and you reviewed: a longer list only widens the door.")
    expect(not is_stub(loaded), "`loaded` is still the stub.",
           hint="loaded = sio.load(model_path, trusted=trusted)")
    expect(hasattr(loaded, "predict_proba"), f"`loaded` is a {type(loaded).__name__}, not a model.",
           hint="sio.load returns the estimator that sio.dump saved.")
    reference = sio.load(model_path, trusted=sorted(needed))
    expect(np.array_equal(loaded.predict_proba(X), reference.predict_proba(X)),
           "`loaded` does not predict like the model in the file.",
           hint="Load model_path itself, not another model.")
    return f"loaded with {len(trusted)} reviewed type(s) trusted, predictions identical."


@exercise(lab="06", name="changed-files", title="Find the files of an artifact that no longer match the manifest")
def check_changed_files(changed_files, artifact_dir):
    """``changed_files(directory)`` must list exactly the files whose sha256 differs from the manifest's."""
    expect(callable(changed_files), "`changed_files` should be a function of the artifact's directory.",
           hint="def changed_files(directory): ... return a list of file names")
    with tempfile.TemporaryDirectory(prefix="glassbox-lab06-check-") as scratch:
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
            found = changed_files(copy)
            if found is None:
                fail("`changed_files` returned None.", hint="Return a list of file names (empty when nothing changed).")
            expect(isinstance(found, (list, tuple, set)), f"`changed_files` returned a {type(found).__name__}, "
                   "not a list.", hint="Return a list of file names such as ['model.skops'].")
            names = sorted(Path(str(name)).name for name in found)
            if names != expected:
                hint = ("Compare hashlib.sha256(file bytes).hexdigest() with manifest['files'][name]['sha256'] "
                        "for every file the manifest lists.")
                if expected and not names:
                    hint = "A flipped bit keeps the size and the name: only a hash of the content sees it. " + hint
                fail(f"on {what} it returned {names}, expected {expected}.", hint=hint)
    return "untouched, edited and bit-flipped copies all told apart."


@exercise(lab="06", name="http-inference", title="Ask the server for probabilities over plain HTTP")
def check_http_inference(proba_http, model, rows):
    """``proba_http`` must be the server's ``predict_proba`` for ``rows``, shaped ``(n_rows, n_classes)``."""
    expect(not is_stub(proba_http), "`proba_http` is still the stub.",
           hint="POST the request to infer_url, then take the output named 'predict_proba' from the answer.")
    try:
        got = np.asarray(proba_http, dtype=np.float64)
    except (TypeError, ValueError):
        fail(f"`proba_http` is a {type(proba_http).__name__} that is not numbers.",
             hint="np.array(output['data']).reshape(output['shape'])")
    expected = model.predict_proba(rows)
    expect(got.size == expected.size, f"`proba_http` has {got.size} values; {len(rows)} rows x "
           f"{expected.shape[1]} classes make {expected.size}.",
           hint="Send all the rows in one tensor of shape [n_rows, n_features], and ask for 'predict_proba'.")
    if got.shape != expected.shape:
        fail(f"`proba_http` has shape {got.shape}, not {expected.shape}.",
             hint="The protocol sends data flat (row-major): reshape it with the output's 'shape'.")
    if np.allclose(got, got.round()) and not np.allclose(expected, expected.round()):
        fail("`proba_http` holds whole numbers: that looks like the 'predict' output.",
             hint="Take the output named 'predict_proba'.")
    expect(np.allclose(got, expected, rtol=0, atol=1e-9),
           "`proba_http` differs from the model's predict_proba on the same rows.",
           hint="Send the rows' features in the model's order (model.feature_names_in_), as FP64.")
    return "the server's probabilities equal predict_proba in this process (to 1e-9)."


@exercise(lab="06", name="explanation", title="Read a SHAP explanation that came over HTTP")
def check_explanation(contributions, base_value, model, row):
    """``contributions``: a Series indexed by feature, sorted by absolute size; it adds up with ``base_value``."""
    import pandas as pd

    expect(not is_stub(contributions), "`contributions` is still the stub.",
           hint="Ask for the output 'explanation' and put its values in a pandas Series indexed by feature name.")
    expect(isinstance(contributions, pd.Series), f"`contributions` is a {type(contributions).__name__}, "
           "not a pandas Series.", hint="pd.Series(values, index=feature_names)")
    features = list(model.feature_names_in_)
    expect(sorted(map(str, contributions.index)) == sorted(features),
           "`contributions` should have one value per feature, indexed by the feature names.",
           hint="The explanation output's parameters carry 'feature_names', in the order of its values.")
    expect(not is_stub(base_value), "`base_value` is still the stub.",
           hint="It is in the explanation output's 'parameters' (base_value).")
    order = np.argsort(-np.abs(contributions.to_numpy()), kind="stable")
    expect(list(order) == list(range(len(contributions))),
           "`contributions` is not sorted by absolute size, largest first.",
           hint="contributions.sort_values(key=abs, ascending=False)")
    p = float(model.predict_proba(row)[0, -1])
    log_odds = np.log(p) - np.log1p(-p)
    total = float(base_value) + float(contributions.sum())
    if abs(total - p) < 1e-6 and abs(total - log_odds) > 1e-6:
        fail("base_value + contributions gives the probability, but SHAP values here are on the log-odds scale.",
             hint="Use the server's explanation as it comes: it adds up to log(p / (1 - p)).")
    expect(abs(total - log_odds) < 1e-6,
           f"base_value + contributions = {total:.4f}, but the model's log-odds for this row are {log_odds:.4f}.",
           hint="Use the base_value and the values of the same explanation output, for the same single row.")
    top = contributions.index[0]
    return f"adds up to the model's log-odds ({log_odds:.3f}); the largest contribution is {top!r}."


def _append(path: Path) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\nEdited by hand.\n")


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
