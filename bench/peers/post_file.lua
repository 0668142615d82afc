-- wrk script for bench/torchserve.py and bench/torchscript.py: POST the same body on every call and, at the
-- end, print one machine-readable line with the exact latency percentiles and error counts.
-- The body is read from the file BENCH_BODY_FILE (a JPEG has NUL bytes, which an environment variable
-- cannot carry) and sent with the content type BENCH_CONTENT_TYPE.
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["content-type"] = os.getenv("BENCH_CONTENT_TYPE")

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "mean_us=%.1f non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.status, e.connect, e.read, e.write, e.timeout))
end
