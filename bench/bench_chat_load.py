"""Chat latency on loopback: the noctis_rooms guard vs the stock server, in the same run.

Two real servers run side by side: the stock jupyter-collaboration + jupyterlab-chat
server, and the same server as ``noctis-lab lab --users`` runs it (users file, identity
provider, route gate and room guard on). Each gets ``--clients`` pycrdt clients (20 by
default) spread over ``--rooms`` rooms; each client posts a message every ``--interval``
seconds. Sending alternates between the two servers in phases of ``--phase`` seconds
until each has sent for ``--seconds`` (60 by default), so a change in machine load hits
both alike. After each phase the clients wait until every message has reached every
other client of its room (at most ``--drain`` seconds); a delivery not seen then, or no
longer in the client's copy of the room at the end of the phase, is lost (the stock
server's re-timing can delete a message after the clients have seen it).

Reported per server: message latency (send -> seen by each other client of the room)
p50/p95/p99/max, deliveries, messages lost, updates refused, the server's CPU time per
message; then the p99 ratio guard/stock (goal: at most 1.2x, 0 lost).

    .venv/bin/python bench/bench_chat_load.py                # 20 clients, 60 s each
    .venv/bin/python bench/bench_chat_load.py --seconds 10 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rooms"))

from rooms_client import USERS, ChatClient, Server

__all__ = ["LoadResult", "Sender", "percentile", "run_phase"]

EMPTY_CHAT = json.dumps({"messages": [], "users": {}, "attachments": {}, "metadata": {}})
GOAL_P99_RATIO = 1.2
_TAG = "bench|"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of ``values`` (nan when empty)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


class Receiver:
    """Records the first arrival of every message body tagged ``bench|...``."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.seen: dict[str, float] = {}
        self._sub = client.chat.ymessages.observe(self._on_change)

    def _on_change(self, event: Any) -> None:
        now = time.perf_counter()
        for d in event.delta:
            for item in d.get("insert", []):
                body = item.get("body", "") if hasattr(item, "get") else ""
                if isinstance(body, str) and body.startswith(_TAG) and body not in self.seen:
                    self.seen[body] = now

    def bodies(self) -> set[str]:
        """The bodies of the messages the client has now."""
        return {str(m.get("body")) for m in self.client.chat.ymessages if hasattr(m, "get")}


@dataclass
class LoadResult:
    """What one server did over all its phases."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    messages: int = 0
    deliveries: int = 0
    lost: int = 0
    #: of the lost: never seen before the drain ended / seen, then gone from the room
    late: int = 0
    vanished: int = 0
    refused: int = 0
    cpu_s: float = 0.0
    send_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Figures for the report (no per-delivery list)."""
        lat = self.latencies_ms
        d = {k: v for k, v in asdict(self).items() if k != "latencies_ms"}
        d.update(
            p50_ms=statistics.median(lat) if lat else float("nan"),
            p95_ms=percentile(lat, 95),
            p99_ms=percentile(lat, 99),
            max_ms=max(lat) if lat else float("nan"),
            cpu_ms_per_message=1000 * self.cpu_s / self.messages if self.messages else 0.0,
        )
        return d


@dataclass
class Sender:
    """The connected clients of one server and their receivers."""

    server: Server
    clients: list[ChatClient]
    receivers: list[Receiver]
    rooms: int

    def peers(self, i: int) -> list[Receiver]:
        """The receivers in client ``i``'s room, other than itself."""
        return [
            r for j, r in enumerate(self.receivers) if j != i and j % self.rooms == i % self.rooms
        ]


async def connect(
    stack: AsyncExitStack, server: Server, n_clients: int, n_rooms: int, prefix: str = "load"
) -> Sender:
    """``n_clients`` clients of ``server``, client ``i`` in room ``PREFIX/room{i % n_rooms}``."""
    users = list(USERS)
    clients = []
    for i in range(n_clients):
        room = f"{prefix}/room{i % n_rooms}.chat"
        clients.append(await stack.enter_async_context(ChatClient(server, room, users[i % 3])))
    return Sender(server, clients, [Receiver(c) for c in clients], n_rooms)


