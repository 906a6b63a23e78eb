#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that delays every byte by a fixed time in each direction
(a far-away registry) without limiting throughput, and counts HTTP requests.

    latency_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS STATS_FILE

Each chunk read from one side is written to the other DELAY_MS later; chunks keep their
order and reading never waits for writing, so bandwidth is what loopback gives. The
number of HTTP request lines seen from clients is written to STATS_FILE on every
request (for per-operation counts: read it before and after).
"""

import asyncio
import sys
import time

METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ")


class Stats:
    def __init__(self, path):
        self.path = path
        self.requests = 0
        self.connections = 0

    def save(self):
        with open(self.path, "w") as f:
            f.write(f"{self.requests} {self.connections}\n")


async def pump(reader, writer, delay, stats=None, first_extra=0.0):
    queue = asyncio.Queue()
    extra = first_extra

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            if stats is not None:
                # Request lines start at the beginning of a chunk on keep-alive
                # connections in practice; counting them there is enough for a benchmark.
                for line in data.split(b"\r\n"):
                    if line.startswith(METHODS) and b" HTTP/1." in line:
                        stats.requests += 1
                stats.save()
            queue.put_nowait((time.monotonic() + delay + extra, data))
            extra = 0.0
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((0, None))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def main():
    listen, target, delay_ms, stats_path = sys.argv[1:5]
    delay = int(delay_ms) / 1000.0
    stats = Stats(stats_path)
    stats.save()

    async def handle(client_r, client_w):
        stats.connections += 1
        stats.save()
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", int(target))
        except OSError:
            client_w.close()
            return
        # The TCP handshake a real distance would cost: one round trip before the
        # first request arrives.
        await asyncio.gather(
            pump(client_r, server_w, delay, stats, first_extra=2 * delay),
            pump(server_r, client_w, delay),
        )
        for w in (client_w, server_w):
            try:
                w.close()
            except OSError:
                pass

    server = await asyncio.start_server(handle, "127.0.0.1", int(listen))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
