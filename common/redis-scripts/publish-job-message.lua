--[[
  Publishes one job message atomically: assigns the job's next sequence number, stores the message
  as the job's latest snapshot of its type, appends it to the job's capped replay log and PUBLISHes it.
  Doing all of it in one script means a subscriber that reads the snapshot and then the stream can
  never see a gap or a reordering between them.

  KEYS[1] job:{id}:seq    counter
  KEYS[2] job:{id}:state  hash: progress -> last progress message, event -> last event message
  KEYS[3] job:{id}:log    list of messages, oldest first, capped at ARGV[5]
  ARGV[1] channel         progress:{owner}:{jobId}
  ARGV[2] type            "progress" | "event"
  ARGV[3] payload         JSON object of the message fields, without type and seq
  ARGV[4] ttl seconds
  ARGV[5] log length cap
  ARGV[6] "0" always publish;
          "1" publish only when the job's latest event is not terminal, or is a different terminal event
              of an older run than ARGV[8] (the API's reconciliation: several API processes may notice
              the same closed workflow, and only one event must go out);
          "2" publish only when the latest event is the terminal event of an older run than ARGV[8]
              (a Temporal reset brought the job back: announce it once)
  ARGV[7] terminal event kinds, comma-separated (from TERMINAL_EVENTS in common/progress.ts)
  ARGV[8] the workflow run id the message is about, or "" when unknown
  Returns the assigned sequence number, or 0 when the condition of ARGV[6] does not hold.
  A stored event without a runId (published before run ids were carried) counts as the current run's.
]]
if ARGV[6] ~= '0' then
  local last = redis.call('HGET', KEYS[2], 'event')
  local terminal = false
  local superseded = false
  if last then
    local decoded = cjson.decode(last)
    for kind in string.gmatch(ARGV[7], '[^,]+') do
      if decoded['event'] == kind then terminal = true end
    end
    local lastRun = decoded['runId']
    superseded = terminal and ARGV[8] ~= '' and type(lastRun) == 'string' and lastRun ~= ARGV[8]
  end
  if ARGV[6] == '1' and terminal and not superseded then return 0 end
  -- A reset run that ends as the older run did (a reset to its last workflow task) adds nothing new:
  -- keep the older event, which has the details (result, error) the reconciled one lacks.
  if ARGV[6] == '1' and superseded and cjson.decode(last)['event'] == cjson.decode(ARGV[3])['event'] then return 0 end
  if ARGV[6] == '2' and not superseded then return 0 end
end
local seq = redis.call('INCR', KEYS[1])
local message = '{"type":"' .. ARGV[2] .. '","seq":' .. seq .. ',' .. string.sub(ARGV[3], 2)
redis.call('HSET', KEYS[2], ARGV[2], message)
local logMax = tonumber(ARGV[5])
if redis.call('RPUSH', KEYS[3], message) > logMax then redis.call('LTRIM', KEYS[3], -logMax, -1) end
-- The TTL runs from the job's last event or from one of its last 32 progress messages: refreshing it on
-- every progress message cost three of the script's nine commands at 10 updates a second per job.
if ARGV[2] == 'event' or seq % 32 == 1 then
  local ttl = tonumber(ARGV[4])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
redis.call('PUBLISH', ARGV[1], message)
return seq
