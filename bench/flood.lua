-- wrk script for bench/flood.py: device polls with a wrong key, each of a new uuid and key.
--
--   wrk -t2 -c150 -d10s -s bench/flood.lua http://127.0.0.1:PORT
--
-- Every request is GET /api/v1/device/<32 random hex>/state with a random 43-character
-- X-Device-API-Key: nothing the server could have cached, so without a limit each costs it
-- the database. response() counts the statuses; done() prints one "FLOOD key=value ..." line
-- that bench/flood.py parses.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

s401, s403, s429, other = 0, 0, 0, 0

local HEX = "0123456789abcdef"
local KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

local function random_text(alphabet, length)
  local chars = {}
  for i = 1, length do
    local n = math.random(#alphabet)
    chars[i] = alphabet:sub(n, n)
  end
  return table.concat(chars)
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
end

function request()
  local path = "/api/v1/device/" .. random_text(HEX, 32) .. "/state"
  return wrk.format("GET", path, { ["X-Device-API-Key"] = random_text(KEY, 43) })
end

function response(status, headers, body)
  if status == 401 then
    s401 = s401 + 1
  elseif status == 403 then
    s403 = s403 + 1
  elseif status == 429 then
    s429 = s429 + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local totals = { s401 = 0, s403 = 0, s429 = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    "FLOOD requests=%d duration_us=%d s401=%d s403=%d s429=%d other=%d "
      .. "p50_us=%d p99_us=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, totals.s401, totals.s403, totals.s429, totals.other,
    latency:percentile(50), latency:percentile(99),
    errors.connect, errors.read, errors.write, errors.timeout
  ))
end
