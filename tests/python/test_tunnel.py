"""End-to-end tests of ech3 with the Python `websockets` 10.4 legacy client (Debian package).

Run: /usr/bin/python3 -m unittest discover -s tests/python -v   (from the repo root)
The binary is $ECH3_BIN or <repo>/build/ech3.
"""

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import websockets
import websockets.exceptions

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ECH3_BIN = os.environ.get("ECH3_BIN") or os.path.join(REPO_ROOT, "build", "ech3")
TOKEN = "py-e2e-token"


class Ech3Server:
    """The real binary, started on 127.0.0.1:0; stderr lines are collected in self.lines."""

    def __init__(self, token=TOKEN, workers=1, settings=None, env=None):
        if not os.path.exists(ECH3_BIN):
            raise RuntimeError("ech3 binary not found at %s (build it, or set ECH3_BIN)" % ECH3_BIN)
        args = [ECH3_BIN, "--listen", "127.0.0.1:0", "--workers", str(workers)]
        for k, v in (settings or {}).items():
            args += ["--set", "%s=%s" % (k, v)]
        child_env = {k: v for k, v in os.environ.items()
                     if not (k.startswith("ECH3_") and k != "ECH3_BIN") and k not in ("TOKEN", "PRIP", "PORT")}
        child_env["ECH3_EGRESS_ALLOW"] = "127.0.0.0/8,::1/128"
        if token is not None:
            child_env["TOKEN"] = token
        child_env.update(env or {})
        self.lines = []
        self.port = None
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(args, env=child_env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 8
        with self._cond:
            while self.port is None:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self._cond.wait(min(left, 0.1))
        if self.port is None:
            self.stop()
            raise RuntimeError("ech3 did not report 'listening on' (exit=%s):\n%s"
                               % (self.proc.returncode, "\n".join(self.lines)))

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                self.lines.append(line)
                m = re.search(r"listening on (\S+):(\d+)", line)
                if m and self.port is None and m.group(1) == "127.0.0.1":
                    self.port = int(m.group(2))
                self._cond.notify_all()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)
        # worker processes that outlived the master (pids from ech3[PID] prefixes)
        pids = set()
        for l in list(self.lines):
            m = re.search(r"ech3\[(\d+)\]", l)
            if m:
                pids.add(int(m.group(1)))
        pids.discard(self.proc.pid)
        for pid in pids:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    exe = f.read().split(b"\0")[0].decode()
                if os.path.basename(exe) == os.path.basename(ECH3_BIN):
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        if self.proc.stderr:
            self.proc.stderr.close()

    @property
    def uri(self):
        return "ws://127.0.0.1:%d/" % self.port


class Target:
    """asyncio TCP target on 127.0.0.1:0. mode: echo | sink | source(payload)."""

    def __init__(self, mode="echo", payload=b""):
        self.mode = mode
        self.payload = payload
        self.received = []  # one bytearray per connection
        self.eof = []       # one asyncio.Event per connection
        self.server = None
        self.port = None

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader, writer):
        buf = bytearray()
        ev = asyncio.Event()
        self.received.append(buf)
        self.eof.append(ev)
        try:
            if self.mode == "source":
                writer.write(self.payload)
                await writer.drain()
                writer.close()
                return
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                buf += data
                if self.mode == "echo":
                    writer.write(data)
                    await writer.drain()
            ev.set()
            writer.close()
        except (ConnectionError, OSError):
            ev.set()

    async def close(self):
        self.server.close()
        await self.server.wait_closed()

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port


