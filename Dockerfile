# The Glassbox model server: the course model behind the Open Inference Protocol (V2), with explanations, for
# callers holding the API key that the server reads from Vault through its AppRole.
#
#   docker build --network=host -t glassbox/model-server .
#   docker run --rm --network=host -e GLASSBOX_HOST=127.0.0.1 -e VAULT_ADDR=http://127.0.0.1:8200 \
#       -e GLASSBOX_VAULT_ROLE_ID=... -e GLASSBOX_VAULT_WRAPPED_SECRET_ID=... glassbox/model-server
#
# (--network=host lets pip, and then the server, reach what the host reaches: a proxy, a Vault on 127.0.0.1.)
# No secret is baked in: no build argument, environment variable or layer holds one. The AppRole role ID and a
# single-use, response-wrapped secret ID are handed over when the container starts; the API key itself never
# leaves Vault except into the server's memory.
#
# The base is pinned to a Python minor version and a Debian release; pin its digest as well
# (python:3.11-slim-bookworm@sha256:...) for bit-for-bit repeatable builds. Both stages use the same base, so
# the virtual environment's links to the interpreter stay valid when it is copied across.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- stage 1: a virtual environment holding what the server needs, and the course model -------------------
FROM ${PYTHON_IMAGE} AS build
COPY requirements.lock /tmp/requirements.lock
# The runtime subset of the course's dependencies, at exactly the versions requirements.lock pins (it serves as
# the constraints file, so no version is written twice): HTTP server, model and explainer, Vault client.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
      -c /tmp/requirements.lock \
      starlette uvicorn uvloop httptools orjson prometheus-client \
      numpy scipy pandas scikit-learn skops shap \
      hvac psutil docker
# The course package itself, then the course model trained from its recipe (seeded): editing the package
# rebuilds only from here on. pip and setuptools leave the environment: nothing installs at run time.
COPY . /src
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps /src \
 && /opt/venv/bin/pip uninstall --yes --disable-pip-version-check pip setuptools \
 && find /opt/venv/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
 && GLASSBOX_HOME=/tmp/glassbox /opt/venv/bin/python -m glassbox.artifacts build /opt/glassbox/models/credit \
 && chmod -R a+rX,go-w /opt/glassbox

# --- stage 2: the runtime: the venv, the model, an unprivileged user; no pip, no compiler ------------------
FROM ${PYTHON_IMAGE}
# /run/glassbox: where compose's bootstrap hands the server its role ID and wrapped secret ID.
RUN groupadd --system --gid 10001 glassbox \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin glassbox \
 && install -d -o 10001 -g 10001 -m 0700 /run/glassbox
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GLASSBOX_HOME=/tmp/glassbox \
    GLASSBOX_MODEL_DIR=/opt/glassbox/models/credit \
    GLASSBOX_HOST=0.0.0.0 \
    GLASSBOX_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/v2/health/ready' % os.environ['GLASSBOX_PORT'], timeout=2)"]
CMD ["python", "-m", "glassbox.serving"]
USER 10001:10001
# The big layers come last (owned by root, read-only for the server's user), so that the settings above stay
# cached when they change.
COPY --from=build /opt/glassbox /opt/glassbox
COPY --from=build /opt/venv /opt/venv
