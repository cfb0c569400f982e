"""A local cluster of registry nodes in one command (``make cluster``): N ``plugport serve``
nodes on PostgreSQL, S3 (moto's server unless ``--s3-endpoint-url``) and Redis, sharing one
index key, behind haproxy (round robin, health checks on ``/healthz``). Prints the URLs and
runs until Ctrl-C, then stops everything it started.

``--check`` starts it, publishes a plugin through node 1 (a namespace that needs review, so it
is approved there too), fetches it through the balancer and through node 2, checks both
nodes sign the index with the same key, then stops; exit 0 only when all of it worked.

Run: ``.venv/bin/python scripts/cluster.py [--nodes 2] [--port 8080] [--check]``.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import httpx
from _cluster import (
    DEFAULT_BUCKET,
    DEFAULT_DATABASE,
    DEFAULT_NODE_PORT,
    DEFAULT_PORT,
    DEFAULT_POSTGRES_URL,
    DEFAULT_REDIS_URL,
    Api,
    Cluster,
    ClusterError,
    Plan,
    Publisher,
    running,
)

from plugport.signing import key_id, load_private_key

BOLD, RESET = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")


def _say(line: str) -> None:
    print(line, flush=True)


def _show(cluster: Cluster) -> None:
    print(f"\n{BOLD}plugport registry cluster: {len(cluster.nodes)} node(s){RESET}")
    print(f"  balancer   {cluster.balancer_url}   (haproxy, round robin, checks /healthz)")
    for node in cluster.nodes:
        print(f"  {node.name:<10} {node.url}   (log {node.log})")
    kind = "moto, in memory" if cluster.s3_is_moto else "yours"
    print(f"  S3         {cluster.s3_endpoint_url}   ({kind}, bucket s3://{DEFAULT_BUCKET})")
    print(f"  database   {_without_password(cluster.database_url)}")
    print(f"  redis      {cluster.redis_url}")
    print(f"  index key  {cluster.index_key_file}   (every node signs with it)")
    token_file = cluster.state_dir / "admin-token"
    token_file.write_text(cluster.admin_token + "\n")
    token_file.chmod(0o600)
    print(f"  admin      token in {token_file}")
    print(
        f"  haproxy    {cluster.state_dir / 'haproxy.cfg'}, admin socket {cluster.haproxy_socket}"
    )
    url = cluster.balancer_url
    print(f"\ntry: curl -s {url}/healthz; export PLUGPORT_REGISTRY={url}")


def _without_password(url: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)


def check(cluster: Cluster, work: Path) -> list[str]:
    """Publish through node 1, approve there, read it back through the balancer and node 2.
    Returns the problems found (none: it all worked)."""
    node_a = cluster.nodes[0].url
    node_b = cluster.nodes[-1].url
    problems: list[str] = []
    publisher = Publisher(cluster, work, "clustercheck", trusted=False)
    name, version = "clustercheck.hello", "1.0.0"
    done = publisher.publish(node_a, "hello", version, "Says hello from every node.")
    _say(f"published {name} {version} through {cluster.nodes[0].name}: {done['status']}")
    Api(node_a, cluster.admin_token).call(
        "POST", f"/api/v1/review/{name}/{version}/approve", {"reason": "cluster check"}
    )
    _say(f"approved it through {cluster.nodes[0].name}")
    archive_sha = done.get("sha256")
    for label, url in (("the balancer", cluster.balancer_url), (cluster.nodes[-1].name, node_b)):
        detail = httpx.get(f"{url}/api/v1/plugins/{name}", timeout=30)
        if detail.status_code != 200 or detail.json().get("latest_version") != version:
            problems.append(f"{label}: GET /api/v1/plugins/{name} -> {detail.status_code}")
            continue
        found = httpx.get(f"{url}/api/v1/plugins", params={"q": "hello"}, timeout=30)
        names = [item["name"] for item in found.json().get("items", [])] if found.is_success else []
        if name not in names:
            problems.append(f"{label}: search for 'hello' does not find {name}")
        download = httpx.get(f"{url}/api/v1/plugins/{name}/versions/{version}/download", timeout=30)
        digest = hashlib.sha256(download.content).hexdigest()
        if download.status_code != 200 or (archive_sha and digest != archive_sha):
            problems.append(f"{label}: download -> {download.status_code}, sha256 {digest}")
        else:
            _say(f"{label} ({url}): detail, search and download ({len(download.content)} bytes, "
                 f"sha256 {digest[:12]}...) ok")  # fmt: skip
    expected = key_id(load_private_key(cluster.index_key_file).public_key())
    keys: set[str] = set()
    for node in cluster.nodes:
        index = httpx.get(f"{node.url}/api/v1/index", timeout=30)
        if index.status_code != 200:
            problems.append(f"{node.name}: GET /api/v1/index -> {index.status_code}")
            continue
        signed = index.json()
        keys.update(signature.get("keyid") for signature in signed.get("signatures", []))
        if name not in index.text:
            problems.append(f"{node.name}: the signed index does not list {name}")
    if keys != {expected}:
        problems.append(f"the nodes sign the index with {sorted(map(str, keys))}, not {expected}")
    else:
        _say(f"every node's signed index lists {name}, signed by the shared key {expected[:12]}...")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2, help="registry nodes (2)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the balancer's port (8080)")
    parser.add_argument(
        "--node-port", type=int, default=DEFAULT_NODE_PORT,
        help="node 1's port; the others follow (8101; 0: free ports)",
    )  # fmt: skip
    parser.add_argument(
        "--postgres-url", default=DEFAULT_POSTGRES_URL,
        help=f"the PostgreSQL server to create the database on ({DEFAULT_POSTGRES_URL})",
    )  # fmt: skip
    parser.add_argument("--database", default=DEFAULT_DATABASE, help=f"({DEFAULT_DATABASE})")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"({DEFAULT_REDIS_URL})")
    parser.add_argument(
        "--s3-endpoint-url",
        help="an S3-compatible server whose bucket to use (default: moto's, started here; AWS "
        "credentials then come from the environment)",
    )
    parser.add_argument("--bucket", default=DEFAULT_BUCKET, help=f"({DEFAULT_BUCKET})")
    parser.add_argument(
        "--keep-database", action="store_true",
        help="keep what the database holds (default: start it empty when S3 is moto's, which "
        "keeps nothing between runs)",
    )  # fmt: skip
    parser.add_argument(
        "--drop-database", action="store_true", help="drop the database when the cluster stops"
    )
    parser.add_argument(
        "--state-dir", type=Path,
        help="logs, the index key and the nodes' data dirs (default: a temp dir, removed)",
    )  # fmt: skip
    parser.add_argument("--index-key-file", type=Path, help="the shared index key (created)")
    parser.add_argument("--check", action="store_true", help="publish, fetch, stop; exit 0 if ok")
    args = parser.parse_args()
    if args.nodes < 1 or (args.check and args.nodes < 2):
        parser.error("--nodes must be at least 1 (2 with --check)")
    if args.keep_database and not (args.state_dir or args.index_key_file):
        # The index in a kept database was signed with the key of an earlier run.
        parser.error(
            "--keep-database needs the key it was signed with: --state-dir or --index-key-file"
        )
    plan = Plan(
        nodes=args.nodes,
        port=args.port,
        node_port=args.node_port,
        postgres_url=args.postgres_url,
        database=args.database,
        fresh_database=args.s3_endpoint_url is None and not args.keep_database,
        drop_database=args.drop_database,
        redis_url=args.redis_url,
        s3_endpoint_url=args.s3_endpoint_url,
        bucket=args.bucket,
        state_dir=args.state_dir,
        index_key_file=args.index_key_file,
        say=_say,
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # the same clean stop as Ctrl-C, for SIGTERM too

    signal.signal(signal.SIGTERM, stop)
    # Ctrl-C even when started in the background of a script (which starts with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    problems: list[str] = []
    try:
        _say(f"starting {args.nodes} registry node(s) behind haproxy...")
        with running(plan) as cluster:
            _show(cluster)
            print(f"(up in {time.monotonic() - started:.1f} s)")
            if not args.check:
                print("running; Ctrl-C stops every node, haproxy and the S3 server")
                while True:
                    time.sleep(3600)
            with tempfile.TemporaryDirectory(prefix="plugport-cluster-check-") as work:
                problems = check(cluster, Path(work))
            _say("stopping the cluster")
    except KeyboardInterrupt:
        print("\nstopped the cluster (every node, haproxy and the S3 server)")
        return 0
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    print("check failed" if problems else "check passed; the cluster is stopped")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
