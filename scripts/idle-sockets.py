#!/usr/bin/env python3
"""Opens N WebSocket connections to a GuruRMM server's /ws that never authenticate, holds them,
and prints the server's resident memory before and after (docs/PERFORMANCE.md).

Usage: scripts/idle-sockets.py HOST:PORT SERVER_PID [N=2000] [HOLD_SECONDS=5]

Bounded: at most N sockets (N <= 5000), all to the given loopback address, spread over source
addresses 127.0.0.1..127.0.0.32 so a per-address cap is visible as refusals. Needs only the
Python standard library.
"""

import asyncio
import base64
import os
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def open_one(host, port, source):
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = (await reader.readline()).decode().split()
    code = int(status[1]) if len(status) > 1 else 0
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    if code != 101:
        writer.close()
    return code, writer


async def main():
    addr, pid = sys.argv[1], int(sys.argv[2])
    n = min(int(sys.argv[3]) if len(sys.argv) > 3 else 2000, 5000)
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 5
    host, port = addr.rsplit(":", 1)
    port = int(port)
    before = rss_kb(pid)
    writers, refused = [], {}
    for i in range(n):
        code, w = await open_one(host, port, f"127.0.0.{i % 32 + 1}")
        if code == 101:
            writers.append(w)
        else:
            refused[code] = refused.get(code, 0) + 1
    await asyncio.sleep(hold)
    after = rss_kb(pid)
    open_count = len(writers)
    per = (after - before) / open_count if open_count else 0
    print(
        f"sockets open: {open_count}, refused: {refused or 'none'}; server RSS "
        f"{before} kB -> {after} kB: +{after - before} kB, {per:.1f} kB per open socket"
    )
    for w in writers:
        w.close()
    time.sleep(0.5)


asyncio.run(main())
