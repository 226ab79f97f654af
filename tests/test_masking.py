"""Secret masking: the rule for what is a secret, and masking in a real kernel against the real dev Vault.

Also the exercise-cell hook: an exception in an exercise cell becomes the check's "not yet", Run All goes on,
``%tb`` still shows the traceback, and an error anywhere else is shown as usual.
"""

import base64
import importlib

import nbformat
import pytest
from nbclient import NotebookClient

import glassbox.masking


@pytest.fixture
def masking():
    return importlib.reload(glassbox.masking)   # a fresh registry for each rule test


def test_kv_values_are_secrets_and_identifiers_are_not(masking):
    masking._harvest("/v1/secret/data/app/db", {"data": {"data": {
        "username": "alice-admin", "password": "S3cret-pass", "api_key": "k-1234567", "port": "5432100",
        "host": "db.internal.example", "pin": "12"}}}, None, sent=False)
    text = masking.mask("alice-admin S3cret-pass k-1234567 5432100 db.internal.example 12")
    assert text == "alice-admin [masked] [masked] 5432100 db.internal.example 12"


def test_a_kv_write_masks_what_it_sends_not_the_metadata_it_gets_back(masking):
    masking._harvest("/v1/secret/data/app", {"data": {"token": "written-value-1"}, "options": {}}, None, sent=True)
    masking._harvest("/v1/secret/data/app", {"data": {"created_time": "2026-12-01T21:00:00Z", "version": 3}},
                     None, sent=False)
    assert masking.mask("written-value-1 at 2026-12-01T21:00:00Z") == "[masked] at 2026-12-01T21:00:00Z"


def test_tokens_secret_ids_and_transit_plaintext_are_secrets_ciphertext_and_accessors_are_not(masking):
    plaintext = base64.b64encode(b"Jane Doe <jane@example.org>").decode()
    masking._harvest("/v1/auth/approle/login", {"role_id": "role-1234-abcd", "secret_id": "sid-98765432"},
                     "root-token-value", sent=True)
    masking._harvest("/v1/auth/approle/login", {"auth": {"client_token": "s.clienttoken99",
                                                         "accessor": "accessor-1234"}}, None, sent=False)
    masking._harvest("/v1/sys/wrapping/wrap", {"wrap_info": {"token": "wrapping-token-1"}}, None, sent=False)
    masking._harvest("/v1/transit/decrypt/pii", {"data": {"plaintext": plaintext}}, None, sent=False)
    masking._harvest("/v1/transit/encrypt/pii", {"data": {"ciphertext": "vault:v1:abcdefgh"}}, None, sent=False)
    shown = masking.mask(f"root-token-value sid-98765432 s.clienttoken99 wrapping-token-1 {plaintext} "
                         "Jane Doe <jane@example.org> accessor-1234 role-1234-abcd vault:v1:abcdefgh")
    assert shown == ("[masked] [masked] [masked] [masked] [masked] [masked] accessor-1234 role-1234-abcd "
                     "vault:v1:abcdefgh")


def test_masking_walks_json_like_content_and_records_each_leak(masking):
    masking.remember("hunter2-hunter2", "a test value")
    content = {"data": {"text/plain": ["x hunter2-hunter2"], "text/html": "<b>hunter2-hunter2</b>"}}
    assert masking.mask(content) == {"data": {"text/plain": ["x [masked]"], "text/html": "<b>[masked]</b>"}}
    assert [where for _, where in masking.leaks()] == ["a test value", "a test value"]


