# The README's commands. Everything installs from requirements.lock into .venv, every file checked against
# the lock's sha256 hashes (pip's hash-checking mode): a changed or substituted package fails the install.
PYTHON ?= python3
# The devcontainer sets VENV=/opt/venv, the environment its image holds.
VENV   ?= .venv
BIN    := $(VENV)/bin
# Tests use their own state directory and port, so they never touch a learner's running course.
TEST_ENV := GLASSBOX_HOME=$(CURDIR)/.glassbox-test GLASSBOX_VAULT_PORT=8210 GLASSBOX_VAULT_BACKEND=embedded
# The course image's tag (make course-image).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: lab test labs html bench lock vault-down clean hub course-image

$(BIN)/glassbox: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

lab: $(BIN)/glassbox            ## update your copies in workspace/ from labs/, start (or reuse) the dev Vault, open JupyterLab on them
	$(BIN)/glassbox lab

test: $(BIN)/glassbox           ## run every test: unit tests, the labs/ sync check, every notebook
	$(BIN)/glassbox labs check
	$(TEST_ENV) $(BIN)/python -m pytest tests solutions; status=$$?; \
	  $(TEST_ENV) $(BIN)/glassbox vault down >/dev/null; exit $$status

labs: $(BIN)/glassbox           ## regenerate labs/ from solutions/
	$(BIN)/glassbox labs build

html: $(BIN)/glassbox           ## render the executed solutions to build/html/ (one page per lab + index.html)
	$(BIN)/python -m glassbox.course.html --solutions solutions --out build/html

bench: $(BIN)/glassbox          ## the course's server against MLServer 1.7.1 and KServe 0.21: tables, .bench/*.csv and .bench/bench.png
	$(BIN)/python benchmarks/bench.py

lock:                           ## re-resolve requirements.lock from pyproject.toml, with hashes
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	  --custom-compile-command "make lock" -o requirements.lock

course-image:                   ## build the course image (binder/Dockerfile): the workshop's learners', Binder's, the devcontainer's
	docker build --network=host --quiet -f binder/Dockerfile -t glassbox/course:$(VERSION) .

hub: $(BIN)/glassbox course-image  ## run a workshop on this machine: JupyterHub, a container per learner (README: Run a workshop)
	npm ci --prefix deploy/hub --silent --no-audit --no-fund
	$(BIN)/jupyterhub -f deploy/hub/jupyterhub_config.py

vault-down: $(BIN)/glassbox
	$(BIN)/glassbox vault down

clean:
	rm -rf $(VENV) .glassbox-test build .bench
