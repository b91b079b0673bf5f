--[[
  The waiting line of one HPC task queue, kept in the order Temporal's matcher dispatches it, and the
  place of every waiting job in it published to that job's channel (common/hpc-queue.ts says why).

  Temporal (Server 1.32, fairness on) gives each backlogged task a level (priority key, pass, task id)
  and dispatches the lowest first. A task's pass is max(base, counter[key] + inc): base is the pass of
  the last task dispatched at its priority, counter[key] the last pass given to its fairness key at that
  priority, inc = max(1, floor(1000 / weight)) (matching's strideFactor). A task that finds a poller
  waiting (nothing in the backlog and a free slot) is handed over at once and gets no pass. This script
  applies the same rules to the same events, so the order here is the order jobs start.

  Every member of `waiting` has score 0 and reads
  `<priority>:<pass, 16 digits>:<arrival, 12 digits>:<key's counter before this pass>:<owner>:<jobId>`,
  so the set's lexical order is the dispatch order (owner and job id cannot contain ':').

  KEYS[1] waiting      sorted set, as above
  KEYS[2] entries      hash jobId -> its member of waiting
  KEYS[3] shares       hash jobId -> "<priority>|<enqueuedAtMs>|<weight>|<owner>|<fairness key>", for a waiting or handed job
  KEYS[4] counters     hash "<priority>|<fairness key>" -> last pass given
  KEYS[5] bases        hash priority -> pass of the last task dispatched
  KEYS[6] arrivals     counter
  KEYS[7] workers      hash workerId -> "<slots>|<busy>|<expiresAtMs>"
  KEYS[8] handing      sorted set jobId -> when it was found a waiting poller (not started yet)
  KEYS[9] durations    list of the last 50 stage durations (ms), newest first
  KEYS[10] told        hash: at -> when places were last published (ms); from -> the first place changed
                       since (absent when every waiting job has been told its current place)
  ARGV[1] operation    join | start | finish | leave | worker | place | tell
  ARGV[2] now (ms)
  ARGV[3] queue name, for the frames
  ARGV[4] tell every (ms): places are published at most this often; a change within it is told by `tell`
  join:   ARGV[5] jobId  ARGV[6] owner  ARGV[7] priority key  ARGV[8] fairness key  ARGV[9] weight
  start:  ARGV[5] jobId  ARGV[6] workerId  ARGV[7] slots  ARGV[8] busy  ARGV[9] worker ttl ms
  finish: ARGV[5] jobId  ARGV[6] workerId  ARGV[7] slots  ARGV[8] busy  ARGV[9] worker ttl ms  ARGV[10] duration ms
  leave:  ARGV[5] jobId
  worker: ARGV[6] workerId  ARGV[7] slots (0: gone)  ARGV[8] busy  ARGV[9] worker ttl ms
  place:  ARGV[5] jobId
  tell:   (none)
  Returns, after a `|`-free prefix: join "waiting" or "handed"; start "<waitedMs>|<priority>|<key>" when the
  job had waited, else ""; place the job's `queue` frame while it waits, else ""; others "". Every operation
  that changes the line, and `tell`, put "<ms>~" before that when places changed and will be published
  only in <ms> (another change within ARGV[4] ms of the last publication): the caller runs `tell` then.
]]
local op, now, queue, tellEvery = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local STRIDE = 1000
-- Publishing the places is O(waiting); past this many only the first ones are told.
local TELL_AT_MOST = 2000
-- A job found a waiting poller but never started (its workflow was cancelled in between): forget it.
local HANDING_MS = 60000

local function register(workerId, slots, busy, ttl)
  if tonumber(slots) <= 0 then
    redis.call('HDEL', KEYS[7], workerId)
  else
    redis.call('HSET', KEYS[7], workerId, slots .. '|' .. busy .. '|' .. (now + tonumber(ttl)))
  end
end

-- Slots of the live workers, and how many of them are free for a task arriving now.
local function capacity()
  local slots, free = 0, 0
  local all = redis.call('HGETALL', KEYS[7])
  for i = 1, #all, 2 do
    local s, b, expires = string.match(all[i + 1], '^(%d+)|(%d+)|(%d+)$')
    if s and tonumber(expires) > now then
      slots = slots + tonumber(s)
      free = free + math.max(0, tonumber(s) - tonumber(b))
    else
      redis.call('HDEL', KEYS[7], all[i])
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - HANDING_MS)
  return slots, free - redis.call('ZCARD', KEYS[8])
