"""A local cluster of registry nodes, started and stopped in one place for ``scripts/cluster.py``
(``make cluster``) and ``benchmarks/cluster.py``: N ``plugport serve`` processes on one
PostgreSQL database, one S3 bucket (moto's server unless another endpoint is given), one Redis
and one index signing key, behind a real ``haproxy`` that balances round robin and checks
``/healthz``.

:func:`running` starts everything or nothing: whatever was started is stopped again when the
block ends, also when starting fails half way. Every process it starts leads its own process
group (stopped with SIGTERM, then SIGKILL) and gets SIGTERM should this process die first, so
none outlives the cluster. A missing piece is a :class:`ClusterError` whose message says what is
missing and what to do; no secret goes into a message or a log.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import functools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from plugport import signing
from plugport.authoring import pack_plugin, sign_archive

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE = "plugport_cluster"
DEFAULT_BUCKET = "plugport-cluster"
DEFAULT_PORT = 8080
DEFAULT_NODE_PORT = 8101
# Fake credentials for moto's S3; never real ones. Another S3 endpoint gets the environment's.
MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PR_SET_PDEATHSIG = 1


class ClusterError(Exception):
    """A piece the cluster needs is missing or failed; the message says which and what to do."""


@dataclass(frozen=True)
class Plan:
    """What to start. Ports 0 mean free ones; ``s3_endpoint_url`` None means moto's server."""

    nodes: int = 2
    port: int = DEFAULT_PORT
    node_port: int = DEFAULT_NODE_PORT
    """The first node's port; node i listens on ``node_port + i`` (all free ones when 0)."""
    postgres_url: str = DEFAULT_POSTGRES_URL
    """A PostgreSQL server to create the cluster's database on (connecting as this URL)."""
    database: str = DEFAULT_DATABASE
    fresh_database: bool = False
    """Drop the database first: moto keeps nothing between runs, so rows of an earlier run
    would name archives that are gone, signed with a key that is gone."""
    drop_database: bool = False
    """Drop the database when the cluster stops (benchmarks, tests)."""
    redis_url: str = DEFAULT_REDIS_URL
    s3_endpoint_url: str | None = None
    bucket: str = DEFAULT_BUCKET
    state_dir: Path | None = None
    """Logs, the index key, the nodes' data dirs; a temp dir removed at the end when None."""
    index_key_file: Path | None = None
    """The key every node signs the index with; default ``index.key`` in the state dir."""
    start_services: bool = True
    """Start PostgreSQL and Redis (as ``.ci/run`` does) when they are down and this may."""
    node_env: Mapping[str, str] = field(default_factory=dict)
    """More environment for the nodes (e.g. a raised ``PLUGPORT_RATE_LIMIT_PER_MINUTE``)."""
    say: Callable[[str], None] = lambda _line: None
    """Where progress lines go (``print`` in the script, nowhere in the benchmark)."""


@dataclass
class Node:
    index: int
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def name(self) -> str:
        return f"node{self.index + 1}"


@dataclass
class Cluster:
    """A running cluster: where everything answers, and the admin token (kept out of output)."""

    balancer_url: str
    nodes: list[Node]
    s3_endpoint_url: str
    s3_is_moto: bool
    database_url: str
    redis_url: str
    index_key_file: Path
    state_dir: Path
    admin_token: str
    haproxy_socket: Path
    haproxy_log: Path
    haproxy_pid: int
    s3_pid: int | None
    """None when the S3 server is not ours."""
    node_env: dict[str, str]

    @property
    def node_urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def haproxy_command(self, command: str) -> str:
        """One command on haproxy's admin socket (``show stat``, ``disable server ...``)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.haproxy_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def server_states(self) -> dict[str, str]:
        """Each node's state as the balancer sees it (``UP``, ``DOWN``, ``MAINT``...)."""
        states = {}
        lines = self.haproxy_command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "registry_nodes" and row.get("svname", "").startswith("node"):
                states[row["svname"]] = row.get("status", "?")
        return states

    def serve_from(self, count: int) -> None:
        """Let the balancer send requests to the first ``count`` nodes only (the others go to
        maintenance, as an operator draining them would), and wait until it does."""
        for node in self.nodes:
            action = "enable" if node.index < count else "disable"
            self.haproxy_command(f"{action} server registry_nodes/{node.name}")
        _wait_for(
            lambda: all(
                (state == "UP") == (int(name[4:]) <= count)
                for name, state in self.server_states().items()
            ),
            f"haproxy to serve from {count} node(s)",
        )


