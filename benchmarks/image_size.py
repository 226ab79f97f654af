"""Benchmark: the model server's image: build time (warm, and cold with --cold), size, layers, what fills it,
and how long the container takes from `docker run` to ready.

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


def _startup(client) -> float:
    """Seconds from `docker run` to a 200 on /v2/health/ready (key from a file: no Vault needed here)."""
    port = deploy.free_port()
    start = time.perf_counter()
    container = client.containers.run(
        deploy.IMAGE, ["sh", "-c", "echo benchmark-only-key > /tmp/key && exec glassbox serve"], detach=True,
        network_mode="host", read_only=True, tmpfs={"/tmp": "size=16m"},
        environment={"GLASSBOX_HOST": "127.0.0.1", "GLASSBOX_PORT": str(port), "GLASSBOX_API_KEY_FILE": "/tmp/key"})
    try:
        deploy.ContainerServer(container, port).wait_ready(timeout=120)
        return time.perf_counter() - start
    finally:
        container.remove(force=True)


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
    rows.append(("docker run -> ready", f"{_startup(client):.1f} s"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
