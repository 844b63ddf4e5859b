"""copy_sources against a real HTTP server on 127.0.0.1 and a real LocalStore."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from batchyard.domain.batches import Source
from batchyard.domain.errors import (
    HashMismatch,
    InvalidSource,
    SourceRefused,
    SourcesTooLarge,
    SourceUnavailable,
)
from batchyard.pipeline.addresses import AddressNotAllowed, Reach
from batchyard.pipeline.http_guard import guarded_client
from batchyard.pipeline.sources import CopiedSource, copy_sources, validate_source_url
from batchyard.storage.blobs import BlobStore

PREFIX = "batches/0b6f4c1e/input"
FILES = {
    "a.csv": b"id,name\n1,alpha\n",
    "b.csv": b"id,name\n2,beta\n",
    "c.csv": b"id,name\n3,gamma\n",
    "big.bin": os.urandom(300_000),
}
SLOW_SECONDS = 0.3
OPEN = Reach(allow_private=True)


@dataclass
class Site:
    """What the server serves and what it saw: paths hit, and when each request ran."""

    hits: Counter[str] = field(default_factory=Counter)
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, path: str) -> int:
        with self.lock:
            self.hits[path] += 1
            return self.hits[path]


class Handler(BaseHTTPRequestHandler):
    site: Site

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path  # absolute-form when the server acts as a proxy
        count = self.site.hit(path)
        _, route, name = [*path.split("/", 2), "", ""][:3]
        handler = getattr(self, f"route_{route.replace('-', '_')}", None)
        if handler is None or (name not in FILES and route not in ("to", "loop", "hang")):
            self.send_error(404)
        else:
            handler(name, count)

    def send_bytes(self, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_files(self, name: str, count: int) -> None:
        self.send_bytes(FILES[name])

    def route_slow(self, name: str, count: int) -> None:
        started = time.monotonic()
        time.sleep(SLOW_SECONDS)
        self.send_bytes(FILES[name])
        self.site.spans[name] = (started, time.monotonic())

    def route_flaky(self, name: str, count: int) -> None:
        if count == 1:
            self.send_error(500)
        else:
            self.send_bytes(FILES[name])

    def route_down(self, name: str, count: int) -> None:
        self.send_error(503)

    def route_truncated_once(self, name: str, count: int) -> None:
        """The first answer promises the whole file but stops halfway."""
        data = FILES[name]
        if count == 1:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
        else:
            self.send_bytes(data)

    def route_unsized(self, name: str, count: int) -> None:
        """No Content-Length: the body ends when the connection closes."""
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(FILES[name])
        self.close_connection = True

    def route_named(self, name: str, count: int) -> None:
        self.send_bytes(FILES[name], {"Content-Disposition": 'attachment; filename="orders.csv"'})

    def route_redirect(self, name: str, count: int) -> None:
        self.redirect(f"/files/{name}")

    def route_to(self, name: str, count: int) -> None:
        """Redirects anywhere: /to/<url-without-scheme-separator>, e.g. /to/http:127.0.0.1:80/x."""
        scheme, _, rest = name.partition(":")
        self.redirect(f"{scheme}://{rest}")

    def route_loop(self, name: str, count: int) -> None:
        self.redirect("/loop/")

    def route_hang(self, name: str, count: int) -> None:
        time.sleep(1.0)
        self.send_bytes(b"late")


@dataclass
class Server:
    url: str
    site: Site


@pytest.fixture
def server() -> Iterator[Server]:
    site = Site()
    handler = type("BoundHandler", (Handler,), {"site": site})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", site)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore.from_url((tmp_path / "blobs").as_uri())


class Log(list[str]):
    async def __call__(self, line: str) -> None:
        self.append(line)


async def copy(
    sources: list[Source],
    blobs: BlobStore,
    log: Log | None = None,
    *,
    parallel_streams: int = 3,
    max_bytes: int | None = None,
    reach: Reach = OPEN,
    file_root: Path | None = None,
    client: httpx.AsyncClient | None = None,
) -> list[CopiedSource]:
    return await copy_sources(
        sources,
        blobs,
        PREFIX,
        parallel_streams=parallel_streams,
        max_bytes=max_bytes,
        reach=reach,
        file_root=file_root,
        log=log if log is not None else Log(),
        client=client,
    )


def sha(name: str) -> str:
    return hashlib.sha256(FILES[name]).hexdigest()


async def stored(blobs: BlobStore, key: str) -> bytes:
    return b"".join([part async for part in blobs.read_stream(key)])


async def test_sources_are_copied_in_parallel(server: Server, blobs: BlobStore) -> None:
    names = ["a.csv", "b.csv", "c.csv"]
    log = Log()

    copied = await copy([Source(f"{server.url}/slow/{n}") for n in names], blobs, log)

    assert [c.key for c in copied] == [f"{PREFIX}/0", f"{PREFIX}/1", f"{PREFIX}/2"]
    for name, item in zip(names, copied, strict=True):
        assert await stored(blobs, item.key) == FILES[name]
        assert (item.size, item.sha256, item.name_hint) == (len(FILES[name]), sha(name), name)
    spans = server.site.spans.values()
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # all three overlapped
    assert log[0] == "Using 3 parallel streams"
    assert f"Fetching url {server.url}/slow/a.csv" in log
    fetched = next(line for line in log if line.startswith(f"Fetched {server.url}/slow/a.csv"))
    assert fetched.endswith(f"(sha256 {sha('a.csv')[:12]}…)")
    assert " MB in " in fetched


async def test_parallel_streams_bounds_how_many_run_at_once(
    server: Server, blobs: BlobStore
) -> None:
    log = Log()
    sources = [Source(f"{server.url}/files/{n}") for n in ["a.csv", "b.csv", "c.csv"]]

    await copy(sources, blobs, log, parallel_streams=1)

    assert log[0] == "Using 1 parallel stream"
    kinds = [line.split(" ")[0] for line in log[1:]]
    assert kinds == ["Fetching", "Fetched"] * 3  # one at a time: each ends before the next starts


async def test_given_sha256_is_verified(server: Server, blobs: BlobStore) -> None:
    copied = await copy([Source(f"{server.url}/files/a.csv", sha256=sha("a.csv"))], blobs)
    assert copied[0].sha256 == sha("a.csv")


async def test_hash_mismatch_names_the_url_and_stores_nothing(
    server: Server, blobs: BlobStore
) -> None:
    url = f"{server.url}/files/b.csv"
    sources = [Source(f"{server.url}/files/a.csv"), Source(url, sha256=sha("a.csv"))]

    with pytest.raises(HashMismatch, match=f"source {url} does not match its sha256") as raised:
        await copy(sources, blobs)

    assert raised.value.details["actual"] == sha("b.csv")
    assert not await blobs.exists(f"{PREFIX}/1")


async def test_404_fails_at_once_with_the_status(server: Server, blobs: BlobStore) -> None:
    url = f"{server.url}/files/nope.csv"
    with pytest.raises(SourceUnavailable) as raised:
        await copy([Source(url)], blobs)
    assert raised.value.message == f"source {url} returned 404 Not Found"
    assert server.site.hits["/files/nope.csv"] == 1


async def test_a_500_is_retried(server: Server, blobs: BlobStore) -> None:
    log = Log()
    copied = await copy([Source(f"{server.url}/flaky/a.csv")], blobs, log)

    assert await stored(blobs, copied[0].key) == FILES["a.csv"]
    assert server.site.hits["/flaky/a.csv"] == 2
    assert any(line.startswith(f"Retrying {server.url}/flaky/a.csv") for line in log)


async def test_a_source_that_stays_down_fails_after_three_attempts(
    server: Server, blobs: BlobStore
) -> None:
    url = f"{server.url}/down/a.csv"
    with pytest.raises(SourceUnavailable, match=r"503 Service Unavailable \(after 3 attempts\)"):
        await copy([Source(url)], blobs)
    assert server.site.hits["/down/a.csv"] == 3


async def test_a_broken_transfer_restarts_the_object(server: Server, blobs: BlobStore) -> None:
    copied = await copy([Source(f"{server.url}/truncated-once/big.bin")], blobs)

    assert server.site.hits["/truncated-once/big.bin"] == 2
    assert await stored(blobs, copied[0].key) == FILES["big.bin"]
    assert copied[0].sha256 == sha("big.bin")


async def test_a_read_timeout_is_retried_then_reported(server: Server, blobs: BlobStore) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.2)) as client:
        with pytest.raises(SourceUnavailable, match="could not be fetched"):
            await copy([Source(f"{server.url}/hang/")], blobs, client=client)
    assert server.site.hits["/hang/"] == 3


async def test_redirects_are_followed(server: Server, blobs: BlobStore) -> None:
    copied = await copy([Source(f"{server.url}/redirect/c.csv")], blobs)
    assert await stored(blobs, copied[0].key) == FILES["c.csv"]
    assert copied[0].name_hint == "c.csv"


async def test_too_many_redirects(server: Server, blobs: BlobStore) -> None:
    with pytest.raises(SourceUnavailable, match="redirects more than 5 times"):
        await copy([Source(f"{server.url}/loop/")], blobs)
    assert server.site.hits["/loop/"] == 6


async def test_a_redirect_to_another_scheme_is_refused(server: Server, blobs: BlobStore) -> None:
    with pytest.raises(SourceRefused, match="non-http"):
        await copy([Source(f"{server.url}/to/file:%2Fetc%2Fpasswd")], blobs)


async def test_loopback_sources_are_refused_without_allow_private(
    server: Server, blobs: BlobStore
) -> None:
    with pytest.raises(SourceRefused, match=r"127\.0\.0\.1, which is not a public address"):
        await copy([Source(f"{server.url}/files/a.csv")], blobs, reach=Reach())
    assert server.site.hits.total() == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/x",
        "http://[::1]/x",
        "http://10.0.0.8/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://100.64.0.1/x",
    ],
)
async def test_internal_addresses_are_refused(url: str, blobs: BlobStore) -> None:
    with pytest.raises(SourceRefused, match="not a public address"):
        await copy([Source(url)], blobs, reach=Reach())


@pytest.mark.parametrize(
    "inside", ["127.0.0.2", "0x7f.0.0.2", "[::1]", "169.254.169.254", "2130706434"]
)
async def test_a_redirect_to_a_private_address_is_refused(
    server: Server, blobs: BlobStore, inside: str
) -> None:
    """Only the test server's own address is trusted: the hop it redirects to is refused."""
    port = server.url.rpartition(":")[2]
    trusted = Reach.of(False, "127.0.0.1/32")
    with pytest.raises(SourceRefused, match="which is not a public address"):
        await copy(
            [Source(f"{server.url}/to/http:{inside}:{port}/files/a.csv")], blobs, reach=trusted
        )
    assert server.site.hits["/files/a.csv"] == 0