# --- processes ----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the process that started it dies, so a cluster
    whose script was killed (kill -9) leaves no node behind."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(command: Sequence[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 only prctl: safe before exec
            env=dict(env),
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to its process group, SIGKILL after STOP_TIMEOUT_S; reaped either way."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):  # anything it left in its group
        os.killpg(process.pid, signal.SIGKILL)


def _tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return "(no output)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _wait_for(
    ready: Callable[[], bool],
    what: str,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise ClusterError(
                f"{what}: the process exited ({process.returncode}); its last output "
                f"({log}):\n{_tail(log) if log else ''}"
            )
        with contextlib.suppress(httpx.HTTPError, OSError):
            if ready():
                return
        if time.monotonic() > deadline:
            shown = f"; its last output ({log}):\n{_tail(log)}" if log else ""
            raise ClusterError(f"timed out after {timeout_s:.0f} s waiting for {what}{shown}")
        time.sleep(0.1)


def _healthy(url: str) -> bool:
    return httpx.get(f"{url}/healthz", timeout=2).status_code == 200


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _check_port(port: int, what: str, option: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            reason = "is taken" if exc.errno == errno.EADDRINUSE else f"cannot be used: {exc}"
            raise ClusterError(
                f"port {port} on 127.0.0.1 ({what}) {reason}; choose another with {option} "
                "(0 picks a free one)"
            ) from exc


def _ports(plan: Plan) -> tuple[int, list[int]]:
    if plan.port:
        _check_port(plan.port, "the balancer", "--port")
    if plan.node_port:
        node_ports = [plan.node_port + i for i in range(plan.nodes)]
        for i, port in enumerate(node_ports):
            if port == plan.port:
                raise ClusterError(f"node{i + 1}'s port {port} is the balancer's; move --node-port")
            _check_port(port, f"node{i + 1}", "--node-port")
    else:
        node_ports = [free_port() for _ in range(plan.nodes)]
    return plan.port or free_port(), node_ports


# --- the pieces ---------------------------------------------------------------------------------


def find_haproxy() -> str:
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)),
        None,
    )
    if found is None:
        raise ClusterError(
            "haproxy is not installed: `make cluster` installs Debian's haproxy when run as root "
            "with apt-get; otherwise install it yourself (apt-get install haproxy, "
            "or your system's package)"
        )
    return found


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in {"127.0.0.1", "localhost", "::1"}


