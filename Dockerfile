# The Glassbox model server: the course model behind the Open Inference Protocol (V2), with explanations, for
# callers holding the API key. The server has no Vault client: it reads the key from a file
# (GLASSBOX_API_KEY_FILE) that Vault Agent renders and keeps fresh, and re-reads it, so a rotation needs no
# restart. Compose runs the agent as a sidecar (docker-compose.yml); by hand, with an agent rendering into
# a volume KEYS (lab 08 does this with glassbox.deploy.run_agent):
#
#   docker build --network=host -t glassbox/model-server:0.1.0 .        (the package's version; never :latest)
#   docker run --rm --network=host -e GLASSBOX_HOST=127.0.0.1 -e GLASSBOX_API_KEY_FILE=/run/glassbox/api-key \
#       -v KEYS:/run/glassbox:ro glassbox/model-server:0.1.0
#
# (--network=host lets pip, and then the server, reach what the host reaches: a proxy, the host's loopback.)
# No secret is baked in: no build argument, environment variable or layer holds one, and the container gets no
# Vault token, address or secret ID either: only the file the agent renders, in a volume mounted read-only.
#
# The base is pinned to a Python minor version and a Debian release. That tag still moves (Docker Hub rebuilds it
# for every patch release and security fix); for bit-for-bit repeatable builds pin its digest as well, the hash
# of the manifest the registry serves, which no push can change:
#   docker build --network=host --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> ...
# (`docker buildx imagetools inspect python:3.11-slim-bookworm` shows the digest). Both stages use the same base,
# so the virtual environment's links to the interpreter stay valid when it is copied across.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- stage 1: the server's environment, the course package and the course model ---------------------------
FROM ${PYTHON_IMAGE} AS build
COPY requirements.lock pyproject.toml /tmp/
# pip runs from a tools environment of its own and installs into /opt/venv from outside (`--python`), so the
# environment that ships never contains pip. The tools' pip is first replaced by the one requirements.lock pins,
# hash-checked (Debian's is too old to check a constraints file's hashes). /opt/venv gets the package's `serve`
# extra (pyproject.toml: the HTTP and gRPC servers, the model and its explainer, and hvac for compose's one-shot
# bootstrap, which runs in this image: `python -m glassbox.deploy bootstrap`), read from pyproject.toml into
# /tmp/serve.txt, at exactly the versions requirements.lock pins (used as the constraints file: no version is
# written twice) and with every file checked against the lock's sha256 hashes (--require-hashes). Nothing else:
# neither the server nor the bootstrap imports the Docker SDK or psutil (glassbox.vault imports its dev-Vault
# manager lazily). glassbox.pth adds the course package's own directory.
RUN python3 -m venv /opt/tools \
 && awk '/^pip==/ {p = 1} p && /^ *#/ {exit} p' /tmp/requirements.lock > /tmp/pip.txt \
 && /opt/tools/bin/pip install --no-cache-dir --disable-pip-version-check --require-hashes -r /tmp/pip.txt \
 && python3 -c 'import tomllib; print(*tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]["optional-dependencies"]["serve"], sep="\n")' > /tmp/serve.txt \
 && python3 -m venv --without-pip /opt/venv \
 && /opt/tools/bin/pip --python /opt/venv/bin/python install --no-cache-dir --disable-pip-version-check \
      --require-hashes --only-binary=:all: -c /tmp/requirements.lock -r /tmp/serve.txt \
 && find /opt/venv/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
 && echo /opt/glassbox/lib > "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/glassbox.pth"
# The course package in a directory of its own, then the course model trained from its seeded recipe. The
# dependencies change rarely and the package often: apart, an edit rebuilds a few hundred kilobytes, not the
# whole environment.
COPY pyproject.toml README.md /src/
COPY support /src/support
RUN /opt/tools/bin/pip --python /opt/venv/bin/python install --no-cache-dir --disable-pip-version-check \
      --no-deps --target /opt/glassbox/lib /src \
 && GLASSBOX_HOME=/tmp/glassbox /opt/venv/bin/python -m glassbox.artifacts build /opt/glassbox/models/credit \
 && chmod -R a+rX,go-w /opt/glassbox

# --- stage 2: the runtime: the environment, the package, the model, an unprivileged user; no pip, no compiler
FROM ${PYTHON_IMAGE}
# /run/glassbox: owned by the server's user, 0700. The server reads its key there (the agent's key volume,
# mounted read-only); compose's bootstrap, run from this image, writes the agent's hand-over there.
RUN groupadd --system --gid 10001 glassbox \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin glassbox \
 && install -d -o 10001 -g 10001 -m 0700 /run/glassbox
ENV PATH=/opt/glassbox/lib/bin:/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GLASSBOX_HOME=/tmp/glassbox \
    GLASSBOX_MODEL_DIR=/opt/glassbox/models/credit \
    GLASSBOX_HOST=0.0.0.0 \
    GLASSBOX_PORT=8080
# The protocol's gRPC API is off unless asked for: -e GLASSBOX_GRPC_PORT=8081 -p 8081:8081 (see glassbox.serving).
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD ["python", "-m", "glassbox.serving.health"]
CMD ["glassbox", "serve"]
USER 10001:10001
# The big layers come last, the one that changes most at the very end (owned by root, read-only for the
# server's user), so that everything above stays cached.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/glassbox /opt/glassbox