async def test_total_size_over_the_limit_leaves_no_objects(
    server: Server, blobs: BlobStore
) -> None:
    sources = [Source(f"{server.url}/unsized/big.bin"), Source(f"{server.url}/files/a.csv")]
    with pytest.raises(SourcesTooLarge):
        await copy(sources, blobs, parallel_streams=1, max_bytes=len(FILES["big.bin"]) + 5)
    assert not await blobs.exists(f"{PREFIX}/0")
    assert not await blobs.exists(f"{PREFIX}/1")


async def test_a_declared_size_over_the_limit_is_refused_before_download(
    server: Server, blobs: BlobStore
) -> None:
    with pytest.raises(SourcesTooLarge):
        await copy([Source(f"{server.url}/files/big.bin")], blobs, max_bytes=1000)
    assert not await blobs.exists(f"{PREFIX}/0")


async def test_unsized_body_within_the_limit(server: Server, blobs: BlobStore) -> None:
    url = f"{server.url}/unsized/big.bin"
    copied = await copy([Source(url)], blobs, max_bytes=len(FILES["big.bin"]))
    assert copied[0].size == len(FILES["big.bin"])


async def test_content_disposition_names_the_source(server: Server, blobs: BlobStore) -> None:
    copied = await copy([Source(f"{server.url}/named/a.csv")], blobs)
    assert copied[0].name_hint == "orders.csv"


