-- wrk against the envelope API with bodies sealed ahead by `ottgate bench --wrk-count`:
--
--   ottgate bench --url http://127.0.0.1:8080 --credentials merchant.json \
--       --wrk-count 300000 --wrk-bodies /tmp/bodies.txt
--   wrk -t2 -c64 -d10s -s scripts/wrk-envelope.lua http://127.0.0.1:8080/processV2 -- /tmp/bodies.txt
--
-- Written for two threads (-t2, the machine's two cores): thread k sends lines k, k+2, …,
-- each once, so every request is a new order. Answers are HTTP 200 whatever the protocol says, so
-- the script counts those without "rsp_code":"SUCCESS" and prints them at the end.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  local i = 0
  for line in io.lines(args[1]) do
    if i % 2 == id then
      bodies[#bodies + 1] = line
    end
    i = i + 1
  end
  next_body = 0
  failures = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  next_body = next_body + 1
  if next_body > #bodies then
    next_body = 1 -- out of fresh bodies: a repeat is answered from the stored response
  end
  return wrk.format(nil, nil, nil, bodies[next_body])
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"rsp_code":"SUCCESS"', 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed, sent = 0, 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
    sent = sent + thread:get("next_body")
  end
  io.write(string.format("bodies sent (per thread, last): %d; answers without SUCCESS: %d\n", sent, failed))
end
