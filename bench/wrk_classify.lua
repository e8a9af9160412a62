-- Cross-check of devstack/loadgen.py (the load generator) with wrk (Debian package wrk): POST /v1/classify with real documents.
-- Bodies come one JSON object per line from BENCH_BODIES (default bench/raw/bodies.jsonl, written by
-- `python -m bench bodies`). Usage:
--   wrk -t1 -c32 -d8s -s bench/wrk_classify.lua http://127.0.0.1:<sidecar port>/v1/classify
local bodies = {}
local i = 0

local path = os.getenv("BENCH_BODIES") or "bench/raw/bodies.jsonl"
for line in io.lines(path) do
  bodies[#bodies + 1] = line
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end

done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format("wrk: %d requests in %.2fs, %.1f req/s, errors: status %d, connect %d, read %d, timeout %d\n",
    summary.requests, s, summary.requests / s, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.timeout))
  io.write(string.format("wrk: latency ms p50 %.2f p95 %.2f p99 %.2f max %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