def _server_cpu_s(server: Server) -> float:
    """User + system CPU seconds of the server process so far."""
    assert server.proc is not None
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_phase(
    sender: Sender, result: LoadResult, seconds: float, interval: float, drain: float
) -> None:
    """Every client posts every ``interval`` s for ``seconds``; then wait for delivery."""
    sent: list[tuple[int, str, float]] = []
    cpu0 = _server_cpu_s(sender.server)
    start = time.perf_counter()
    step = 0
    while time.perf_counter() - start < seconds:
        for i, c in enumerate(sender.clients):
            t = time.perf_counter()
            body = f"{_TAG}{i}|{result.messages + len(sent)}|{t:.6f}"
            c.post(body)
            sent.append((i, body, t))
        step += 1
        await asyncio.sleep(max(0.0, start + step * interval - time.perf_counter()))
    result.send_s += time.perf_counter() - start

    def undelivered() -> int:
        return sum(1 for i, b, _ in sent for r in sender.peers(i) if b not in r.seen)

    deadline = time.perf_counter() + drain
    while undelivered() and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    result.cpu_s += _server_cpu_s(sender.server) - cpu0
    result.messages += len(sent)
    await asyncio.sleep(0.5)  # a message may vanish after it was seen (see the docstring)
    present = {id(r): r.bodies() for r in sender.receivers}
    for i, body, t in sent:
        for r in sender.peers(i):
            result.deliveries += 1
            got = r.seen.get(body)
            if got is None:
                result.lost += 1
                result.late += 1
            elif body not in present[id(r)]:
                result.lost += 1
                result.vanished += 1
            else:
                result.latencies_ms.append((got - t) * 1000)


@contextmanager
def _servers(workdir: Path, n_rooms: int) -> Iterator[dict[str, Server]]:
    servers = {
        "stock": Server(workdir / "stock", noctis=False),
        "guard": Server(workdir / "guard", noctis=True),
    }
    try:
        for srv in servers.values():
            (srv.root / "load").mkdir(parents=True)
            for i in range(n_rooms):
                (srv.root / "load" / f"room{i}.chat").write_text(EMPTY_CHAT)
            srv.start()
        yield servers
    finally:
        for srv in servers.values():
            srv.stop()


async def _bench(servers: dict[str, Server], args: argparse.Namespace) -> dict[str, LoadResult]:
    results = {name: LoadResult(name) for name in servers}
    async with AsyncExitStack() as stack:
        senders = {
            name: await connect(stack, srv, args.clients, args.rooms)
            for name, srv in servers.items()
        }
        await asyncio.sleep(1.0)  # joins and greetings settle
        n_phases = max(1, round(args.seconds / args.phase))
        for k in range(n_phases):
            order = list(senders) if k % 2 == 0 else list(reversed(senders))
            for name in order:
                await run_phase(
                    senders[name], results[name], args.seconds / n_phases, args.interval, args.drain
                )
                r = results[name]
                print(
                    f"  phase {k + 1}/{n_phases} {name}: {r.messages} messages, lost {r.lost}, "
                    f"load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
        for name, sender in senders.items():
            results[name].refused = sum(len(c.rejected()) for c in sender.clients)
    return results


def _report(results: dict[str, LoadResult], args: argparse.Namespace, load: list[float]) -> dict:
    stock, guard = results["stock"].summary(), results["guard"].summary()
    ratio = guard["p99_ms"] / stock["p99_ms"]
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "args": vars(args),
        "cpus": os.cpu_count(),
        "load_before_after": load,
        "stock": stock,
        "guard": guard,
        "p99_ratio": ratio,
        "goal_met": ratio <= GOAL_P99_RATIO and guard["lost"] == 0,
    }
    for label, r in (("stock jupyter-collaboration", stock), ("noctis_rooms guard", guard)):
        print(
            f"{label}: {r['messages']} messages, {r['deliveries']} deliveries: "
            f"p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
            f"max {r['max_ms']:.1f} ms, lost {r['lost']} (never seen {r['late']}, vanished "
            f"{r['vanished']}), refused {r['refused']}, "
            f"server CPU {r['cpu_ms_per_message']:.2f} ms/message"
        )
    print(
        f"p99 guard/stock {ratio:.2f}x (goal <= {GOAL_P99_RATIO}x, 0 lost with the guard): "
        f"{'met' if report['goal_met'] else 'NOT met'}; load average {load[0]:.2f} -> {load[1]:.2f}"
        f" on {os.cpu_count()} CPUs"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=60.0, help="sending time per server")
    p.add_argument("--clients", type=int, default=20, help="clients per server")
    p.add_argument("--rooms", type=int, default=4)
    p.add_argument("--interval", type=float, default=0.5, help="seconds between a client's posts")
    p.add_argument("--phase", type=float, default=10.0, help="seconds of one sending phase")
    p.add_argument("--drain", type=float, default=15.0, help="seconds to wait for delivery")
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = p.parse_args(argv)
    if not (
        0 < args.seconds <= 3600
        and 0 < args.clients <= 200
        and 0 < args.rooms <= args.clients
        and args.interval >= 0.05
        and args.phase > 0
        and args.drain >= 0
    ):
        p.error("need 0 < seconds <= 3600, 0 < rooms <= clients <= 200, interval >= 0.05")
    print(
        f"{args.clients} clients in {args.rooms} rooms per server, a post every "
        f"{args.interval:g} s, {args.seconds:g} s per server in {args.phase:g} s phases",
        flush=True,
    )
    load0 = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="noctis-bench-") as tmp,
        _servers(Path(tmp), args.rooms) as servers,
    ):
        results = asyncio.run(_bench(servers, args))
    report = _report(results, args, [load0, os.getloadavg()[0]])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
