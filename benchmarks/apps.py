"""The apps every server benchmark serves: a raw ASGI hello and a chirp hello route."""

from chirp import App

BODY = b"Hello, world!"


async def raw(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


chirp_app = App()


@chirp_app.route("/")
async def hello() -> str:
    return "Hello, world!"
