-- wrk script for the `echo` app: every request is a POST with the same 1 MiB body.
-- The body is built once at load time, so wrk spends its time sending, not generating.
wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
