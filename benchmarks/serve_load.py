"""Load test of `rewardherd serve` on loopback: micro-batching on vs off.

Builds a 5-member tiny ensemble (untrained, local, seconds), then for each mode
starts the server in a subprocess on 127.0.0.1 (a port the OS picks), runs N
concurrent clients for a fixed time against POST /get_reward, and reports
requests/s, p50/p99 latency and errors (which must be 0). Both modes run in the
same invocation, so the throughput ratio compares like with like.

Memory: before the timed load, each server's resident set size (RSS, from /proc) is
read, a fixed number of requests (``--rss-requests``, default 2000) is sent, and RSS
is read again, so growth per request is visible (a leak shows as MiB that grow with
the count; rerun with a larger count to tell warm-up from growth).

    python benchmarks/serve_load.py                      # 32 clients, 10 s per mode
    python benchmarks/serve_load.py --clients 32 --duration 20 --json out.json

Exit status 1 if any request failed. Clients and server share the machine's
cores; say which machine the figures came from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# ---------------------------------------------------------------- the ensemble
def build_tiny_ensemble(out: Path, n_members: int) -> Path:
    """An untrained n-member ensemble over one tiny backbone (seeded score heads),
    with standardization statistics from scoring a few texts; saved to ``out``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from rewardherd import core
    from rewardherd.models import Ensemble, Manifest, Member, MemberInfo
    from rewardherd.models.tiny import build_saved_backbones

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    (backbone,) = build_saved_backbones(out.parent / "backbones", [0])
    members = []
    for i in range(n_members):
        tok = AutoTokenizer.from_pretrained(backbone)
        torch.manual_seed(300 + i)
        model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1, dtype=torch.float32)
        model.config.pad_token_id = tok.pad_token_id
        model.eval()
        info = MemberInfo(name=f"member_{i}", path=f"member_{i}", backbone=str(backbone), finetune_seed=i)
        members.append(Member(info, model, tok))
    ens = Ensemble(members, Manifest(kind="finetune", members=[m.info for m in members], max_length=128))
    texts = make_queries(64, random.Random(1))
    raw = ens.score([""] * len(texts), texts)
    mean, std = core.member_statistics(raw)
    for m, mu, sd in zip(members, mean, std, strict=True):
        m.info.standardization = {"mean": float(mu), "std": float(sd), "n": len(texts)}
    return ens.save(out)


WORDS = ("good", "great", "happy", "kind", "bad", "awful", "sad", "cold", "the", "quick", "brown", "fox")


def make_queries(n: int, rng: random.Random) -> list[str]:
    """Distinct prompt+response strings of 6 to 16 words (no two score as duplicates)."""
    return [f"item {rng.randrange(10**9)}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16)))
            for _ in range(n)]


