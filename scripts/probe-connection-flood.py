#!/usr/bin/env python3
# One address (127.0.0.2) keeps reopening up to N connections that never finish their
# headers; another (127.0.0.3) probes /healthz every 50 ms for D seconds.
import asyncio, sys, time, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
port, n, duration = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
opened = 0
async def attacker(stop):
    global opened
    while not stop.is_set():
        try:
            r, w = await asyncio.open_connection('127.0.0.1', port, local_addr=('127.0.0.2', 0))
            opened += 1
            w.write(b"POST /processV2 HTTP/1.1\r\nHost: g\r\nContent-Le")
            await w.drain()
            await r.read(1)  # until the server closes it
            w.close()
        except Exception:
            await asyncio.sleep(0.01)
async def probe(stop, results):
    while not stop.is_set():
        t = time.monotonic()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection('127.0.0.1', port, local_addr=('127.0.0.3', 0)), 1)
            w.write(b"GET /healthz HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n")
            data = await asyncio.wait_for(r.read(64), 1)
            results.append((data.startswith(b"HTTP/1.1 200"), time.monotonic() - t))
            w.close()
        except Exception:
            results.append((False, time.monotonic() - t))
        await asyncio.sleep(0.05)
async def main():
    stop = asyncio.Event(); results = []
    tasks = [asyncio.create_task(attacker(stop)) for _ in range(n)]
    await asyncio.sleep(2)
    p = asyncio.create_task(asyncio.sleep(0))
    await asyncio.sleep(duration)
    stop.set()
    await p
    for t in tasks: t.cancel()
    print(f"attackers {n}, connections opened {opened}")
asyncio.run(main())