async def test_passwords_in_urls_stay_out_of_the_log(server: Server, blobs: BlobStore) -> None:
    log = Log()
    url = server.url.replace("http://", "http://user:hunter2@") + "/files/a.csv?sig=s3cret"
    await copy([Source(url)], blobs, log)
    assert "hunter2" not in "\n".join(log) and "s3cret" not in "\n".join(log)
    assert f"Fetching url {server.url.replace('http://', 'http://***@')}/files/a.csv?…" in log


async def test_file_sources_inside_the_root(tmp_path: Path, blobs: BlobStore) -> None:
    root = tmp_path / "sources"
    root.mkdir()
    (root / "a.csv").write_bytes(FILES["a.csv"])

    copied = await copy([Source((root / "a.csv").as_uri(), sha("a.csv"))], blobs, file_root=root)

    assert await stored(blobs, copied[0].key) == FILES["a.csv"]
    assert copied[0].name_hint == "a.csv"


async def test_file_sources_outside_the_root_are_refused(tmp_path: Path, blobs: BlobStore) -> None:
    root = tmp_path / "sources"
    root.mkdir()
    outside = tmp_path / "secret.csv"
    outside.write_bytes(b"secret")
    (root / "link.csv").symlink_to(outside)

    for url in [outside.as_uri(), (root / "link.csv").as_uri(), f"{root.as_uri()}/../secret.csv"]:
        with pytest.raises(SourceRefused, match="outside"):
            await copy([Source(url)], blobs, file_root=root)
    with pytest.raises(SourceRefused, match="not allowed here"):
        await copy([Source((root / "a.csv").as_uri())], blobs, file_root=None)


