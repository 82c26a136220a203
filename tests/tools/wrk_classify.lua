-- wrk script: POST one JPEG to a model's :classify route and count answers.
--
--   IMAGE=../shared/imagenet/images/cat.jpg MODEL=mobilenet_v1 \
--     wrk -t2 -c8 -d10s -s tests/tools/wrk_classify.lua http://127.0.0.1:8080
--
-- At the end prints one line that tests/test_haproxy.sh reads:
--   RESULT requests=N non200=N connect=N read=N write=N status=N timeout=N
-- (non200 counts every answer but 200; wrk's own "status" counts >= 400).

local path = os.getenv("IMAGE") or "../shared/imagenet/images/cat.jpg"
local f = assert(io.open(path, "rb"))
local image = f:read("*a")
f:close()

wrk.method = "POST"
wrk.path = "/v1/models/" .. (os.getenv("MODEL") or "mobilenet_v1") .. ":classify"
wrk.body = image
wrk.headers["Content-Type"] = "image/jpeg"

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   non200 = 0
   first_bad = ""
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
      if first_bad == "" then
         first_bad = status .. " " .. string.sub(body or "", 1, 200)
      end
   end
end

function done(summary, latency, requests)
   local bad, example = 0, ""
   for _, t in ipairs(threads) do
      bad = bad + t:get("non200")
      if example == "" then example = t:get("first_bad") end
   end
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d non200=%d connect=%d read=%d write=%d status=%d timeout=%d p50_ms=%.1f p99_ms=%.1f\n",
      summary.requests, bad, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000))
   if example ~= "" then
      io.write("FIRST_BAD " .. example:gsub("\n", " ") .. "\n")
   end
end
