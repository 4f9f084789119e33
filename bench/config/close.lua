-- New TLS connections per second: every request carries "Connection: close", so the server
-- closes after answering and wrk opens (and handshakes) a new connection for the next request.
-- Like loopback.lua, connects to 127.0.0.1 whatever host the URL names (the URL's host is the
-- SNI).
function wrk.resolve(host, service)
   wrk.addrs = wrk.lookup("127.0.0.1", service)
end
wrk.headers["Connection"] = "close"
