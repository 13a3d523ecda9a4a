-- wrk script for bench/soak.py: every connection cycles through the soak app's four routes
-- (bench/apps/soakapp.py), so each worker sees small, JSON, 64 KiB and POST-echo requests all the
-- time. The echo body is 16 KiB. soak.py may append a `delay()` function to slow the load down.
local requests = {}
local n = 0

function init(args)
   local body = string.rep("soak", 4096)
   requests[1] = wrk.format("GET", "/plaintext", {})
   requests[2] = wrk.format("GET", "/json", {})
   requests[3] = wrk.format("GET", "/bytes64k", {})
   requests[4] = wrk.format("POST", "/echo", {["Content-Type"] = "application/octet-stream"}, body)
end

function request()
   n = n % #requests + 1
   return requests[n]
end
