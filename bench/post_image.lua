-- wrk script: POST one image file to imgclassd's classify endpoint.
--
--   wrk -t1 -c8 -d10s --latency -s bench/post_image.lua \
--       http://127.0.0.1:8080/v1/models/resnet50:classify -- photo.jpg [image/jpeg]
--
-- The image is read once per wrk thread and sent as the raw body of every
-- request. Its path is the first script argument (after "--") or $IMAGE;
-- the Content-Type is the second argument, or $CONTENT_TYPE, or taken from
-- the file name (.png: image/png, else image/jpeg). When the URL has no
-- path (or "/"), $MODEL gives /v1/models/$MODEL:classify.
--
-- wrk itself reports socket errors and, as "Non-2xx or 3xx responses",
-- only codes >= 400; a request only counts as good here when the answer
-- is 200. done() prints wrk's usual summary untouched, then one line:
--
--   RESULT requests=N ok=N non200=N duration_s=S rps=R ok_rps=R
--          p50_ms=X p90_ms=X p99_ms=X mean_ms=X max_ms=X
--          connect_errors=N read_errors=N write_errors=N timeouts=N
--          codes=200:N,503:N first_error="..."
--
-- (one line; rps counts every answer, ok_rps only the 200s; latencies are
-- wrk's, of every answer received; "codes" lists each status seen.)

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local function read_file(path)
   local f, err = io.open(path, "rb")
   if not f then
      error("post_image.lua: cannot open image '" .. tostring(path) .. "': " .. tostring(err))
   end
   local data = f:read("*a")
   f:close()
   if not data or #data == 0 then
      error("post_image.lua: image '" .. path .. "' is empty")
   end
   return data
end

-- Per thread (each wrk thread has its own Lua state; done() reads these
-- through thread:get).
ok = 0
non200 = 0
codes = {}
first_error = ""

function init(args)
   local path = args[1] or os.getenv("IMAGE")
   if not path or path == "" then
      error("post_image.lua: give the image path after '--' or in $IMAGE")
   end
   local ctype = args[2] or os.getenv("CONTENT_TYPE")
   if not ctype or ctype == "" then
      ctype = path:lower():match("%.png$") and "image/png" or "image/jpeg"
   end
   local model = os.getenv("MODEL")
   if (wrk.path == nil or wrk.path == "" or wrk.path == "/") and model and model ~= "" then
      wrk.path = "/v1/models/" .. model .. ":classify"
   end
   wrk.method = "POST"
   wrk.body = read_file(path)
   wrk.headers["Content-Type"] = ctype
   -- wrk.format() (called by wrk after init) adds Content-Length and Host;
   -- the request is built once and reused.
end

function response(status, headers, body)
   if status == 200 then
      ok = ok + 1
      return
   end
   non200 = non200 + 1
   local k = tostring(status)
   codes[k] = (codes[k] or 0) + 1
   if first_error == "" then
      first_error = (body or ""):sub(1, 200):gsub('[%c"]', " ")
   end
end

function done(summary, latency, requests)
   local n_ok, n_bad, err = 0, 0, ""
   local all = {}
   for _, t in ipairs(threads) do
      n_ok = n_ok + (t:get("ok") or 0)
      n_bad = n_bad + (t:get("non200") or 0)
      local c = t:get("codes") or {}
      for k, v in pairs(c) do
         all[k] = (all[k] or 0) + v
      end
      local e = t:get("first_error") or ""
      if err == "" then err = e end
   end
   local list = { "200:" .. n_ok }
   local keys = {}
   for k in pairs(all) do table.insert(keys, k) end
   table.sort(keys)
   for _, k in ipairs(keys) do table.insert(list, k .. ":" .. all[k]) end

   local secs = summary.duration / 1e6
   local e = summary.errors
   local function ms(us) return string.format("%.3f", us / 1000) end
   io.write(string.format(
      "RESULT requests=%d ok=%d non200=%d duration_s=%.3f rps=%.2f ok_rps=%.2f " ..
      "p50_ms=%s p90_ms=%s p99_ms=%s mean_ms=%s max_ms=%s " ..
      "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d " ..
      "codes=%s first_error=\"%s\"\n",
      summary.requests, n_ok, n_bad, secs,
      secs > 0 and summary.requests / secs or 0, secs > 0 and n_ok / secs or 0,
      ms(latency:percentile(50)), ms(latency:percentile(90)),
      ms(latency:percentile(99)), ms(latency.mean), ms(latency.max),
      e.connect, e.read, e.write, e.timeout,
      table.concat(list, ","), err))
end
