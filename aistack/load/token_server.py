"""A loopback stand-in for a generation lane: streams OpenAI-style tokens at a fixed pace.

The load generator's benchmark drives it, so what it measures is the client alone: the server
never queues (every request streams at once), so any shortfall in concurrency or added latency
is the ladder's. Standard library only, run as a script: importing the aistack package would
gevent-patch this process too (aistack/__init__.py).

    python token_server.py PORT GAP_S

GET /stats answers {"peak": most streams at once, "served": streams ended, "late_s": how late
the last token of each stream went out against its schedule, on average} since the last /stats.
"""

from __future__ import annotations

import asyncio
import json
import sys

CHUNK = json.dumps({"choices": [{"index": 0, "delta": {"content": " tok"}}]})


class Lane:
    def __init__(self, gap_s: float):
        self.gap_s = gap_s
        self.in_flight = self.peak = self.served = 0
        self.late_s: list[float] = []  # per stream: its last token's delay past its schedule

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self.one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request on a kept-alive connection; False when the client closed it."""
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.strip():
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        length = int(headers.get("Content-Length", headers.get("content-length", "0")))
        body = await reader.readexactly(length) if length else b""
        if method == "GET" and path.startswith("/stats"):
            late = sum(self.late_s) / len(self.late_s) if self.late_s else 0.0
            stats = json.dumps({"peak": self.peak, "served": self.served, "late_s": late}).encode()
            self.peak, self.late_s = self.in_flight, []
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(stats), stats))
            await writer.drain()
            return True
        tokens = int(json.loads(body or b"{}").get("max_tokens", 16))
        await self.stream(writer, tokens)
        return True

    async def stream(self, writer: asyncio.StreamWriter, tokens: int) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(1, tokens + 1):  # paced from the start: a late wake-up does not add up
                await asyncio.sleep(max(0.0, start + i * self.gap_s - loop.time()))
                _chunk(writer, f"data: {CHUNK}\n\n")
                await writer.drain()
            self.late_s.append(loop.time() - start - tokens * self.gap_s)
            usage = {"choices": [], "usage": {"completion_tokens": tokens, "prompt_tokens": 1}}
            _chunk(writer, f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            self.served += 1
        finally:
            self.in_flight -= 1


def _chunk(writer: asyncio.StreamWriter, text: str) -> None:
    data = text.encode()
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))


async def main(port: int, gap_s: float) -> None:
    server = await asyncio.start_server(Lane(gap_s).handle, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
