"""Benchmark: the model server's image: build time (warm, and cold with --cold), size, layers, what fills it,
how long the container takes from `docker run` to ready, and its one-row latency against in-process
``predict_proba`` (sequential requests over one keep-alive connection, host networking).

    .venv/bin/python benchmarks/image_size.py          warm build (the engine's cache), size and start-up
    .venv/bin/python benchmarks/image_size.py --cold   also a build without the cache (pip downloads again)

Needs a Docker engine (`sudo bash .ci/docker-engine.sh` starts one where none runs). Prints figures and exits 0
unless something broke; it is not a test.
"""

from __future__ import annotations

import argparse
import sys
import time

from glassbox import deploy


def _timed_build(client, *, nocache: bool) -> tuple[float, object]:
    start = time.perf_counter()
    stream = client.api.build(path=str(deploy.project_dir()), tag=deploy.IMAGE, network_mode="host", rm=True,
                              forcerm=True, nocache=nocache, decode=True)
    image = deploy.follow_build(client, stream, tag=deploy.IMAGE, progress=False, echo=lambda line: None)
    return time.perf_counter() - start, image


def _container_figures(client, requests: int = 500) -> dict:
    """Seconds from `docker run` to ready, and one-row latency (ms) through the container and in-process.

    The key comes from a file inside the container (no Vault needed for a benchmark)."""
    import http.client

    from threadpoolctl import threadpool_limits

    from glassbox import artifacts
    from glassbox.data import load_credit, train_test
    from glassbox.monitoring import v2_request

    model = artifacts.load(artifacts.build_course_model()).model
    row = train_test(load_credit(n_samples=4000, seed=0), test_size=0.25, seed=0)[1][
        list(model.feature_names_in_)].iloc[[0]]
    port, key = deploy.free_port(), "benchmark-only-key"
    start = time.perf_counter()
    container = client.containers.run(
        deploy.IMAGE, ["sh", "-c", f"echo {key} > /tmp/key && exec glassbox serve"], detach=True,
        network_mode="host", read_only=True, tmpfs={"/tmp": "size=16m"},
        environment={"GLASSBOX_HOST": "127.0.0.1", "GLASSBOX_PORT": str(port), "GLASSBOX_API_KEY_FILE": "/tmp/key"})
    try:
        deploy.ContainerServer(container, port).wait_ready(timeout=120)
        figures = {"ready": time.perf_counter() - start}
        body = v2_request(row.to_numpy(), outputs=["predict_proba"])
        connection = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

        def call():
            connection.request("POST", "/v2/models/credit/infer", body=body, headers=headers)
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200, answer.status

        figures["server"] = _times(call, requests)
        connection.close()
    finally:
        container.remove(force=True)
    with threadpool_limits(1):
        figures["in-process"] = _times(lambda: model.predict_proba(row), requests)
    return figures


def _times(call, n: int, warmup: int = 100) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    import numpy as np

    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="also build once without the engine's cache")
    args = parser.parse_args(argv)
    client = deploy.engine()
    if client is None:
        print(f"error: {deploy.engine_status()}; start one with `sudo bash .ci/docker-engine.sh`", file=sys.stderr)
        return 1
    print(deploy.engine_status(client))
    rows = []
    if args.cold:
        seconds, image = _timed_build(client, nocache=True)
        rows.append(("build, cold (no cache: pip downloads)", f"{seconds:.1f} s"))
    _timed_build(client, nocache=False)
    seconds, image = _timed_build(client, nocache=False)
    rows.append(("build, warm (every layer cached)", f"{seconds:.1f} s"))
    report = deploy.image_report(image)
    final_stage = deploy.dockerfile_stages((deploy.project_dir() / "Dockerfile").read_text())[-1]
    base = client.images.get(final_stage[0][1].split()[0])
    rows += [("image size", f"{report.size_mb:.0f} MB"),
             ("of which the base image", f"{base.attrs['Size'] / 1e6:.0f} MB"),
             ("layers", str(report.layers)), ("user", report.user)]
    for entry in image.history():
        if entry.get("Size", 0) > 1e6:
            made_by = entry["CreatedBy"].split("#(nop)")[-1].strip()
            label = f"COPY ... {made_by.rsplit(' in ', 1)[-1]}" if made_by.startswith("COPY") else made_by or "(base image)"
            rows.append((f"  layer: {label[:48]}", f"{entry['Size'] / 1e6:.0f} MB"))
    biggest = client.containers.run(
        image.id, ["sh", "-c", "du -sm /opt/venv/lib/python3*/site-packages/* | sort -rn | head -6"],
        remove=True).decode().split("\n")
    for line in filter(None, biggest):
        size, path = line.split("\t")
        rows.append((f"  package: {path.rsplit('/', 1)[-1]}", f"{size} MB"))
    figures = _container_figures(client)
    rows.append(("docker run -> ready", f"{figures['ready']:.1f} s"))
    for name in ("server", "in-process"):
        label = "one row, p50/p99: container (HTTP)" if name == "server" else "one row, p50/p99: predict_proba here"
        rows.append((label, "{:.2f}/{:.2f} ms".format(*figures[name])))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