# ------------------------------------------------------------------ the server
def serve_child(args) -> None:
    """Subprocess entry: load, bind 127.0.0.1:0, print the port, serve until SIGINT."""
    import torch
    import uvicorn
    from transformers.utils import logging as hf_logging

    from rewardherd.models import Ensemble
    from rewardherd.serve import ServeConfig, create_app

    torch.set_num_threads(args.torch_threads)
    hf_logging.disable_progress_bar()
    ens = Ensemble.load(args.serve)
    config = ServeConfig(batching=args.batching == "on", max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                         max_queue=max(256, 4 * args.clients))
    app = create_app(ens, config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
    server.run(sockets=[sock])


class ServerProcess:
    def __init__(self, ensemble_dir: Path, batching: bool, args):
        cmd = [sys.executable, __file__, "--serve", str(ensemble_dir), "--batching", "on" if batching else "off",
               "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
               "--torch-threads", str(args.torch_threads), "--clients", str(args.clients)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError(f"server did not start (got {line!r})")
        self.url = f"http://127.0.0.1:{int(line)}"

    def rss_mib(self) -> float | None:
        """Resident set size of the server process in MiB (Linux /proc), or None."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server process has used (Linux /proc), or None."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------ the clients
class Connection:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams.

    Clients share the machine with the server, so they must be cheap: with httpx
    the client process used as much CPU as the server did on a 2-core machine,
    which capped the measured throughput.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def post_json(self, path: str, payload) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        body = json.dumps(payload).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        data = await self.reader.readexactly(length)
        if close:
            await self.close()
        return int(status_line.split()[1]), data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def run_load(url: str, clients: int, duration: float, items: int, rng: random.Random) -> dict:
    """N clients, each sending its next request as soon as the last one returns."""
    host, port = url.removeprefix("http://").split(":")
    conns = [Connection(host, int(port)) for _ in range(clients)]
    latencies: list[float] = []
    errors: list[str] = []
    for c in conns:  # connect and warm up, not measured
        await c.post_json("/get_reward", {"query": make_queries(items, rng)})
    payloads = [[{"query": make_queries(items, rng)} for _ in range(64)] for _ in range(clients)]
    deadline = time.perf_counter() + duration

    async def client(c: int):
        k = 0
        while time.perf_counter() < deadline:
            payload = payloads[c][k % 64]
            k += 1
            t0 = time.perf_counter()
            try:
                status, data = await conns[c].post_json("/get_reward", payload)
                if status != 200 or len(json.loads(data)["rewards"]) != items:
                    errors.append(f"{status}: {data[:200]!r}")
                    continue
            except Exception as e:
                errors.append(repr(e))
                await conns[c].close()
                continue
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - start
    for c in conns:
        await c.close()
    return {"latencies": latencies, "errors": errors, "elapsed_s": elapsed}


async def run_fixed(url: str, clients: int, total: int, items: int, rng: random.Random) -> int:
    """Send exactly ``total`` requests from ``clients`` concurrent clients; returns the errors."""
    host, port = url.removeprefix("http://").split(":")
    conns = [Connection(host, int(port)) for _ in range(clients)]
    payloads = [{"query": make_queries(items, rng)} for _ in range(64)]
    counter = iter(range(total))
    errors = 0

    async def client(c: int):
        nonlocal errors
        for k in counter:
            try:
                status, _ = await conns[c].post_json("/get_reward", payloads[k % 64])
                errors += status != 200
            except Exception:
                errors += 1
                await conns[c].close()

    await asyncio.gather(*(client(c) for c in range(clients)))
    for c in conns:
        await c.close()
    return errors


def measure_rss(server: ServerProcess, args, rng: random.Random) -> dict:
    """Server RSS before and after a fixed number of requests."""
    asyncio.run(run_fixed(server.url, args.clients, min(64, args.rss_requests), args.items, rng))  # warm up
    before = server.rss_mib()
    errors = asyncio.run(run_fixed(server.url, args.clients, args.rss_requests, args.items, rng))
    after = server.rss_mib()
    growth = None if before is None or after is None else after - before
    return {"requests": args.rss_requests, "rss_before_mib": before, "rss_after_mib": after,
            "rss_growth_mib": growth, "errors": errors}


def summarize(rounds: list[dict], items: int) -> dict:
    lat = sorted(x for r in rounds for x in r["latencies"])
    elapsed = sum(r["elapsed_s"] for r in rounds)
    errors = [e for r in rounds for e in r["errors"]]

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    cpu = [r["server_cpu_s"] for r in rounds]
    cpu_ms = 1000 * sum(cpu) / len(lat) if lat and None not in cpu else float("nan")
    return {"requests": len(lat), "errors": len(errors), "server_cpu_ms_per_request": cpu_ms, "first_errors": errors[:3], "elapsed_s": elapsed,
            "requests_per_s": len(lat) / elapsed, "pairs_per_s": len(lat) * items / elapsed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "round_requests_per_s": [len(r["latencies"]) / r["elapsed_s"] for r in rounds]}


def batching_stats(url: str) -> dict:
    import httpx

    return httpx.get(f"{url}/v1/info", timeout=30).json()["batching"]


def _call_stats(b: dict) -> dict:
    return {"scoring_calls": b["calls"], "mean_pairs_per_call": b["mean_pairs_per_call"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=32, help="concurrent clients")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per mode (split into rounds)")
    p.add_argument("--rounds", type=int, default=5, help="alternating on/off rounds")
    p.add_argument("--items", type=int, default=1, help="queries per request")
    p.add_argument("--members", type=int, default=5, help="ensemble members")
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads in the server")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rss-requests", type=int, default=2000,
                   help="requests sent between the two RSS readings of each server (0: skip)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)  # subprocess entry
    p.add_argument("--batching", choices=["on", "off"], default="on", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve is not None:
        serve_child(args)
        return 0

    with tempfile.TemporaryDirectory(prefix="serve_load-") as tmp:
        t0 = time.perf_counter()
        ens_dir = build_tiny_ensemble(Path(tmp) / "ens", args.members)
        print(f"built a {args.members}-member tiny ensemble in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        # Both servers run for the whole benchmark and the modes alternate in short
        # rounds (on, off, on, off, ...), so drifting background load hits both alike.
        servers = {mode: ServerProcess(ens_dir, mode == "on", args) for mode in ("on", "off")}
        try:
            rng = random.Random(args.seed)
            memory = ({mode: measure_rss(server, args, rng) for mode, server in servers.items()}
                      if args.rss_requests > 0 else {})
            rounds: dict[str, list] = {"on": [], "off": []}
            for _ in range(args.rounds):
                for mode, server in servers.items():
                    cpu0 = server.cpu_seconds()
                    r = asyncio.run(run_load(server.url, args.clients, args.duration / args.rounds, args.items, rng))
                    cpu1 = server.cpu_seconds()
                    r["server_cpu_s"] = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
                    rounds[mode].append(r)
            results = {mode: {**summarize(rounds[mode], args.items), **_call_stats(batching_stats(server.url))}
                       for mode, server in servers.items()}
        finally:
            for server in servers.values():
                server.stop()
    ratio = results["on"]["requests_per_s"] / results["off"]["requests_per_s"]
    machine = f"{platform.machine()}, {os.cpu_count()} CPU(s), {platform.python_implementation()} {platform.python_version()}"
    print(f"\nserve_load: {args.members} members, {args.clients} clients x {args.duration:.0f}s per mode, "
          f"{args.items} query/request, max_batch {args.max_batch}, max_wait {args.max_wait_ms} ms, "
          f"torch threads {args.torch_threads}; {machine}")
    print(f"{'batching':<10}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'pairs/call':>12}"
          f"{'server CPU ms/req':>19}")
    for mode, r in results.items():
        print(f"{mode:<10}{r['requests']:>10}{r['requests_per_s']:>10.1f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}"
              f"{r['errors']:>8}{r['mean_pairs_per_call']:>12.2f}{r['server_cpu_ms_per_request']:>19.2f}")
    per_round = [a / b for a, b in zip(results["on"]["round_requests_per_s"], results["off"]["round_requests_per_s"],
                                       strict=True)]
    print(f"throughput ratio (batching on / off): {ratio:.2f}x  (per round: "
          f"{', '.join(f'{x:.2f}' for x in per_round)})")
    for mode, mem in memory.items():
        if mem["rss_before_mib"] is None:
            print(f"server RSS ({mode}): not available on this platform")
            continue
        print(f"server RSS (batching {mode}): {mem['rss_before_mib']:.1f} MiB before, {mem['rss_after_mib']:.1f} MiB "
              f"after {mem['requests']} requests ({mem['rss_growth_mib']:+.1f} MiB; {mem['errors']} errors)")
    errors = sum(r["errors"] for r in results.values()) + sum(m["errors"] for m in memory.values())
    for mode, r in results.items():
        for e in r["first_errors"]:
            print(f"  error ({mode}): {e}", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "machine": machine,
                                         "results": results, "ratio": ratio, "memory": memory}, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
