-- wrk script of imdsd's load run (e2e/load/main.go writes it to a temp dir).
-- Request shape comes from the environment so one script serves every
-- scenario:
--   LOAD_METHOD  GET or PUT
--   LOAD_TOKEN   value of X-aws-ec2-metadata-token (GET), optional
--   LOAD_TTL     value of X-aws-ec2-metadata-token-ttl-seconds (PUT), optional
--   LOAD_CLOSE   "1": send Connection: close (a new connection per request)
-- done() prints one machine-readable line: WRK_JSON {...} (times in µs).
wrk.method = os.getenv("LOAD_METHOD") or "GET"
local token = os.getenv("LOAD_TOKEN")
if token and token ~= "" then
  wrk.headers["X-aws-ec2-metadata-token"] = token
end
local ttl = os.getenv("LOAD_TTL")
if ttl and ttl ~= "" then
  wrk.headers["X-aws-ec2-metadata-token-ttl-seconds"] = ttl
end
if os.getenv("LOAD_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