def raw_http(port, request, timeout=5.0):
    """Send a hand-made request; return (status, headers dict lowercased, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request.encode("latin1"))
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                hdrs = {}
                for l in head.decode("latin1").split("\r\n")[1:]:
                    k, _, v = l.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                cl = hdrs.get("content-length")
                if cl is not None and len(body) >= int(cl):
                    break
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0]) if lines else None
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return (int(m.group(1)) if m else None), hdrs, body


def upgrade_request(protocol):
    lines = ["GET / HTTP/1.1", "Host: 127.0.0.1:1234", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    if protocol is not None:
        lines.append("Sec-WebSocket-Protocol: " + protocol)
    return "\r\n".join(lines) + "\r\n\r\n"


class TunnelTests(unittest.IsolatedAsyncioTestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Ech3Server()

    @classmethod
    def tearDownClass(cls):
        if cls.server:
            cls.server.stop()

    async def asyncSetUp(self):
        self.targets = []

    async def asyncTearDown(self):
        for t in self.targets:
            await t.close()

    async def target(self, mode="echo", payload=b""):
        t = await Target(mode, payload).start()
        self.targets.append(t)
        return t

    def connect(self, subprotocols=(TOKEN,)):
        return websockets.connect(self.server.uri, subprotocols=list(subprotocols) if subprotocols else None,
                                  max_size=None, open_timeout=5, close_timeout=2)

    async def open_tunnel(self, target, first=None):
        ws = await self.connect()
        cmd = "CONNECT:" + target + ("" if first is None else "|" + first)
        await ws.send(cmd)
        reply = await asyncio.wait_for(ws.recv(), 8)
        self.assertEqual(reply, "CONNECTED")
        return ws

    async def read_bytes(self, ws, n, timeout=10.0):
        got = bytearray()
        deadline = time.monotonic() + timeout
        while len(got) < n:
            msg = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
            self.assertIsInstance(msg, bytes, "expected binary payload, got text %r" % (msg,))
            got += msg
        return bytes(got)

    # --- auth ---
    async def test_token_accepted_and_echoed(self):
        async with self.connect() as ws:
            self.assertEqual(ws.subprotocol, TOKEN)

    async def test_token_accepted_as_one_entry(self):
        async with self.connect(subprotocols=("other", TOKEN)) as ws:
            self.assertEqual(ws.subprotocol, TOKEN)

    async def test_token_refused_401(self):
        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
            async with self.connect(subprotocols=("wrong-token",)):
                pass
        self.assertEqual(cm.exception.status_code, 401)

    def test_token_refused_json_body(self):
        status, hdrs, body = raw_http(self.server.port, upgrade_request("wrong-token"))
        self.assertEqual(status, 401)
        self.assertTrue(hdrs.get("content-type", "").startswith("application/json"), hdrs)
        self.assertEqual(json.loads(body.decode()), {"error": "unauthorized"})

    def test_get_root_200(self):
        status, hdrs, _ = raw_http(self.server.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(status, 200)
        self.assertTrue(hdrs.get("content-type", "").startswith("text/plain"), hdrs)

    # --- tunnel ---
    async def test_connect_binary_echo_byte_exact(self):
        echo = await self.target("echo")
        ws = await self.open_tunnel(echo.target)
        try:
            data = os.urandom(256 * 1024)
            for i in range(0, len(data), 32 * 1024):
                await ws.send(data[i:i + 32 * 1024])
            got = await self.read_bytes(ws, len(data))
            self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())
        finally:
            await ws.close()

    async def test_connect_with_first_data(self):
        sink = await self.target("sink")
        ws = await self.open_tunnel(sink.target, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        try:
            await ws.send(b"BODY")
            want = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY"
            deadline = time.monotonic() + 5
            while (not sink.received or len(sink.received[0]) < len(want)) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            self.assertEqual(bytes(sink.received[0]), want)
        finally:
            await ws.close()

    async def test_data_text_command(self):
        sink = await self.target("sink")
        ws = await self.open_tunnel(sink.target)
        try:
            await ws.send("DATA:hello ")
            await ws.send("DATA:world")
            deadline = time.monotonic() + 5
            while (not sink.received or len(sink.received[0]) < 11) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            self.assertEqual(bytes(sink.received[0]), b"hello world")
        finally:
            await ws.close()

    async def test_close_from_client_target_sees_eof(self):
        sink = await self.target("sink")
        ws = await self.open_tunnel(sink.target)
        await ws.send(b"bye")
        await ws.send("CLOSE")
        deadline = time.monotonic() + 5
        while not sink.eof and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.wait_for(sink.eof[0].wait(), 5)
        self.assertEqual(bytes(sink.received[0]), b"bye")
        with self.assertRaises(websockets.exceptions.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        self.assertEqual(ws.close_code, 1000)

    async def test_close_from_target(self):
        payload = os.urandom(10000)
        src = await self.target("source", payload)
        ws = await self.open_tunnel(src.target)
        got = bytearray()
        while True:
            msg = await asyncio.wait_for(ws.recv(), 5)
            if isinstance(msg, str):
                self.assertEqual(msg, "CLOSE")
                break
            got += msg
        self.assertEqual(bytes(got), payload)
        with self.assertRaises(websockets.exceptions.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        self.assertEqual(ws.close_code, 1000)

    async def test_refused_target_error(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        ws = await self.connect()
        await ws.send("CONNECT:127.0.0.1:%d" % port)
        msg = await asyncio.wait_for(ws.recv(), 8)
        self.assertTrue(msg.startswith("ERROR:"), msg)
        with self.assertRaises(websockets.exceptions.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        self.assertEqual(ws.close_code, 1000)


if __name__ == "__main__":
    unittest.main()
