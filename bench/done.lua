-- Appended to every wrk script by bench/run.sh: one machine-readable line per run,
-- "RESULT req/s p50_ms p99_ms http_errors socket_errors" (errors: status >= 400).
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT %.1f %.2f %.2f %d %d\n",
    summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
