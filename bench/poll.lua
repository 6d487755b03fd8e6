-- wrk script for bench/poll.py: device polls that should all be answered 304.
--
--   wrk -t2 -c32 -d10s --latency -s bench/poll.lua http://127.0.0.1:PORT -- DEVICES_FILE THREADS
--
-- DEVICES_FILE has one device a line: uuid <TAB> api key <TAB> etag (with its quotes).
-- Each wrk thread reads it in init(), starts at its own offset (thread i of n starts at
-- i/n of the list) and cycles through every device, sending X-Device-API-Key and
-- If-None-Match. response() counts every status other than 304; done() adds the counts up
-- over the threads and prints one "BENCH key=value ..." line that poll.py parses.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  table.insert(threads, thread)
  thread_count = thread_count + 1
end

-- Per thread (each wrk thread has its own Lua state).
local prepared = {}
local position = 0
unexpected = 0 -- responses whose status is not 304; read by done() via thread:get
first_unexpected = 0 -- the first such status, 0 if none

function init(args)
  local path = args[1]
  local threads_total = tonumber(args[2] or "1")
  if not path then
    error("usage: wrk ... -s poll.lua URL -- DEVICES_FILE THREADS")
  end
  for line in io.lines(path) do
    local uuid, key, etag = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
    if uuid then
      prepared[#prepared + 1] = wrk.format("GET", "/api/v1/device/" .. uuid .. "/state", {
        ["X-Device-API-Key"] = key,
        ["If-None-Match"] = etag,
      })
    end
  end
  if #prepared == 0 then
    error("no devices in " .. path)
  end
  position = math.floor(id * #prepared / threads_total)
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function response(status, headers, body)
  if status ~= 304 then
    unexpected = unexpected + 1
    if first_unexpected == 0 then
      first_unexpected = status
    end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("unexpected") or 0)
    local status = thread:get("first_unexpected") or 0
    if first == 0 then
      first = status
    end
  end
  local errors = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d unexpected=%d first_unexpected=%d "
      .. "p50_us=%d p90_us=%d p99_us=%d mean_us=%.1f max_us=%d "
      .. "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d status_errors=%d\n",
    summary.requests, summary.duration, bad, first,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max,
    errors.connect, errors.read, errors.write, errors.timeout, errors.status
  ))
end