async def test_a_missing_file_source(tmp_path: Path, blobs: BlobStore) -> None:
    with pytest.raises(SourceUnavailable, match="cannot be read"):
        await copy([Source((tmp_path / "nope.csv").as_uri())], blobs, file_root=tmp_path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://bucket/key.csv", "s3:// sources are not enabled"),
        ("ftp://example.com/a.csv", "unsupported scheme"),
        ("example.com/a.csv", "unsupported scheme"),
        ("https:///a.csv", "has no host"),
        ("http://example.com:99999/a.csv", "not a valid URL"),
        ("http://[::1/a.csv", "not a valid URL"),
        ("file:///data/a.csv", "not allowed here"),
    ],
)
def test_validate_source_url_refuses(url: str, message: str) -> None:
    with pytest.raises(InvalidSource, match=message):
        validate_source_url(url, file_root=None)


@pytest.mark.parametrize("url", ["https://example.com/a.csv", "HTTP://example.com/a.csv.gz"])
def test_validate_source_url_accepts(url: str) -> None:
    validate_source_url(url, file_root=None)


async def test_every_source_is_checked_before_any_is_fetched(
    server: Server, blobs: BlobStore
) -> None:
    with pytest.raises(SourceRefused):
        await copy([Source(f"{server.url}/files/a.csv"), Source("s3://b/k")], blobs)
    assert server.site.hits.total() == 0


async def test_the_guarded_client_checks_the_address_it_connects_to(server: Server) -> None:
    """The name is resolved and checked inside the connection (httpx's pool is replaced by one
    with the guarded backend: this fails if httpx stops using it)."""
    url = server.url.replace("127.0.0.1", "localhost") + "/files/a.csv"
    timeout = httpx.Timeout(5.0)
    async with guarded_client(Reach(), timeout=timeout) as client:
        with pytest.raises(AddressNotAllowed, match=r"localhost is .*, which is not a public"):
            await client.get(url)
    assert server.site.hits.total() == 0
    async with guarded_client(Reach.of(False, "127.0.0.0/8, ::1/128"), timeout=timeout) as client:
        response = await client.get(url)
    assert (response.status_code, response.content) == (200, FILES["a.csv"])
    assert response.request.headers["host"] == f"localhost:{server.url.rpartition(':')[2]}"