end

local function channelOf(member)
  local owner, jobId = string.match(member, '^%d+:%d+:%d+:%d+:([^:]+):([^:]+)$')
  return owner, jobId
end

local function frame(jobId, owner, waiting, ahead, etaMs)
  return '{"type":"queue","jobId":"' .. jobId .. '","owner":"' .. owner .. '","queue":"' .. queue ..
    '","waiting":' .. tostring(waiting) .. ',"ahead":' .. ahead .. ',"etaMs":' .. etaMs .. ',"ts":' .. now .. '}'
end

-- How long a stage takes lately, and over how many slots: a place's wait is about (ahead + 1) stages
-- spread over the live slots. nil before any stage finished or while no worker is up.
local function pace()
  local slots = capacity()
  local recent = redis.call('LRANGE', KEYS[9], 0, -1)
  if #recent == 0 or slots == 0 then return nil, slots end
  local sum = 0
  for _, d in ipairs(recent) do sum = sum + tonumber(d) end
  return sum / #recent, slots
end

local function placeFrame(member, ahead, mean, slots)
  local owner, jobId = channelOf(member)
  local eta = mean and tostring(math.floor(mean * (ahead + 1) / slots + 0.5)) or 'null'
  return owner, jobId, frame(jobId, owner, true, ahead, eta)
end

-- Places from `from` (0-based) on changed. Publishes them when the last publication is at least
-- tellEvery old, else leaves it to a later `tell`: every start moves every job behind it, so telling on
-- each change would publish O(waiting²) frames while a long line drains (200 jobs: tens of thousands a
-- minute, each to every socket of its owner). Returns the ms until the places can be told, or nil when told.
local function changed(from)
  local told = redis.call('HMGET', KEYS[10], 'at', 'from')
  local dirty = tonumber(told[2])
  if from ~= nil then dirty = math.min(dirty or from, from) end
  if dirty == nil then return nil end
  local wait = (tonumber(told[1]) or 0) + tellEvery - now
  if wait > 0 then
    redis.call('HSET', KEYS[10], 'from', dirty)
    return wait
  end
  local mean, slots = pace()
  local members = redis.call('ZRANGE', KEYS[1], dirty, TELL_AT_MOST - 1)
  for i, member in ipairs(members) do
    local owner, jobId, text = placeFrame(member, dirty + i - 1, mean, slots)
    redis.call('PUBLISH', 'progress:' .. owner .. ':' .. jobId, text)
  end
  redis.call('HSET', KEYS[10], 'at', now)
  redis.call('HDEL', KEYS[10], 'from')
  return nil
end

-- What an operation that may have changed places answers: "<ms>~" first when they are told later.
local function answer(wait, text)
  if wait then return math.ceil(wait) .. '~' .. text end
  return text
end

-- Takes the job's member out of the line; returns it, its share and the place it had (0-based).
local function remove(jobId)
  local member = redis.call('HGET', KEYS[2], jobId)
  if not member then return nil end
  local rank = redis.call('ZRANK', KEYS[1], member)
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], jobId)
  local share = redis.call('HGET', KEYS[3], jobId)
  redis.call('HDEL', KEYS[3], jobId)
  return member, share, rank
end

-- Gives a backlogged stage its pass, as the server's task writer does, and puts it in the line.
local function enter(jobId, owner, priority, key, weight, arrival)
  local inc = math.max(1, math.floor(STRIDE / math.max(weight, 0.001)))
  local counter = priority .. '|' .. key
  local previous = redis.call('HGET', KEYS[4], counter) or '0'
  local pass = math.max(tonumber(redis.call('HGET', KEYS[5], priority) or '0'), tonumber(previous) + inc)
  redis.call('HSET', KEYS[4], counter, pass)
  -- The counter as it was, in case the stage turns out to have been handed over without a pass.
  local member = string.format('%d:%016d:%012d:%s:%s:%s', tonumber(priority), pass, arrival, previous, owner, jobId)
  redis.call('ZADD', KEYS[1], 0, member)
  redis.call('HSET', KEYS[2], jobId, member)
  return redis.call('ZRANK', KEYS[1], member)
end

