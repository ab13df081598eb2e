"""Chat load on loopback: delivery latency and loss, with and without Noctis room rules.

20 clients (default) in 4 rooms each post a message every ``--interval`` seconds for
``--seconds``; every other client in the room must receive it. Reported per server:
latency p50/p99 from send to receipt, and messages lost (expected deliveries not seen
after a drain period). Run twice in the same process: the stock jupyter-collaboration
server (the peer) and the same server with ``noctis_rooms`` enforcing the rules.

    .venv/bin/python bench/bench_chat_load.py --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rooms"))

from rooms_client import USERS, ChatClient, Server
from tqdm import tqdm

EMPTY_CHAT = json.dumps({"messages": [], "users": {}, "attachments": {}, "metadata": {}})


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


class Receiver:
    """Records the first arrival of every message body tagged ``bench|sender|seq|t``."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.seen: dict[str, float] = {}
        self._sub = client.chat.ymessages.observe(self._on_change)

    def _on_change(self, event: Any) -> None:
        now = time.perf_counter()
        for d in event.delta:
            for item in d.get("insert", []):
                m = item.to_py() if hasattr(item, "to_py") else item
                body = m.get("body", "") if isinstance(m, dict) else ""
                if body.startswith("bench|") and body not in self.seen:
                    self.seen[body] = now


async def _run_load(
    server: Server, n_clients: int, n_rooms: int, seconds: float, interval: float
) -> dict[str, Any]:
    users = list(USERS)
    rooms = [f"load/room{i}.chat" for i in range(n_rooms)]
    clients: list[ChatClient] = []
    for i in range(n_clients):
        c = ChatClient(server, rooms[i % n_rooms], users[i % len(users)])
        await c.__aenter__()
        clients.append(c)
    receivers = [Receiver(c) for c in clients]
    sent: list[tuple[int, str, float]] = []  # (client index, body, t_send)
    start = time.perf_counter()
    n_steps = int(seconds / interval)
    for step in tqdm(range(n_steps), desc="  sending", unit="round", leave=False):
        for i, c in enumerate(clients):
            t = time.perf_counter()
            body = f"bench|{i}|{step}|{t:.6f}"
            c.post(body)
            sent.append((i, body, t))
        target = start + (step + 1) * interval
        await asyncio.sleep(max(0.0, target - time.perf_counter()))
    await asyncio.sleep(3.0)  # drain
    latencies: list[float] = []
    lost = 0
    expected = 0
    for i, body, t in sent:
        room = i % n_rooms
        for j, r in enumerate(receivers):
            if j == i or j % n_rooms != room:
                continue
            expected += 1
            got = r.seen.get(body)
            if got is None:
                lost += 1
            else:
                latencies.append((got - t) * 1000)
    refused = sum(len(c.rejected()) for c in clients)
    for c in clients:
        await c.__aexit__(None, None, None)
    return {
        "messages": len(sent),
        "deliveries": expected,
        "lost": lost,
        "refused": refused,
        "p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": _percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
    }


def _bench(noctis: bool, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="noctis-bench-") as tmp:
        server = Server(Path(tmp), noctis=noctis)
        (server.root / "load").mkdir(parents=True)
        for i in range(args.rooms):
            (server.root / "load" / f"room{i}.chat").write_text(EMPTY_CHAT)
        server.start()
        try:
            return asyncio.run(
                _run_load(server, args.clients, args.rooms, args.seconds, args.interval)
            )
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--seconds", type=float, default=60.0, help="sending time per server (default 60)"
    )
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--rooms", type=int, default=4)
    p.add_argument(
        "--interval", type=float, default=0.5, help="seconds between a client's messages"
    )
    args = p.parse_args(argv)
    if (
        not 0 < args.seconds <= 3600
        or not 0 < args.clients <= 200
        or not 0 < args.rooms <= args.clients
    ):
        p.error("need 0 < seconds <= 3600, 0 < clients <= 200, 0 < rooms <= clients")
    results = {}
    for name, noctis in (("stock jupyter-collaboration", False), ("noctis_rooms (enforced)", True)):
        print(
            f"{name}: {args.clients} clients, {args.rooms} rooms, {args.seconds:g} s ...",
            flush=True,
        )
        results[name] = r = _bench(noctis, args)
        print(
            f"  {r['messages']} messages, {r['deliveries']} deliveries: p50 {r['p50_ms']:.1f} ms, "
            f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms, lost {r['lost']}, "
            f"refused {r['refused']}",
            flush=True,
        )
    stock, ours = results["stock jupyter-collaboration"], results["noctis_rooms (enforced)"]
    print(
        f"ratio noctis/stock: p50 {ours['p50_ms'] / stock['p50_ms']:.2f}x, "
        f"p99 {ours['p99_ms'] / stock['p99_ms']:.2f}x  (goal: p99 < 100 ms, 0 lost)"
    )
    ok = ours["p99_ms"] < 100 and ours["lost"] == 0
    print("goal met" if ok else "goal NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
