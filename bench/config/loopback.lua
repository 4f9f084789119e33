-- Connects to 127.0.0.1 whatever host the URL names, so that the URL's host
-- (e.g. https://secure.example:PORT/) is what wrk sends as TLS SNI and Host
-- without touching /etc/hosts.
function wrk.resolve(host, service)
   wrk.addrs = wrk.lookup("127.0.0.1", service)
end
