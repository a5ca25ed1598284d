"""A raw ASGI app whose every request costs a fixed slice of CPU (a SHA-256 chain of 2,000
rounds, about 0.5 ms), for measuring how workers scale when the server's work dominates rather
than the load generator's."""

import hashlib

from hello_raw import lifespan

ROUNDS = 2000


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    digest = b"pounce"
    for _ in range(ROUNDS):
        digest = hashlib.sha256(digest).digest()
    body = digest.hex().encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
