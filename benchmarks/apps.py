"""The apps the server benchmarks serve: the raw ASGI hello and the same hello as a chirp route."""

from hello_raw import app as raw

from chirp import App

__all__ = ["chirp_app", "raw"]

chirp_app = App()


@chirp_app.route("/")
async def hello() -> str:
    return "Hello, world!"
