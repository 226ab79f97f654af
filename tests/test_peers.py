"""MLServer beside the course's server (:mod:`glassbox.peers`), installed, converted and called for real.

- Where MLServer cannot be installed, the reason is one line that says what is needed: a package index out of
  reach (pip really fails, against a closed port), or Binder, or ``GLASSBOX_PEERS=off`` (nothing is installed).
- The lab's MLServer section, run in a kernel on Binder, says once why it is skipped and does nothing else.
- The conversion refuses an artifact that fails verification, before it writes any joblib file.
- MLServer, started from the converted model, gives tritonclient the course server's probabilities.

The MLServer environment is the machine's cache (installed once; the serving lab uses the same one).
"""

import json
import shutil

import nbformat
import numpy as np
import pytest
import tritonclient.http as triton
from nbclient import NotebookClient

from glassbox import artifacts, peers
from glassbox.data import load_credit, train_test
from helpers import course_model_server, printed
from labruns import solution

SERVING_LAB = "07"


def test_an_unreachable_package_index_is_one_line_that_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")             # no index but the closed one below
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    with pytest.raises(peers.Unavailable) as refused:
        peers.venv("unreachable", ["mlserver==1.7.1"], timeout=120)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("cannot install mlserver==1.7.1")
    assert "needs a reachable package index" in message
    assert not (tmp_path / "glassbox" / "unreachable" / "glassbox-requirements.json").exists()  # tried again next time


@pytest.mark.parametrize("variable, value, reason", [
    ("BINDER_LAUNCH_HOST", "https://mybinder.org/", "this is Binder.*run this section on your own machine"),
    ("GLASSBOX_PEERS", "off", "GLASSBOX_PEERS=off says not to.*unset it to run this section"),
])
def test_on_binder_or_when_told_nothing_is_installed_and_the_reason_says_what_to_do(tmp_path, monkeypatch, variable,
                                                                                    value, reason):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GLASSBOX_PEERS", raising=False)
    monkeypatch.setenv(variable, value)
    with pytest.raises(peers.Unavailable, match=reason):
        peers.mlserver_venv()
    assert not (tmp_path / "glassbox").exists()


def _section(notebook) -> list:
    """The code cells of the serving lab's MLServer section."""
    heads = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "markdown"
             and cell.source.startswith("## ")]
    start = next(index for index in heads if "MLServer" in notebook.cells[index].source.splitlines()[0])
    end = heads[heads.index(start) + 1]
    return [cell for cell in notebook.cells[start:end] if cell.cell_type == "code"]


def test_the_labs_section_on_binder_says_why_once_and_does_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GLASSBOX_PEERS", raising=False)
    monkeypatch.setenv("BINDER_LAUNCH_HOST", "https://mybinder.org/")
    section = _section(solution(SERVING_LAB))
    assert len(section) >= 4
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from glassbox import peers")]
                                        + [nbformat.v4.new_code_cell(cell.source) for cell in section])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()   # raises on any cell's error
    assert printed(notebook).strip() == ("This section is skipped: this is Binder: installing MLServer would take "
                                         "minutes of a session that ends when idle; run this section on your own "
                                         "machine")


@pytest.fixture(scope="module")
def mlserver_python():
    try:
        return peers.mlserver_venv()
    except peers.Unavailable as reason:
        pytest.skip(str(reason))


@pytest.fixture(scope="module")
def rows():
    _, X_test, _, _ = train_test(load_credit(n_samples=4000, seed=0), test_size=0.25, seed=0)
    return X_test[artifacts.load(artifacts.build_course_model()).feature_names].iloc[:20]


def test_an_artifact_that_fails_verification_is_never_converted(mlserver_python, rows, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(artifacts.build_course_model(), tampered)
    data = bytearray((tampered / artifacts.MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tampered / artifacts.MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(Exception, match="sha256"):
        peers.to_mlserver(mlserver_python, tampered, tmp_path / "converted", rows)
    assert not (tmp_path / "converted" / "model.joblib").exists()


def test_mlserver_serves_the_converted_model_with_the_course_servers_probabilities(mlserver_python, rows, tmp_path):
    converted = peers.to_mlserver(mlserver_python, artifacts.build_course_model(), tmp_path / "converted", rows)
    assert sorted(path.name for path in converted.iterdir()) == ["model-settings.json", "model.joblib"]
    assert json.loads((converted / "model-settings.json").read_text())["implementation"] == \
        "mlserver_sklearn.SKLearnModel"

    def probabilities(url, headers):
        client = triton.InferenceServerClient(url.removeprefix("http://"))
        try:
            tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
            tensor.set_data_from_numpy(rows.to_numpy(), binary_data=False)
            wanted = [triton.InferRequestedOutput("predict_proba", binary_data=False)]
            return client.infer("credit", [tensor], outputs=wanted, headers=headers).as_numpy("predict_proba")
        finally:
            client.close()

    with peers.MLServer(mlserver_python, converted) as mlserver:
        assert mlserver.started_s > 0
        theirs = probabilities(mlserver.url, {})
    assert mlserver.process.poll() is not None                        # stopped on leaving the block
    with course_model_server(tmp_path) as (local, key, _):
        ours = probabilities(local.url, {"Authorization": f"Bearer {key}"})
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-12)
    assert theirs.shape == (len(rows), 2) and not np.allclose(theirs[:, 1], theirs[0, 1])   # real, varied answers
