--[[
  Publishes a batch of job messages atomically, in order: for each one, assigns its job's next sequence
  number, stores it as the job's latest snapshot of its type, appends it to the job's capped replay log
  and PUBLISHes it. Doing all of it in one script means a subscriber that reads the snapshot and then
  the stream can never see a gap or a reordering between them. JobLog sends the messages of one
  event-loop turn as one batch: one command, one reply and one socket write for all of them, which at
  1,000 jobs × 10 Hz is most of the producer's CPU per update. (In a Redis Cluster a batch holds one
  job's messages, so its keys share a slot.)

  ARGV[1] ttl seconds
  ARGV[2] log length cap
  ARGV[3] terminal event kinds, comma-separated (from TERMINAL_EVENTS in common/progress.ts)
  Then, for message i (from 0), keys KEYS[3i+1..3i+3] and arguments ARGV[4+5i..8+5i]:
  KEYS    job:{id}:seq    counter
          job:{id}:state  hash: progress -> last progress message, event -> last event message
          job:{id}:log    list of messages, oldest first, capped at ARGV[2]
  ARGV    channel         progress:{owner}:{jobId}
          type            "progress" | "event"
          payload         JSON object of the message fields, without type and seq
          condition       "0" always publish;
                          "1" publish only when the job's latest event is not terminal, or is a different
                              terminal event of an older run than the run id (the API's reconciliation:
                              several API processes may notice the same closed workflow, and only one
                              event must go out);
                          "2" publish only when the latest event is the terminal event of an older run
                              than the run id (a Temporal reset brought the job back: announce it once)
          run id          the workflow run id the message is about, or "" when unknown
  Returns, per message, the assigned sequence number, or 0 when its condition did not hold.
  A stored event without a runId (published before run ids were carried) counts as the current run's.
]]
local ttl = tonumber(ARGV[1])
local logMax = tonumber(ARGV[2])
local terminalKinds = {}
for kind in string.gmatch(ARGV[3], '[^,]+') do terminalKinds[kind] = true end

local function publish(seqKey, stateKey, logKey, channel, kind, payload, condition, runId)
  if condition ~= '0' then
    local last = redis.call('HGET', stateKey, 'event')
    local terminal = false
    local superseded = false
    local decoded
    if last then
      decoded = cjson.decode(last)
      terminal = terminalKinds[decoded['event']] == true
      local lastRun = decoded['runId']
      superseded = terminal and runId ~= '' and type(lastRun) == 'string' and lastRun ~= runId
    end
    if condition == '1' and terminal and not superseded then return 0 end
    -- A reset run that ends as the older run did (a reset to its last workflow task) adds nothing new:
    -- keep the older event, which has the details (result, error) the reconciled one lacks.
    if condition == '1' and superseded and decoded['event'] == cjson.decode(payload)['event'] then return 0 end
    if condition == '2' and not superseded then return 0 end
  end
  local seq = redis.call('INCR', seqKey)
  local message = '{"type":"' .. kind .. '","seq":' .. seq .. ',' .. string.sub(payload, 2)
  redis.call('HSET', stateKey, kind, message)
  if redis.call('RPUSH', logKey, message) > logMax then redis.call('LTRIM', logKey, -logMax, -1) end
  -- The TTL runs from the job's last event or from one of its last 32 progress messages: refreshing it
  -- on every progress message cost three of the script's nine commands at 10 updates a second per job.
  if kind == 'event' or seq % 32 == 1 then
    redis.call('EXPIRE', seqKey, ttl)
    redis.call('EXPIRE', stateKey, ttl)
    redis.call('EXPIRE', logKey, ttl)
  end
  redis.call('PUBLISH', channel, message)
  return seq
end

local seqs = {}
for i = 0, #KEYS / 3 - 1 do
  local a = 4 + 5 * i
  seqs[i + 1] = publish(KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
end
return seqs
