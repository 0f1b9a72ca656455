"""Load tests and benchmarks of the QR scan-to-login flow.

- ``locustfile.py``: locust journeys of real pages and phones.
- ``bench.py``: the reproducible benchmark behind ``docs/benchmarks.md``.
- ``baseline.py``: a bare aiohttp WebSocket server with the same public contract,
  the yardstick every benchmark number is compared with.
- ``make_users.py``: creates the phone accounts both of them log in with.
- ``roundtrips.py``: what a Redis round trip costs, alone and pipelined.
- ``allocstats.py``: the embedded server's allocators before and after many flows.
- ``limiter.py``: what a rate-limit hit costs the memory broker, by live counters.
- ``auditwrite.py``: what an audit row costs the embedded database, by way of writing.
"""
