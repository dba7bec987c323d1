"""The embedded Apache Kafka broker: one KRaft node (broker + controller) for a laptop, the demo and CI.

Apache Kafka's own jars come from Maven Central (``infra/kafka/pom.xml``, version pinned there),
copied by ``make setup`` into ``.hera-jars/kafka-<version>/``. This module checks Java, formats
the storage on first start only (data under ``<home>/data`` survives restarts), writes the
server and log4j2 configuration, starts ``kafka.Kafka`` in its own session and waits until the
broker answers a metadata request.

Every failure a user can meet (no Java, Java older than 17, jars not fetched, a port taken, a
broker that exits) is a ``ServiceError`` whose one-line message says what to do.

Optionally the broker gets a SASL/SCRAM listener with ACLs (``ScramSetup``): the secured-cluster
integration test uses it, and so can anyone who wants to try the security settings locally.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.devtools.local.process import ServiceError, ensure_free

REPO_ROOT = Path(__file__).resolve().parents[3]
POM = REPO_ROOT / "infra" / "kafka" / "pom.xml"
JAVA_MAJOR_MIN = 17
HEAP = "-Xms512m -Xmx1g"  # ample for one dev node's metadata and page-cache-backed logs on 24 GB
START_TIMEOUT_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 2.0
ADMIN_USER = "admin"


# ---------------------------------------------------------------- jars and java

def kafka_version() -> str:
    """The pinned broker version (``<kafka.version>`` in infra/kafka/pom.xml)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if match is None:
        raise ServiceError(f"no <kafka.version> in {POM}")
    return match.group(1).strip()


def jars_dir() -> Path:
    """Where ``make setup`` put the broker's jars (``HERA_KAFKA_JARS`` overrides)."""
    override = os.environ.get("HERA_KAFKA_JARS")
    return Path(override) if override else REPO_ROOT / ".hera-jars" / f"kafka-{kafka_version()}"


def check_jars() -> Path:
    path = jars_dir()
    if not (path / ".complete").exists() or not any(path.glob("kafka_2.13-*.jar")):
        raise ServiceError(f"Apache Kafka's jars are not in {path}: run `make setup` "
                           "(it fetches them from Maven Central with mvn)")
    return path


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not candidate or not Path(candidate).exists():
        raise ServiceError(f"java not found: the embedded Kafka broker needs Java {JAVA_MAJOR_MIN} or newer "
                           "(apt-get install openjdk-17-jre-headless), or set HERA_KAFKA_BOOTSTRAP "
                           "to an external cluster")
    return candidate


def java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        raise ServiceError(f"cannot tell the version of {java}: {out.strip()[:200]}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java() -> str:
    java = java_binary()
    major = java_major(java)
    if major < JAVA_MAJOR_MIN:
        raise ServiceError(f"{java} is Java {major}; the embedded Kafka broker needs Java {JAVA_MAJOR_MIN} "
                           "or newer (set JAVA_HOME), or set HERA_KAFKA_BOOTSTRAP to an external cluster")
    return java


# ---------------------------------------------------------------- configuration

@dataclass(frozen=True)
class ScramSetup:
    """A SASL_PLAINTEXT listener with SCRAM users and the standard authorizer (deny by default).

    ``users`` maps user name to password; ``ADMIN_USER`` is created as the super user that the
    broker itself uses between its listeners. The plain listener stays for the controller only.
    """

    mechanism: str = "SCRAM-SHA-512"
    admin_password: str = field(default_factory=lambda: uuid.uuid4().hex)
    users: dict[str, str] = field(default_factory=dict)


@dataclass
class BrokerHandle:
    port: int
    controller_port: int
    pid: int
    version: str

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def server_properties(home: Path, port: int, controller_port: int, scram: ScramSetup | None) -> str:
    listener = "SASL_PLAINTEXT" if scram else "PLAINTEXT"
    lines = [
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners={listener}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners={listener}://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        f"inter.broker.listener.name={listener}",
        f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{listener}:{listener}",
        f"log.dirs={home / 'data'}",
        # one node: every internal topic has one replica
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=8",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=4",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        # topics are created by `hera` with their partition count, compaction and retention
        "auto.create.topics.enable=false",
        "num.partitions=1",
        # sized for a 2-core machine
        "num.network.threads=2",
        "num.io.threads=4",
        "background.threads=4",
        "log.cleaner.threads=1",
        "log.cleaner.dedupe.buffer.size=33554432",
        "message.max.bytes=2097152",
    ]
    if scram:
        jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                f'username="{ADMIN_USER}" password="{scram.admin_password}";')
        lines += [
            f"sasl.enabled.mechanisms={scram.mechanism}",
            f"sasl.mechanism.inter.broker.protocol={scram.mechanism}",
            f"listener.name.sasl_plaintext.{scram.mechanism.lower()}.sasl.jaas.config={jaas}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            # the controller listener is loopback PLAINTEXT inside the node: its principal is ANONYMOUS
            f"super.users=User:{ADMIN_USER};User:ANONYMOUS",
            "allow.everyone.if.no.acl.found=false",
        ]
    return "\n".join(lines) + "\n"


LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log}
appender.file.filePattern = {log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.state.name = state.change.logger
logger.state.level = warn
"""


def write_config(home: Path, port: int, controller_port: int, scram: ScramSetup | None) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    props = home / "server.properties"
    props.write_text(server_properties(home, port, controller_port, scram))
    props.chmod(0o600)  # may hold the SCRAM admin password
    level = os.environ.get("HERA_KAFKA_LOG_LEVEL", "info")
    (home / "log4j2.properties").write_text(LOG4J2.format(log=home / "server.log", level=level))
    return props


def cluster_id(home: Path) -> str:
    path = home / "cluster.id"
    if path.exists():
        return path.read_text().strip()
    value = "-"
    while value.startswith("-"):  # as Kafka's own Uuid.randomUuid: an id starting with '-' reads as an option
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    path.write_text(value)
    return value


def format_storage(java: str, jars: Path, home: Path, props: Path, scram: ScramSetup | None) -> None:
    """Format the KRaft log directory once; later starts reuse it (topics and offsets survive)."""
    if (home / "data" / "meta.properties").exists():
        return
    cmd = [java, "-cp", f"{jars}/*", f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
           "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id(home)}", "-c", str(props)]
    if scram:
        for user, password in {ADMIN_USER: scram.admin_password, **scram.users}.items():
            cmd += ["--add-scram", f"{scram.mechanism}=[name={user},password={password}]"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ServiceError(f"formatting Kafka storage in {home / 'data'} failed: "
                           f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}")


# ---------------------------------------------------------------- start, probe

def start(home: Path, port: int, controller_port: int, *, scram: ScramSetup | None = None,
          timeout: float = START_TIMEOUT_SECONDS) -> BrokerHandle:
    """Start the broker (formatting its storage on first use) and wait until it serves metadata."""
    java = check_java()
    jars = check_jars()
    ensure_free("kafka", port, "HERA_EMBEDDED_KAFKA_PORT")
    ensure_free("kafka controller", controller_port, "HERA_EMBEDDED_KAFKA_CONTROLLER_PORT")
    props = write_config(home, port, controller_port, scram)
    format_storage(java, jars, home, props, scram)
    out_log = home / "stdout.log"
    heap = os.environ.get("HERA_KAFKA_HEAP", HEAP).split()
    with open(out_log, "ab") as out:
        proc = subprocess.Popen(
            [java, *heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
             f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}", "-cp", f"{jars}/*",
             "kafka.Kafka", str(props)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    handle = BrokerHandle(port=port, controller_port=controller_port, pid=proc.pid, version=kafka_version())
    wait_ready(handle, proc, home, timeout, scram)
    return handle


def wait_ready(handle: BrokerHandle, proc: subprocess.Popen[bytes], home: Path, timeout: float,
               scram: ScramSetup | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"the Kafka broker exited with {proc.returncode}: {last_error(home)} "
                               f"(log: {home / 'server.log'})")
        if probe(handle.bootstrap, scram):
            return
        time.sleep(0.2)
    proc.terminate()
    raise ServiceError(f"the Kafka broker did not answer within {timeout:.0f}s (log: {home / 'server.log'})")


def last_error(home: Path) -> str:
    """The last ERROR line of the broker's logs, for a one-line message."""
    for name in ("server.log", "stdout.log"):
        try:
            lines = (home / name).read_text(errors="replace").splitlines()
        except FileNotFoundError:
            continue
        errors = [line for line in lines if " ERROR " in line or "Exception" in line]
        if errors:
            return errors[-1][:300]
    return "no error logged"


def probe(bootstrap: str, scram: ScramSetup | None = None) -> bool:
    """True when the broker answers a metadata request (a listening port is not enough)."""
    import asyncio
    import logging
    import socket

    from aiokafka.admin import AIOKafkaAdminClient

    host, _, port = bootstrap.rpartition(":")
    try:  # cheap first: is anything listening yet?
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_SECONDS).close()
    except OSError:
        return False

    async def ask() -> bool:
        kwargs: dict[str, object] = {}
        if scram:
            kwargs = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": scram.mechanism,
                      "sasl_plain_username": ADMIN_USER, "sasl_plain_password": scram.admin_password}
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                                    request_timeout_ms=int(PROBE_TIMEOUT_SECONDS * 1000), **kwargs)
        try:
            await asyncio.wait_for(admin.start(), PROBE_TIMEOUT_SECONDS)
            cluster = await asyncio.wait_for(admin.describe_cluster(), PROBE_TIMEOUT_SECONDS)
            return bool(cluster.get("brokers"))
        except Exception:
            return False
        finally:
            await admin.close()

    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # a broker still starting is expected here, not an error to log
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:  # callable from inside a running event loop too
            return pool.submit(asyncio.run, ask()).result()
    finally:
        quiet.setLevel(level)
