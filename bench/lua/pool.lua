-- One Authorization token per request, taken from a pool file (one token per line).
--
--   wrk -t1 -c64 -d10s -s pool.lua URL -- TOKENS_FILE MODE [LIMIT] [OFFSET]
--
-- MODE "once":  every request carries the next unused token, so each token is sent at most
--               once; if the pool runs out the tokens wrap around and done() says so (the row
--               is then no longer a fresh-token row and the driver flags it).
-- MODE "cycle": round-robin over LIMIT tokens: LIMIT distinct live tokens.
-- OFFSET skips that many tokens first (so a second run can use unused ones).
-- Use one wrk thread (-t1): the pool is per thread.

n = 0          -- tokens loaded
sent = 0       -- requests formatted
wraps = 0      -- times the pool was exhausted and restarted
local tokens = {}
local i = 0

function init(args)
  local file, limit, offset = args[1], tonumber(args[3] or "0"), tonumber(args[4] or "0")
  local skipped = 0
  for line in io.lines(file) do
    if skipped < offset then
      skipped = skipped + 1
    elseif line ~= "" then
      n = n + 1
      tokens[n] = "Bearer " .. line
      if limit > 0 and n >= limit then break end
    end
  end
  if n == 0 then error("no tokens in " .. file) end
end

function request()
  i = i + 1
  if i > n then
    i = 1
    wraps = wraps + 1
  end
  sent = sent + 1
  wrk.headers["Authorization"] = tokens[i]
  return wrk.format()
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("token pool: size %d, sent %d, wrapped %d\n",
      t:get("n"), t:get("sent"), t:get("wraps")))
  end
end
