-- The scale test's background load: requests spread over all generated hosts, on paths the
-- test never changes (/web and /status), so every answer should be a 200.
local hosts = tonumber(os.getenv("SCALE_HOSTS") or "10000")
local paths = {"/web", "/web/page", "/status"}
local n = 0

request = function()
   n = n + 1
   local i = (n * 7919) % hosts
   return wrk.format("GET", paths[n % 3 + 1], {["Host"] = "app-" .. i .. ".scale.example"})
end
