-- wrk script for bench/poll.py and bench/report.py: replay prepared requests, in a cycle.
--
--   wrk -t2 -c32 -d10s -s bench/requests.lua http://127.0.0.1:PORT -- FILE THREADS STATUS
--
-- FILE has one request a line, fields separated by tabs (bench/wrk.py writes it):
--   METHOD <TAB> PATH <TAB> BODY (may be empty) [<TAB> Header: value]...
-- Each wrk thread reads it in init(), formats every request once, starts at its own offset
-- (thread i of n starts at i/n of the list) and cycles through them all. response() counts
-- every status other than STATUS; done() adds the counts up over the threads and prints one
-- "BENCH key=value ..." line that bench/wrk.py parses.

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
local expected = 0
unexpected = 0 -- responses whose status is not the expected one; read by done() via thread:get
first_unexpected = 0 -- the first such status, 0 if none

local function split(line)
  local fields, start = {}, 1
  while true do
    local tab = line:find("\t", start, true)
    if not tab then
      fields[#fields + 1] = line:sub(start)
      return fields
    end
    fields[#fields + 1] = line:sub(start, tab - 1)
    start = tab + 1
  end
end

local function format(fields)
  local headers = {}
  for i = 4, #fields do
    local name, value = fields[i]:match("^([^:]+): (.*)$")
    if not name then
      error("bad header field: " .. fields[i])
    end
    headers[name] = value
  end
  local body = fields[3] ~= "" and fields[3] or nil
  return wrk.format(fields[1], fields[2], headers, body)
end

function init(args)
  local path = args[1]
  local threads_total = tonumber(args[2] or "1")
  expected = tonumber(args[3] or "")
  if not path or not expected then
    error("usage: wrk ... -s requests.lua URL -- FILE THREADS STATUS")
  end
  for line in io.lines(path) do
    if line ~= "" then
      prepared[#prepared + 1] = format(split(line))
    end
  end
  if #prepared == 0 then
    error("no requests in " .. path)
  end
  position = math.floor(id * #prepared / threads_total)
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function response(status, headers, body)
  if status ~= expected then
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
