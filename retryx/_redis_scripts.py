"""The Lua scripts behind ``retryx.redis.RedisStore``: one atomic script per shared object.

Every read-modify-write of a breaker or a budget runs as one script, so concurrent
processes never interleave half-updates, and every time is read inside the script
from the server clock (``TIME``), so the hosts' clocks never matter. Values are
plain hash fields (numbers and short strings); keys get a TTL on every touch.
"""

from __future__ import annotations

__all__ = ["BREAKER", "BUDGET", "TTL_MIN_MS"]

# Keys outlive any breaker timing by far; every script touching a key renews it, and
# every live process touches its keys on each sync, so only abandoned keys expire.
TTL_MIN_MS = 86_400_000

# KEYS[1]: the breaker hash. Fields: st (c closed, o open, h half-open, f forced open),
# gen (bumped on every transition; trial tokens carry it), at (ms when it opened),
# fail (consecutive failures), win (the last calls, "1" failure / "0" success),
# tr (trial slots taken), ok (half-open successes), trat (ms of the last trial claim).
#
# ARGV: op, valid_until (server ms, "" = no limit), failure_threshold, failure_rate
# ("" when unset), window, minimum_calls, recovery_ms, half_open_max_calls,
# success_threshold, ttl_ms, lease_ms, then per op:
#   sync  reset n seed_st seed_gen seed_age_ms seed_fail seed_win  (seed_st "" = none)
#   fail  token reset n          (token -1: a call admitted while closed)
#   ok    token                  (a trial call succeeded)
#   rel   token                  (a trial call ended without a verdict)
#   acq                          (admit a call when not closed: claim a trial slot)
#   set   c|f                    (close / open by hand)
#
# Returns {code, wait_ms, st, gen, age_ms, fail, win, tr, ok, now_ms}; code for acq: 0
# rejected (wait_ms -1 = no automatic recovery), 1 admitted while closed, 2 admitted as a
# trial; code -1 for any op: the request arrived after valid_until and changed nothing.
#
# valid_until is when the caller stops waiting for the answer (its send time on the server
# clock plus its socket timeout). A request that a frozen Redis only runs after that was
# already given up (the caller fell back to its local state and will re-send its batched
# successes): running it late would open a breaker at resume time on failures that are
# long gone, or claim a trial slot nobody holds. It is ignored.
BREAKER = """
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local op = ARGV[1]
local threshold = tonumber(ARGV[3])
local rate = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local min_calls = tonumber(ARGV[6])
local recovery = tonumber(ARGV[7])
local max_trials = tonumber(ARGV[8])
local needed = tonumber(ARGV[9])
local ttl = tonumber(ARGV[10])
local lease = tonumber(ARGV[11])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local valid_until = tonumber(ARGV[2])

local h = redis.call('HMGET', key, 'st', 'gen', 'at', 'fail', 'win', 'tr', 'ok', 'trat')
local exists = h[1] ~= false
local st = h[1] or 'c'
local gen = tonumber(h[2]) or 0
local at = tonumber(h[3]) or now
local fail = tonumber(h[4]) or 0
local win = h[5] or ''
local tr = tonumber(h[6]) or 0
local ok = tonumber(h[7]) or 0
local trat = tonumber(h[8]) or 0
local dirty = false
local code = 1
local wait = 0

local function move(new)
  gen = gen + 1
  st = new
  fail = 0
  win = ''
  tr = 0
  ok = 0
  if new == 'o' or new == 'f' then at = now end
  dirty = true
end

-- Successes the caller batched since its last report. Applied before its failure so
-- that one process's own order (successes, then this failure) is kept.
local function successes(reset, n)
  if st ~= 'c' then return end
  if rate then
    if n > 0 then
      win = string.sub(win .. string.rep('0', math.min(n, window)), -window)
      dirty = true
    end
  elseif reset == 1 and fail > 0 then
    fail = 0
    dirty = true
  end
end

local function failure()
  if st ~= 'c' then return end  -- admitted before it opened: no verdict to give
  dirty = true
  if rate then
    win = string.sub(win .. '1', -window)
    local _, ones = string.gsub(win, '1', '')
    if #win >= min_calls and ones / #win >= rate then move('o') end
  else
    fail = fail + 1
    if fail >= threshold then move('o') end
  end
end

if valid_until and now > valid_until then
  return {-1, 0, st, gen, now - at, fail, win, tr, ok, now}
end

if op == 'sync' then
  if not exists and ARGV[14] ~= '' then
    -- The key is gone (Redis restarted empty, or it expired): seed it from the
    -- caller's local state rather than forget an open breaker.
    st = ARGV[14]
    gen = tonumber(ARGV[15])
    at = now - tonumber(ARGV[16])
    fail = tonumber(ARGV[17])
    win = ARGV[18]
    dirty = true
  else
    successes(tonumber(ARGV[12]), tonumber(ARGV[13]))
  end
elseif op == 'fail' then
  local token = tonumber(ARGV[12])
  successes(tonumber(ARGV[13]), tonumber(ARGV[14]))
  if token < 0 then
    failure()
  elseif st == 'h' and token == gen then
    move('o')
  end
elseif op == 'ok' then
  if st == 'h' and tonumber(ARGV[12]) == gen then
    if tr > 0 then tr = tr - 1 end
    ok = ok + 1
    dirty = true
    if ok >= needed then move('c') end
  end
elseif op == 'rel' then
  if st == 'h' and tonumber(ARGV[12]) == gen and tr > 0 then
    tr = tr - 1
    dirty = true
  end
elseif op == 'acq' then
  if st == 'f' then
    code = 0
    wait = -1
  elseif st ~= 'c' then
    if st == 'o' then
      wait = at + recovery - now
      if wait <= 0 then
        wait = 0
        move('h')
      end
    end
    if st == 'h' then
      -- A slot whose holder never reported (its process died) is given back
      -- after the lease, so the breaker cannot stay stuck half-open.
      if tr >= max_trials and now - trat >= lease then tr = 0 end
      if tr < max_trials then
        tr = tr + 1
        trat = now
        dirty = true
        code = 2
      else
        code = 0
      end
    else
      code = 0
    end
  end
elseif op == 'set' then
  move(ARGV[12])
end

if dirty then
  redis.call('HSET', key, 'st', st, 'gen', gen, 'at', at, 'fail', fail, 'win', win,
             'tr', tr, 'ok', ok, 'trat', trat)
end
if dirty or exists then redis.call('PEXPIRE', key, ttl) end
return {code, wait, st, gen, now - at, fail, win, tr, ok, now}
"""

