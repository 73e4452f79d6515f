#!/usr/bin/env python3
# 1,200 token requests with wrong keys from 1,200 addresses at once; meanwhile the merchant,
# who signed in before from 127.0.0.1, asks for a token. How long does each wait?
import asyncio, json, sys, time
port, app_id, app_key, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
async def token(src, body):
    t = time.monotonic()
    try:
        r, w = await asyncio.open_connection('127.0.0.1', port, local_addr=(src, 0))
        data = json.dumps(body).encode()
        w.write(b"POST /api/v1/auth/token HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
        await w.drain()
        head = await asyncio.wait_for(r.read(32), 30)
        w.close()
        return int(head.split()[1]), time.monotonic() - t
    except Exception as e:
        return 0, time.monotonic() - t
async def main():
    right = {"appId": app_id, "appKey": app_key}
    print("merchant before:", await token('127.0.0.1', right))
    flood = [asyncio.create_task(token(f"127.0.{1 + i // 250}.{1 + i % 250}", {"appId": f"STRANGER{i}", "appKey": "wrong"})) for i in range(n)]
    await asyncio.sleep(0.5)
    status, waited = await token('127.0.0.1', right)
    results = await asyncio.gather(*flood)
    by = {}
    for s, _ in results: by[s] = by.get(s, 0) + 1
    slow = max(d for _, d in results)
    print(f"merchant during a flood of {n}: HTTP {status} after {waited*1000:.0f} ms; flood statuses {by}, slowest {slow:.1f} s")
asyncio.run(main())