if op == 'join' then
  local jobId, owner, priority, key, weight = ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
  -- A job has one stage waiting at a time: a stage that joins again replaces its earlier place.
  local _, _, earlier = remove(jobId)
  redis.call('ZREM', KEYS[8], jobId)
  if not weight or weight <= 0 then weight = 1 end
  redis.call('HSET', KEYS[3], jobId, priority .. '|' .. now .. '|' .. weight .. '|' .. owner .. '|' .. key)
  local _, free = capacity()
  if redis.call('ZCARD', KEYS[1]) == 0 and free > 0 then
    redis.call('ZADD', KEYS[8], now, jobId)
    return answer(changed(earlier), 'handed')
  end
  local rank = enter(jobId, owner, priority, key, weight, redis.call('INCR', KEYS[6]))
  return answer(changed(math.min(rank, earlier or rank)), 'waiting')
end

if op == 'start' then
  local jobId = ARGV[5]
  register(ARGV[6], ARGV[7], ARGV[8], ARGV[9])
  if redis.call('ZREM', KEYS[8], jobId) == 1 then
    -- Handed over as expected.
    redis.call('HDEL', KEYS[3], jobId)
    return ''
  end
  local member, share, rank = remove(jobId)
  if not member then return '' end
  local priority, pass, arrival, previous = string.match(member, '^(%d+):(%d+):(%d+):(%d+):')
  local handed = redis.call('ZRANGE', KEYS[8], 0, 0)[1]
  if handed then
    -- Two stages arrived together and the server handed the slot to this one, not to the one this
    -- line thought: this one got no pass (its key's counter goes back), and the other waits in the
    -- backlog with the pass the server gave it, in this one's place.
    local key = string.match(share or '', '^%d+|%d+|[%d.]+|[^|]+|(.*)$')
    if key and redis.call('HGET', KEYS[4], priority .. '|' .. key) == tostring(tonumber(pass)) then
      redis.call('HSET', KEYS[4], priority .. '|' .. key, previous)
    end
    redis.call('ZREM', KEYS[8], handed)
    local hp, _, hw, ho, hk = string.match(redis.call('HGET', KEYS[3], handed) or '', '^(%d+)|(%d+)|([%d.]+)|([^|]+)|(.*)$')
    if hp then rank = math.min(rank, enter(handed, ho, hp, hk, tonumber(hw), tonumber(arrival))) end
  else
    local base = tonumber(redis.call('HGET', KEYS[5], priority) or '0')
    redis.call('HSET', KEYS[5], priority, math.max(base, tonumber(pass)))
  end
  local owner = channelOf(member)
  redis.call('PUBLISH', 'progress:' .. owner .. ':' .. jobId, frame(jobId, owner, false, 0, 0))
  local wait = changed(rank)
  local sharePriority, enqueuedAt, key = string.match(share or '', '^(%d+)|(%d+)|[%d.]+|[^|]+|(.*)$')
  if not enqueuedAt then return answer(wait, '') end
  return answer(wait, (now - tonumber(enqueuedAt)) .. '|' .. sharePriority .. '|' .. key)
end

if op == 'finish' then
  register(ARGV[6], ARGV[7], ARGV[8], ARGV[9])
  redis.call('LPUSH', KEYS[9], ARGV[10])
  redis.call('LTRIM', KEYS[9], 0, 49)
  return ''
end

if op == 'leave' then
  local jobId = ARGV[5]
  redis.call('ZREM', KEYS[8], jobId)
  redis.call('HDEL', KEYS[3], jobId)
  local member, _, rank = remove(jobId)
  if member then
    -- The job waits no more (it ended): its page stops saying so; the jobs behind move up.
    local owner = channelOf(member)
    redis.call('PUBLISH', 'progress:' .. owner .. ':' .. jobId, frame(jobId, owner, false, 0, 0))
    return answer(changed(rank), '')
  end
  return ''
end

if op == 'tell' then
  return answer(changed(nil), '')
end

if op == 'place' then
  local member = redis.call('HGET', KEYS[2], ARGV[5])
  if not member then return '' end
  local mean, slots = pace()
  local _, _, text = placeFrame(member, redis.call('ZRANK', KEYS[1], member), mean, slots)
  return text
end

if op == 'worker' then
  register(ARGV[6], ARGV[7], ARGV[8], ARGV[9])
  return ''
end

return redis.error_reply('unknown operation ' .. tostring(op))