def _postgres_up(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(_libpq_url(url), connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def _started(
    plan: Plan, announce: str, command: list[str], up: Callable[[], bool], what: str
) -> bool:
    """Run the command that starts a local service (as ``.ci/run`` does) and wait until it
    answers; False when it does not."""
    plan.say(announce)
    subprocess.run(command, capture_output=True, check=False, cwd=tempfile.gettempdir())
    try:
        _wait_for(up, what)
    except ClusterError:
        return False
    return True


def _start_postgres(plan: Plan) -> None:
    """Start the local cluster as ``.ci/run`` does when it is down; else say what is missing."""
    if _postgres_up(plan.postgres_url):
        return
    where = urlsplit(plan.postgres_url)
    shown = f"{where.hostname}:{where.port or 5432}"
    port = where.port or 5432
    clusters = [  # Debian's clusters configured for this port
        conf.parent
        for conf in sorted(Path("/etc/postgresql").glob("*/*/postgresql.conf"))
        if re.search(rf"^\s*port\s*=\s*{port}\b", conf.read_text(errors="replace"), re.M)
    ]
    ctl = shutil.which("pg_ctlcluster")
    if plan.start_services and _local(plan.postgres_url) and ctl and clusters:
        version, name = clusters[0].parent.name, clusters[0].name
        command = [ctl, "--skip-systemctl-redirect", version, name, "start"]
        started = (
            f"PostgreSQL is down at {shown}; starting it (pg_ctlcluster {version} {name} start)"
        )
        if _started(plan, started, command, lambda: _postgres_up(plan.postgres_url), "PostgreSQL"):
            return
    raise ClusterError(
        f"PostgreSQL is not reachable at {shown} and could not be started here: start it "
        "(Debian: pg_ctlcluster VERSION main start) or name another server with --postgres-url"
    )


def _redis_up(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _start_redis(plan: Plan) -> None:
    if _redis_up(plan.redis_url):
        return
    where = urlsplit(plan.redis_url)
    shown = f"{where.hostname}:{where.port or 6379}"
    server = shutil.which("redis-server")
    if plan.start_services and _local(plan.redis_url) and server:
        command = [
            server,
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(where.port or 6379),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        started = f"Redis is down at {shown}; starting it (redis-server --daemonize yes)"
        if _started(plan, started, command, lambda: _redis_up(plan.redis_url), "Redis"):
            return
    raise ClusterError(
        f"Redis is not reachable at {shown} and could not be started here: start it "
        "(redis-server) or name another with --redis-url"
    )


def _database(plan: Plan) -> str:
    """The cluster's database on the PostgreSQL server (created if missing); its URL."""
    from sqlalchemy import create_engine, make_url, text

    if not _DATABASE_NAME.fullmatch(plan.database):
        raise ClusterError(f"--database {plan.database!r}: lowercase letters, digits and _ only")
    engine = create_engine(plan.postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if plan.fresh_database:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{plan.database}" WITH (FORCE)'))
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": plan.database}
            ).scalar()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{plan.database}"'))
    finally:
        engine.dispose()
    return (
        make_url(plan.postgres_url)
        .set(database=plan.database)
        .render_as_string(hide_password=False)
    )


def _drop_database(plan: Plan) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(plan.postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{plan.database}" WITH (FORCE)'))
    finally:
        engine.dispose()


def _moto(stack: contextlib.ExitStack, state: Path) -> tuple[str, int]:
    server = Path(sys.executable).with_name("moto_server")
    if not server.exists():
        raise ClusterError(
            "moto's S3 server is not installed (pip install 'moto[server]'; `make cluster` uses "
            "the venv, which has it); or give an S3 endpoint with --s3-endpoint-url"
        )
    port = free_port()
    log = state / "s3.log"
    process = _spawn([str(server), "-H", "127.0.0.1", "-p", str(port)], log, os.environ)
    stack.callback(_stop, process)
    url = f"http://127.0.0.1:{port}"
    _wait_for(
        lambda: httpx.get(f"{url}/moto-api/", timeout=2).status_code < 500,
        "moto's S3 server",
        process=process,
        log=log,
    )
    return url, process.pid


def _bucket(endpoint: str, bucket: str, env: Mapping[str, str]) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    client = session.client("s3", endpoint_url=endpoint)
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        try:
            client.create_bucket(Bucket=bucket)
        except (ClientError, BotoCoreError) as exc:
            raise ClusterError(f"cannot create the bucket {bucket} at {endpoint}: {exc}") from exc
    except BotoCoreError as exc:
        raise ClusterError(f"the S3 endpoint {endpoint} does not answer: {exc}") from exc


def _plugport(
    args: Sequence[str], env: Mapping[str, str], what: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "plugport", *args],
        capture_output=True,
        text=True,
        check=False,
        env=dict(env),
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise ClusterError(f"{what} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done


HAPROXY_CFG = """\
# Written by scripts/_cluster.py for a local cluster; deploy/registry/haproxy.cfg is the one
# to adapt for a real deployment (same balancing and health checks).
global
    maxconn 2000
    stats socket {socket} mode 600 level admin

defaults
    mode http
    option forwardfor
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    retries 2
    option redispatch

frontend registry
    bind 127.0.0.1:{port}
    default_backend registry_nodes

backend registry_nodes
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect status 200
    default-server check inter 1s fall 2 rise 1
{servers}
"""


def _haproxy(
    stack: contextlib.ExitStack, state: Path, port: int, nodes: Sequence[Node]
) -> tuple[Path, Path, int]:
    haproxy = find_haproxy()
    # haproxy takes a stats socket path of at most 97 bytes, and a state directory under a
    # test's tmp_path is longer than that: the socket gets a short private directory of its own.
    sockets = Path(tempfile.mkdtemp(prefix="plugport-haproxy-"))
    stack.callback(shutil.rmtree, sockets, True)
    sock = sockets / "stats.sock"
    config = state / "haproxy.cfg"
    servers = "\n".join(f"    server {node.name} {urlsplit(node.url).netloc}" for node in nodes)
    config.write_text(HAPROXY_CFG.format(socket=sock, port=port, servers=servers))
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    if checked.returncode != 0:  # its alerts name the line and the reason
        alerts = [line for line in checked.stderr.splitlines() if "[ALERT]" in line]
        raise ClusterError(f"haproxy refuses {config}:\n" + "\n".join(alerts))
    log = state / "haproxy.log"
    process = _spawn([haproxy, "-db", "-f", str(config)], log, os.environ)
    stack.callback(_stop, process)
    url = f"http://127.0.0.1:{port}"
    _wait_for(lambda: _healthy(url), "haproxy to answer /healthz", process=process, log=log)
    return sock, log, process.pid


def _node_env(plan: Plan, database_url: str, s3: str, key: Path, moto: bool) -> dict[str, str]:
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "PLUGPORT_DATABASE_URL": database_url,
        "PLUGPORT_BLOB_URL": f"s3://{plan.bucket}/registry",
        "PLUGPORT_S3_ENDPOINT_URL": s3,
        "PLUGPORT_REDIS_URL": plan.redis_url,
        "PLUGPORT_INDEX_KEY_FILE": str(key),
        **(MOTO_CREDENTIALS if moto else {}),
        **plan.node_env,
    }
    if moto:  # no profile or config file may put other credentials first
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
            env.pop(name, None)
    return env


@contextlib.contextmanager
def running(plan: Plan) -> Iterator[Cluster]:
    """Start the whole cluster; stop all of it when the block ends (or starting fails)."""
    from plugport.index import load_or_create_registry_key

    if plan.nodes < 1:
        raise ClusterError("--nodes must be at least 1")
    find_haproxy()
    port, node_ports = _ports(plan)
    with contextlib.ExitStack() as stack:
        if plan.state_dir is None:
            state = Path(tempfile.mkdtemp(prefix="plugport-cluster-"))
            stack.callback(shutil.rmtree, state, ignore_errors=True)
        else:
            state = plan.state_dir.absolute()
            state.mkdir(parents=True, exist_ok=True)
        _start_postgres(plan)
        _start_redis(plan)
        database_url = _database(plan)
        if plan.drop_database:
            stack.callback(_drop_database, plan)
        key = (plan.index_key_file or state / "index.key").absolute()
        load_or_create_registry_key(key)
        moto = plan.s3_endpoint_url is None
        s3, s3_pid = _moto(stack, state) if moto else (str(plan.s3_endpoint_url), None)
        env = _node_env(plan, database_url, s3, key, moto)
        _bucket(s3, plan.bucket, env)
        # Once, before any node starts: two nodes migrating a fresh database at the same moment
        # could race. This is also what an operator runs on a new release.
        admin_env = {**env, "PLUGPORT_DATA_DIR": str(state / "admin")}
        migrated = _plugport(["registry", "migrate"], admin_env, "plugport registry migrate")
        plan.say(f"migrated {plan.database}: {migrated.stdout.strip()}")
        created = _plugport(
            ["registry", "create-admin"], admin_env, "plugport registry create-admin"
        )
        token = re.search(r"^ppt_\S+$", created.stdout, re.M)
        if token is None:
            raise ClusterError("plugport registry create-admin printed no token")
        nodes = []
        for index, node_port in enumerate(node_ports):
            log = state / f"node{index + 1}.log"
            node_env = {
                **env,
                "PLUGPORT_HOST": "127.0.0.1",
                "PLUGPORT_PORT": str(node_port),
                "PLUGPORT_DATA_DIR": str(state / f"node{index + 1}"),
            }
            process = _spawn([sys.executable, "-m", "plugport", "serve"], log, node_env)
            stack.callback(_stop, process)
            nodes.append(Node(index, f"http://127.0.0.1:{node_port}", log, process))
        for node in nodes:
            _wait_for(
                functools.partial(_healthy, node.url),
                f"{node.name} ({node.url}) to answer /healthz",
                process=node.process,
                log=node.log,
            )
        sock, haproxy_log, haproxy_pid = _haproxy(stack, state, port, nodes)
        cluster = Cluster(
            balancer_url=f"http://127.0.0.1:{port}",
            nodes=nodes,
            s3_endpoint_url=s3,
            s3_is_moto=moto,
            database_url=database_url,
            redis_url=plan.redis_url,
            index_key_file=key,
            state_dir=state,
            admin_token=token.group(0),
            haproxy_socket=sock,
            haproxy_log=haproxy_log,
            haproxy_pid=haproxy_pid,
            s3_pid=s3_pid,
            node_env=env,
        )
        _wait_for(
            lambda: set(cluster.server_states().values()) == {"UP"},
            "haproxy's health checks to pass on every node",
        )
        yield cluster


# --- publishing through the API ---------------------------------------------------------------

PLUGIN_CODE = """\
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return "{label} says hello to " + name
"""


class Publisher:
    """A namespace on the cluster with a fresh signing key and a publish token; builds small
    plugins packed and signed the way ``plugport publish`` does, and uploads them."""

    def __init__(self, cluster: Cluster, root: Path, namespace: str, *, trusted: bool) -> None:
        self.cluster = cluster
        self.root = root
        self.namespace = namespace
        root.mkdir(parents=True, exist_ok=True)
        self.key = root / f"{namespace}.key"
        signing.write_keypair(self.key, signing.generate_private_key())
        owner = f"owner@{namespace}.example"
        admin = self.admin(cluster.balancer_url)
        admin.call(
            "POST", "/api/v1/namespaces", {"name": namespace, "owner": owner, "trusted": trusted}
        )
        admin.call(
            "POST",
            f"/api/v1/namespaces/{namespace}/keys",
            {"public_key_pem": Path(f"{self.key}.pub").read_text()},
        )
        made = admin.call(
            "POST",
            "/api/v1/tokens",
            {"identity": owner, "scopes": [f"publish:{namespace}"], "description": "cluster"},
        )
        self.token: str = made["token"]

    def admin(self, url: str) -> Api:
        return Api(url, self.cluster.admin_token)

    def build(self, short: str, version: str, description: str) -> tuple[Path, Path]:
        name = f"{self.namespace}.{short}"
        source = self.root / "src" / f"{name}-{version}-{secrets.token_hex(4)}"
        source.mkdir(parents=True)
        (source / "main.py").write_text(PLUGIN_CODE.replace("{label}", f"{name} {version}"))
        (source / "plugport.toml").write_text(
            f'name = "{name}"\nversion = "{version}"\nentry = "main:Main"\n'
            f'display_name = "{short}"\ndescription = "{description}"\n'
            "[contributes]\nhooks = { greet = 0 }\n"
        )
        archive = pack_plugin(source, self.root / "dist").result.path
        signature, _, _ = sign_archive(archive, self.key)
        return archive, signature

    def publish(self, url: str, short: str, version: str, description: str) -> dict[str, Any]:
        """Upload ``namespace.short`` ``version`` to the node (or balancer) at ``url``."""
        archive, signature = self.build(short, version, description)
        name = f"{self.namespace}.{short}"
        response = httpx.post(
            f"{url}/api/v1/plugins/{name}/versions",
            files={
                "archive": (archive.name, archive.read_bytes(), "application/zip"),
                "signature": (signature.name, signature.read_bytes()),
            },
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=120,
        )
        if response.status_code != 201:
            raise ClusterError(
                f"publishing {name} {version} to {url}: HTTP {response.status_code} "
                f"{response.text[:300]}"
            )
        body: dict[str, Any] = response.json()
        return body


class Api:
    """JSON calls with a token; any answer but 2xx is a :class:`ClusterError`."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(
            method, f"{self.url}{path}", json=body, headers=self.headers, timeout=60
        )
        if not response.is_success:
            raise ClusterError(
                f"{method} {self.url}{path}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response.json() if response.content else None
