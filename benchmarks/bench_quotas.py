"""Cost of a quota check per call: buckets in the gateway's memory vs in a shared Redis.

    python benchmarks/bench_quotas.py [--calls 20000]

One tenant with audio and character quotas; each call is what a unary request costs
the gateway: an admission with its charge, then the correction after the work. Redis:
a redis-server started here on loopback (a LAN hop adds its round trip).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine, percentile  # noqa: E402
from parlons.services.gateway.quota_store import RedisStore  # noqa: E402
from parlons.services.gateway.quotas import QuotaManager  # noqa: E402
from parlons.services.gateway.tenants import Quotas, Tenant  # noqa: E402
from redis_helpers import RedisServer  # noqa: E402


async def _per_call(manager: QuotaManager, calls: int) -> list[float]:
    tenant = Tenant("bench", quotas=Quotas(audio_seconds_per_minute=1e12, characters_per_minute=10**15))
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await manager.charge_audio(tenant, 10.0)
        await manager.adjust_audio(tenant, 0.5)
        times.append(time.perf_counter() - started)
    await manager.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    print(f"quota check benchmark, {time.strftime('%Y-%m-%d')}, {machine()}, {args.calls} calls each")
    server = RedisServer(Path(tempfile.mkdtemp(prefix="parlons-bench-redis-")))
    try:
        rows = {"memory": asyncio.run(_per_call(QuotaManager(), args.calls)),
                "redis (loopback)": asyncio.run(_per_call(QuotaManager(RedisStore(server.url)), args.calls))}
    finally:
        server.stop()
    for name, times in rows.items():
        print(f"  {name:18s} p50 {percentile(times, 50) * 1e6:7.1f} us   p99 {percentile(times, 99) * 1e6:7.1f} us")
    ratio = percentile(rows["redis (loopback)"], 50) / percentile(rows["memory"], 50)
    print(f"  redis / memory at p50: x{ratio:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
