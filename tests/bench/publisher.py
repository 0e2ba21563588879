"""Load generator for the benchmarks: publish each line of stdin as one message (QoS 1 by default).

A stand-in for ``mosquitto_pub -l`` where that is not installed. Keeps a window of
publishes in flight (one awaited publish at a time tops out near 4,600 msg/s: FACTS.md).

Run: ``python -m tests.bench.publisher --host H --port P --topic T < lines``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiomqtt

WINDOW = 100  # publishes in flight


async def publish_lines(host: str, port: int, topic: str, lines: list[bytes], *, qos: int = 1) -> None:
    async with aiomqtt.Client(host, port, protocol=aiomqtt.ProtocolVersion.V311,
                              max_inflight_messages=WINDOW) as client:
        for start in range(0, len(lines), WINDOW):
            async with asyncio.timeout(30):
                async with asyncio.TaskGroup() as tg:
                    for line in lines[start:start + WINDOW]:
                        tg.create_task(client.publish(topic, line, qos=qos))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--qos", type=int, choices=(0, 1), default=1)
    args = parser.parse_args()
    lines = [line.rstrip(b"\n") for line in sys.stdin.buffer if line.strip()]
    asyncio.run(publish_lines(args.host, args.port, args.topic, lines, qos=args.qos))


if __name__ == "__main__":
    main()
