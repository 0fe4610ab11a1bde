"""A fleet of real processes for the fleet test: three ``tessera serve`` instances, a Redis and a
PostgreSQL cluster of their own, each on a free loopback port and each stoppable and restartable.

PostgreSQL is a private cluster made with ``initdb`` and run with ``pg_ctl`` as the ``postgres``
user (``runuser``) when the suite runs as root, as CI does; never the shared server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.servers import ROOT, free_port
from tests.services import unavailable


def postgres_bin() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        unavailable("PostgreSQL's initdb is not installed under /usr/lib/postgresql/*/bin")
    return found[-1].parent


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    def __init__(self, folder: Path) -> None:
        self.bin = postgres_bin()
        self.port = free_port()
        self.data = folder / "pgdata"
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(folder, user.pw_uid, user.pw_gid)
        subprocess.run(
            _as_postgres(
                [
                    *(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres"),
                    *("-A", "trust", "--no-sync", "-E", "UTF8"),
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *arguments: str) -> None:
        subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), *arguments]),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._ctl("-l", str(self.data / "server.log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        if shutil.which("redis-server") is None:
            unavailable("redis-server is not installed")
        self.port = free_port()
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        import redis

        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "the private Redis did not start"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class Link:
    """A TCP relay between one instance and Redis that can be cut (a partition: bytes vanish,
    connections stay open) and healed (its connections are closed, new ones pass)."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self.cut = False
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def heal(self) -> None:
        with self._lock:
            for each in self._open:
                with contextlib.suppress(OSError):
                    each.close()
            self._open.clear()
            self.cut = False

    def close(self) -> None:
        self.heal()
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self._upstream), timeout=1)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.cut:
                    target.sendall(data)
        except OSError:
            pass
        for each in (source, target):
            with contextlib.suppress(OSError):
                each.close()


@dataclass
class Instance:
    port: int
    log: Path
    link: Link
    process: subprocess.Popen[bytes] | None = None
    alive: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Fleet:
    folder: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    config: Path
    instances: list[Instance] = field(default_factory=list)

    def start_instance(self, instance: Instance) -> None:
        tessera = Path(sys.executable).parent / "tessera"
        command = [str(tessera), "serve", "--host", "127.0.0.1", "--port", str(instance.port)]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        environment["TESSERA_REDIS_URL"] = instance.link.url  # its own link, to be cut
        with instance.log.open("ab") as log:
            instance.process = subprocess.Popen(
                [*command, "--config", str(self.config)],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            assert instance.process.poll() is None, f"instance :{instance.port} exited"
            try:
                if httpx.get(instance.url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"instance :{instance.port} did not start"
            time.sleep(0.1)
        instance.alive = True

    def signal(self, instance: Instance, number: signal.Signals) -> None:
        instance.alive = False
        assert instance.process is not None
        instance.process.send_signal(number)

    def wait(self, instance: Instance, seconds: float = 30) -> int:
        assert instance.process is not None
        return instance.process.wait(timeout=seconds)


@contextmanager
def fleet(size: int, settings: str) -> Iterator[Fleet]:
    """``size`` instances sharing a private PostgreSQL and Redis; ``settings`` is more TOML."""
    folder = Path(tempfile.mkdtemp(prefix="tessera-fleet-"))
    folder.chmod(0o755)
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, True)
        postgres = PrivatePostgres(folder / "pg")
        postgres.start()
        stack.callback(_quietly, postgres.stop)
        redis = PrivateRedis(folder)
        redis.start()
        stack.callback(redis.stop)
        instances = [
            Instance(free_port(), folder / f"instance-{index}.log", Link(redis.port))
            for index in range(size)
        ]
        for instance in instances:
            stack.callback(instance.link.close)
        config = folder / "tessera.toml"
        # One public URL for the fleet, as behind a load balancer: every instance issues and
        # accepts tokens for the same issuer (the first instance's address stands for it).
        config.write_text(
            f'public_url = "{instances[0].url}"\n'
            f'database_url = "{postgres.url}"\nredis_url = "{redis.url}"\n'
            'secret_key = "fleet-test-secret-not-for-production-0123456789"\n'
            'password_profile = "cheapest"\nlog_level = "warning"\n' + settings
        )
        tessera = Path(sys.executable).parent / "tessera"
        subprocess.run(
            [str(tessera), "migrate", "--config", str(config)],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        running = Fleet(folder, postgres, redis, config)
        for instance in instances:
            running.instances.append(instance)
            stack.callback(_stop, instance)
        for instance in running.instances:
            running.start_instance(instance)
        yield running


def _stop(instance: Instance) -> None:
    process = instance.process
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _quietly(stop: object) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):
        stop()  # type: ignore[operator]
