"""Helpers for tests/netns/run.sh (run with /usr/bin/python3, websockets 10.4).

  echo PORTS ACCEPT_LOG READY_FILE
      TCP echo server on every address (0.0.0.0 and ::) at each of the
      comma-separated PORTS; appends
      "accept <local-address> <local-port>" to ACCEPT_LOG for each
      connection and creates READY_FILE once listening.
  client WS_PORT TOKEN TARGET
      Opens ws://127.0.0.1:WS_PORT/ with Sec-WebSocket-Protocol TOKEN, sends
      CONNECT:TARGET, prints "<reply>\t<echo>" where echo is "ok" when a
      binary payload came back unchanged after CONNECTED, "bad" when not,
      "-" when the tunnel was not opened.
"""

import asyncio
import os
import socket
import sys

import websockets


def local_address(sockname):
    host = sockname[0]
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]
    return host, sockname[1]


async def echo_server(ports, accept_log, ready_file):
    log = open(accept_log, "a", buffering=1)

    async def handle(reader, writer):
        host, lport = local_address(writer.get_extra_info("sockname"))
        log.write("accept %s %d\n" % (host, lport))
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    servers = []
    for port in ports:
        servers.append(await asyncio.start_server(handle, "0.0.0.0", port, reuse_address=True))
        # IPv6 only on this socket: IPv4 is served by the one above.
        sock6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock6.bind(("::", port))
        servers.append(await asyncio.start_server(handle, sock=sock6))
    with open(ready_file, "w") as f:
        f.write("ready\n")
    await asyncio.gather(*(s.serve_forever() for s in servers))


async def client(ws_port, token, target):
    uri = "ws://127.0.0.1:%d/" % ws_port
    echo = "-"
    try:
        async with websockets.connect(uri, subprotocols=[token], open_timeout=5,
                                      close_timeout=2, max_size=None) as ws:
            await ws.send("CONNECT:" + target)
            reply = await asyncio.wait_for(ws.recv(), 15)
            if reply == "CONNECTED":
                payload = os.urandom(4096)
                await ws.send(payload)
                got = b""
                while len(got) < len(payload):
                    msg = await asyncio.wait_for(ws.recv(), 5)
                    if isinstance(msg, str):
                        break
                    got += msg
                echo = "ok" if got == payload else "bad"
            elif isinstance(reply, bytes):
                reply = "BINARY:" + reply[:40].hex()
    except asyncio.TimeoutError:
        reply = "EXC:timeout"
    except Exception as exc:  # reported, not raised: the shell asserts
        reply = "EXC:%s:%s" % (type(exc).__name__, exc)
    reply = " ".join(str(reply).split())
    print("%s\t%s" % (reply, echo), flush=True)


def main(argv):
    if len(argv) == 5 and argv[1] == "echo":
        asyncio.run(echo_server([int(p) for p in argv[2].split(",")], argv[3], argv[4]))
        return 0
    if len(argv) == 5 and argv[1] == "client":
        asyncio.run(client(int(argv[2]), argv[3], argv[4]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
