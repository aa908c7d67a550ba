"""The benchmark's own cheap HTTP/1.1 keep-alive client, so the load generator takes little of the CPU
it shares with the system under test."""
from __future__ import annotations

import asyncio
from collections import deque
from urllib.parse import urlsplit


class _Connection(asyncio.Protocol):
    """One keep-alive connection that carries one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._reset()

    def _reset(self) -> None:
        self._status = 0  # 0 while the status line and headers are still to come
        self._length = -1  # Content-Length, or -1 when chunked or delimited by the close
        self._chunked = False
        self._chunk_left = -1  # bytes (data and CRLF) left of the current chunk; -1 between chunks
        self._body = bytearray()

    def send(self, data: bytes, expect_body: bool) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._expect_body = expect_body
        self.transport.write(data)
        return self._waiter

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing asked for: the connection is out of step
            self.reusable = False
            self.transport.close()  # type: ignore[union-attr]
            return
        self._buf += data
        try:
            self._parse()
        except (ValueError, IndexError) as e:
            self.reusable = False
            self.transport.close()  # type: ignore[union-attr]
            self._fail(ConnectionError(f"malformed HTTP response: {e}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._waiter is None:
            return
        if self._status and self._length == -1 and not self._chunked:
            self._finish(bytes(self._body + self._buf))  # the body ran up to the close
        else:
            self._fail(ConnectionError(f"connection lost mid-request: {exc or 'closed by peer'}"))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _finish(self, body: bytes) -> None:
        waiter, self._waiter, status = self._waiter, None, self._status
        self._reset()
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def _parse(self) -> None:
        buf = self._buf
        while not self._status:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(buf[:end]).lower().split(b"\r\n")
            del buf[:end + 4]
            version, status = lines[0].split(b" ", 2)[:2]
            if 100 <= int(status) < 200:  # interim response: the real one follows
                continue
            self._status = int(status)
            keep_alive = version == b"http/1.1"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name == b"content-length":
                    self._length = int(value)
                elif name == b"transfer-encoding":
                    self._chunked = value.strip().endswith(b"chunked")
                elif name == b"connection":
                    value = value.strip()
                    keep_alive = value == b"keep-alive" or (keep_alive and value != b"close")
            if not keep_alive:
                self.reusable = False
            if self._chunked:
                self._length = -1
            elif not self._expect_body or self._status in (204, 304):
                self._length = 0
            elif self._length == -1:
                self.reusable = False  # body delimited by the close, finished in connection_lost
        if self._chunked:
            self._parse_chunks()
        elif self._length >= 0 and len(buf) >= self._length:
            body = bytes(buf[:self._length])
            del buf[:self._length]
            self._complete(body)

    def _parse_chunks(self) -> None:
        buf, body = self._buf, self._body
        while True:
            if self._chunk_left == -1:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
                if size == 0:
                    if buf.startswith(b"\r\n", end + 2):
                        del buf[:end + 4]
                    else:  # trailer fields, ended by an empty line
                        trailers_end = buf.find(b"\r\n\r\n", end)
                        if trailers_end < 0:
                            return
                        del buf[:trailers_end + 4]
                    self._complete(bytes(body))
                    return
                del buf[:end + 2]
                self._chunk_left = size + 2
            if len(buf) < self._chunk_left:
                return
            body += buf[:self._chunk_left - 2]
            del buf[:self._chunk_left]
            self._chunk_left = -1

    def _complete(self, body: bytes) -> None:
        if self._buf:  # bytes past the response: nothing was asked for them
            self.reusable = False
        if not self.reusable:
            self.transport.close()  # type: ignore[union-attr]
        self._finish(body)


class KeepAliveClient:
    """Requests to one `http://host:port` over at most `max_connections` kept-alive connections.
    With `reuse=False`, a new connection for every request, closed once its answer came: what a Go
    client does when its idle connections to the host (two by default) are taken."""

    def __init__(self, base_url: str, max_connections: int, *, reuse: bool = True) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"only http://host[:port] URLs are supported, not {base_url!r}")
        self._host, self._port, self._netloc = url.hostname, url.port or 80, url.netloc
        self._max = max_connections
        self._reuse = reuse
        self._count = 0
        self._idle: list[_Connection] = []
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...]], bytes] = {}

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """Send one request and return (status, body). Raises ConnectionError if the connection
        drops before the whole response came; the request may or may not have been processed."""
        key = (method, path, tuple(headers.items()) if headers else ())
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = self._head(*key)
        data = b"%s%d\r\n\r\n%s" % (head, len(body), body)
        conn = await self._acquire()
        try:
            return await conn.send(data, method != "HEAD")
        except BaseException:
            conn.reusable = False  # a cancelled request would leave its response in the pipe
            raise
        finally:
            self._release(conn)

    async def hold(self, count: int, path: str, *, at_once: int = 100) -> None:
        """Open `count` more connections, each answering one GET of `path`, and keep them idle:
        what a server pays per idle keep-alive connection. `at_once` bounds the connections
        opening together (the server's listen backlog)."""
        if self._count + count > self._max:
            raise ValueError(f"{self._count} + {count} connections exceed this client's {self._max}")
        head = self._head("GET", path, ()) + b"0\r\n\r\n"
        for start in range(0, count, at_once):
            opened = await asyncio.gather(*(self._open() for _ in range(min(at_once, count - start))))
            for status, _ in await asyncio.gather(*(conn.send(head, True) for conn in opened)):
                if status != 200:
                    raise ConnectionError(f"GET {path} answered {status}")
            self._idle.extend(opened)

    def _head(self, method: str, path: str, headers: tuple[tuple[str, str], ...]) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._netloc}"]
        lines += [f"{name}: {value}" for name, value in headers if name.lower() not in ("host", "content-length")]
        return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    async def _acquire(self) -> _Connection:
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
                self._count -= 1
            if self._count < self._max:
                return await self._open()
            waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # woken just as we were cancelled: pass it on
                    handed = waiter.result()
                    if handed is None:
                        self._wake(None)
                    else:
                        self._release(handed)
                raise
            if conn is not None and not conn.closed:
                return conn
            # None: a connection was dropped, so there is room to open one; go round again

    async def _open(self) -> _Connection:
        self._count += 1
        try:
            _, conn = await asyncio.get_running_loop().create_connection(_Connection, self._host, self._port)
        except BaseException:
            self._count -= 1
            self._wake(None)
            raise
        return conn

    def _release(self, conn: _Connection) -> None:
        if self._reuse and conn.reusable and not conn.closed:
            if not self._wake(conn):
                self._idle.append(conn)
            return
        if conn.transport is not None and not conn.closed:
            conn.transport.close()
        self._count -= 1
        self._wake(None)

    def _wake(self, conn: _Connection | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def close(self) -> None:
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
        self._count = 0
        await asyncio.sleep(0)  # let the transports run their close callbacks