# KEYS[1]: the budget hash, field t (tokens, a decimal string); a missing key is full
# (never deleted by the scripts: a key only goes away by TTL or when Redis loses it).
# ARGV: op (sync | fail | reset), max_tokens, token_ratio, ttl_ms, n (successes batched
# since the last report), seed (the caller's local tokens, "" = none), valid_until (as in
# BREAKER: a late request changes nothing). Returns {tokens, now_ms, stale}: the tokens as
# a string (Lua numbers would come back truncated to integers), stale 1 when ignored.
BUDGET = """
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local op = ARGV[1]
local max = tonumber(ARGV[2])
local ratio = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local seed = tonumber(ARGV[6])
local valid_until = tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if valid_until and now > valid_until then
  local kept = tonumber(redis.call('HGET', key, 't')) or max
  return {string.format('%.17g', kept), now, 1}
end
if op == 'reset' then
  -- Written, not deleted: a missing key would let a stale process seed its old view.
  local full = string.format('%.17g', max)
  redis.call('HSET', key, 't', full)
  redis.call('PEXPIRE', key, ttl)
  return {full, now, 0}
end
local stored = tonumber(redis.call('HGET', key, 't'))
local tokens = stored
local changed = op == 'fail' or n > 0
if tokens == nil and seed ~= nil then
  tokens = seed  -- lost by Redis (restart, expiry): keep the caller's view
  n = 0          -- the seed already counts the caller's successes
  changed = true
end
if tokens == nil then tokens = max end
tokens = math.min(max, tokens + n * ratio)
if op == 'fail' then tokens = math.max(0, tokens - 1) end
local text = string.format('%.17g', tokens)
if changed then
  redis.call('HSET', key, 't', text)
  redis.call('PEXPIRE', key, ttl)
elseif stored ~= nil then
  redis.call('PEXPIRE', key, ttl)
end
return {text, now, 0}
"""