KERNEL_CELLS = [
    # 0: the API being taught, as lab 00 uses it
    "import hvac, pandas as pd\nfrom glassbox import vault, masking\nserver = vault.up()\n"
    "client = hvac.Client(url=server.addr, token=server.token)\n"
    "client.secrets.kv.v2.create_or_update_secret(path='masking-test/db', mount_point='secret',\n"
    "    secret={'username': 'svc-reader', 'password': 'Pa55-word-from-vault'})\nprint('written')",
    # 1: print the secret (stdout) and ask what leaked
    "secret = client.secrets.kv.v2.read_secret_version(path='masking-test/db', mount_point='secret',\n"
    "    raise_on_deleted_version=True)['data']['data']\nprint(secret)\nprint('leaked:', masking.leaks_in_this_cell())",
    # 2: a rich repr (HTML table) and an execute_result
    "display(pd.DataFrame([secret]))\nsecret['password']",
    # 3: metadata only: nothing leaks
    "print({key: len(value) for key, value in secret.items()})\nprint('leaked:', masking.leaks_in_this_cell())",
    # 4: an error whose message holds the secret, in an ordinary cell
    "raise ValueError(f\"bad password {secret['password']}\")",
    # 5: an exercise cell whose code raises before its check runs
    "from glassbox.checks import exercise, expect\n"
    "@exercise(lab='99', name='demo', title='A demo exercise', hint=('Think about the keys.', 'Print them.'))\n"
    "def check_demo(value):\n    expect(value == 1, 'not one')\n\n"
    "answer = {'a': 1}['b']\ncheck_demo(answer)",
    # 6: Run All went on; the traceback is one call away
    "print('still running')\n%tb",
]


@pytest.fixture(scope="module")
def kernel_run(vault_server):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in KERNEL_CELLS])
    NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True).execute()
    return notebook.cells


def _text(cell) -> str:
    parts = []
    for output in cell.outputs:
        parts.append(output.get("text", ""))
        parts += [str(value) for value in output.get("data", {}).values()]
        parts += [output.get("evalue", ""), *output.get("traceback", [])]
    return "\n".join(parts)


def test_a_printed_secret_is_masked_recorded_and_explained_in_one_line(kernel_run):
    text = _text(kernel_run[1])
    assert "Pa55-word-from-vault" not in text
    assert "{'password': '[masked]', 'username': 'svc-reader'}" in text
    assert "leaked: [\"the value of 'password' at /v1/secret/data/masking-test/db\"]" in text
    notices = [o["text"] for o in kernel_run[1].outputs if o.get("name") == "stderr"]
    assert len(notices) == 1 and notices[0].startswith("glassbox masked 1 secret value(s) in this cell's output")


def test_rich_reprs_results_and_tracebacks_are_masked(kernel_run):
    for cell in kernel_run[2], kernel_run[4]:
        assert "Pa55-word-from-vault" not in _text(cell) and "[masked]" in _text(cell)
    html = next(o["data"]["text/html"] for o in kernel_run[2].outputs if "text/html" in o.get("data", {}))
    assert "<td>[masked]</td>" in html and "svc-reader" in html


def test_metadata_is_not_a_leak(kernel_run):
    text = _text(kernel_run[3])
    assert "{'password': 20, 'username': 10}" in text and "leaked: []" in text and "glassbox masked" not in text


def test_an_ordinary_cell_still_shows_its_error(kernel_run):
    assert [o["ename"] for o in kernel_run[4].outputs if o["output_type"] == "error"] == ["ValueError"]


def test_an_exception_in_an_exercise_cell_becomes_the_checks_feedback_and_run_all_goes_on(kernel_run):
    outputs = kernel_run[5].outputs
    assert not [o for o in outputs if o["output_type"] == "error"]
    shown = [o["data"]["text/plain"] for o in outputs if o["output_type"] == "display_data"]
    assert len(shown) == 1
    assert shown[0].startswith("[NOT YET] Lab 99 · A demo exercise: your code raised `builtins.KeyError`: 'b'.")
    assert "a key or column that is not there" in shown[0] and "%tb" in shown[0]
    assert "Hint: Think about the keys." in shown[0] and "Hint 2: Print them." in shown[0]
    html = next(o["data"]["text/html"] for o in outputs if o["output_type"] == "display_data")
    assert "<code>%tb</code>" in html and "<details><summary>Details</summary><pre>Traceback" in html
    after = _text(kernel_run[6])
    assert "still running" in after and "KeyError" in after
