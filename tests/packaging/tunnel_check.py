#!/usr/bin/python3
"""One end-to-end tunnel through a running ech3, for the packaging tests.

    tunnel_check.py --url ws://127.0.0.1:PORT/ --token TOKEN [--hold FILE]

Starts a TCP echo server on 127.0.0.1 (a random port) in this process, then
opens a WebSocket to ech3 with Sec-WebSocket-Protocol: TOKEN, sends the text
`CONNECT:127.0.0.1:<echo port>|hello`, expects the text `CONNECTED` and the
echo of `hello`, and checks that binary messages (1 byte to 256 KiB, random)
come back byte-exact.

With --hold FILE: after that first check it prints `HOLDING` and keeps the
tunnel open until FILE exists (at most 60 s), then checks the same tunnel
again and opens a second one: for "a reload does not drop tunnels".

Prints one line per check and exits 0 when all passed, 1 otherwise.
Uses /usr/bin/python3 with Debian's python3-websockets (10.x, asyncio API).
"""

import argparse
import asyncio
import os
import sys

import websockets

TIMEOUT = 10


async def echo_handler(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def recv_exact(ws, n):
    """Collects binary messages until n bytes arrived."""
    got = bytearray()
    while len(got) < n:
        msg = await asyncio.wait_for(ws.recv(), TIMEOUT)
        if isinstance(msg, str):
            raise AssertionError("text message in the data phase: %r" % msg[:80])
        got += msg
    return bytes(got)


async def open_tunnel(url, token, echo_port):
    ws = await asyncio.wait_for(
        websockets.connect(url, subprotocols=[token], max_size=None,
                           open_timeout=TIMEOUT, ping_interval=None),
        TIMEOUT)
    if ws.subprotocol != token:
        raise AssertionError("server did not select the token subprotocol: %r"
                             % ws.subprotocol)
    await ws.send("CONNECT:127.0.0.1:%d|hello" % echo_port)
    reply = await asyncio.wait_for(ws.recv(), TIMEOUT)
    if reply != "CONNECTED":
        raise AssertionError("expected CONNECTED, got %r" % (reply,))
    first = await recv_exact(ws, 5)
    if first != b"hello":
        raise AssertionError("first data echo: %r" % first)
    return ws


async def check_echo(ws, label):
    for size in (1, 1000, 65536, 262144):
        payload = os.urandom(size)
        await ws.send(payload)
        back = await recv_exact(ws, size)
        if back != payload:
            raise AssertionError("%s: %d bytes came back different" % (label, size))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--hold")
    args = ap.parse_args()

    server = await asyncio.start_server(echo_handler, "127.0.0.1", 0)
    echo_port = server.sockets[0].getsockname()[1]
    failed = 0

    def report(ok, what):
        nonlocal failed
        print("%s tunnel: %s" % ("ok  " if ok else "FAIL", what), flush=True)
        if not ok:
            failed += 1

    ws = None
    try:
        ws = await open_tunnel(args.url, args.token, echo_port)
        await check_echo(ws, "first tunnel")
        report(True, "CONNECT, CONNECTED, binary echo byte-exact")
    except Exception as e:  # noqa: BLE001 - any failure is reported
        report(False, "first tunnel: %s: %s" % (type(e).__name__, e))
        ws = None

    if args.hold and ws is not None:
        print("HOLDING", flush=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not os.path.exists(args.hold) and loop.time() < deadline:
            await asyncio.sleep(0.1)
        try:
            await check_echo(ws, "held tunnel")
            report(True, "the held tunnel still relays")
        except Exception as e:  # noqa: BLE001
            report(False, "held tunnel: %s: %s" % (type(e).__name__, e))
        try:
            ws2 = await open_tunnel(args.url, args.token, echo_port)
            await check_echo(ws2, "second tunnel")
            await ws2.close()
            report(True, "a new tunnel after the signal")
        except Exception as e:  # noqa: BLE001
            report(False, "second tunnel: %s: %s" % (type(e).__name__, e))

    if ws is not None:
        try:
            await asyncio.wait_for(ws.close(), TIMEOUT)
        except Exception:  # noqa: BLE001
            pass
    server.close()
    await server.wait_closed()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
