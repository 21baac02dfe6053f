-- wrk script for bench/proxy.sh: every request carries `Authorization: Bearer <token>`, the tokens taken in
-- turn from the file named by TOKENS_FILE (one per line; a file of one line is the repeated-token case).
--
-- Every request is formatted once, up front, so the load generator spends the same per request whichever
-- case runs. Each wrk thread has its own Lua state and runs init() itself.
--
-- TOKENS_SPLIT=1: the threads share the file out (thread k of WRK_THREADS takes lines k, k+n, k+2n, ...) so
-- that no token is sent twice while the file lasts; at the end wrk prints how many requests went out after
-- a thread had used up its share and started over ("tokens reused: N"). Otherwise each thread cycles
-- through the whole file from its own offset.
--
-- PACE_MS (optional): mean think time per connection, in ms. Each connection then waits a random 0..2xPACE_MS
-- ms before each request (wrk's delay(); the wait is not counted in the latency), giving an offered load of
-- about connections x 1000 / PACE_MS requests per second instead of as many as the target can take.

local path = os.getenv("TOKENS_FILE") or error("TOKENS_FILE is not set")
local split = os.getenv("TOKENS_SPLIT") == "1"
local thread_count = tonumber(os.getenv("WRK_THREADS") or "1")
local pace = tonumber(os.getenv("PACE_MS") or "")

local threads = {}
function setup(thread)
    thread:set("thread_index", #threads)
    table.insert(threads, thread)
end

local requests = {}
local count = 0
local position = 0
local wrapped = false
reused = 0

function init(args)
    local line_number = 0
    for line in io.lines(path) do
        if #line > 0 then
            if not split or line_number % thread_count == thread_index then
                count = count + 1
                requests[count] = wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. line })
            end
            line_number = line_number + 1
        end
    end
    if count == 0 then error(path .. " holds no token for thread " .. thread_index) end
    position = split and 0 or (thread_index * 7919) % count
    math.randomseed(1000 + thread_index)
end

function request()
    position = position + 1
    if position > count then
        position = 1
        wrapped = split
    end
    if wrapped then reused = reused + 1 end
    return requests[position]
end

if pace and pace > 0 then
    local upper = math.floor(2 * pace + 0.5)
    function delay()
        return math.random(0, upper)
    end
end

function done(summary, latency, requests)
    if not split then return end
    local total = 0
    for _, thread in ipairs(threads) do
        total = total + (thread:get("reused") or 0)
    end
    io.write(string.format("tokens reused: %d\n", total))
end
