#!/usr/bin/env python3
import socket, sys, time
port, duration = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + duration
res = []
while time.monotonic() < end:
    t = time.monotonic()
    ok = False
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=1, source_address=('127.0.0.3', 0))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n")
        ok = s.recv(64).startswith(b"HTTP/1.1 200")
        s.close()
    except Exception:
        pass
    res.append((ok, time.monotonic() - t))
    time.sleep(0.05)
okd = sorted(d for o, d in res if o)
p99 = okd[max(0, int(len(okd) * 0.99) - 1)] if okd else float('nan')
print(f"healthz probes {len(res)}, answered {len(okd)} ({100 * len(okd) / max(1, len(res)):.1f} %), p50 {okd[len(okd)//2]*1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
