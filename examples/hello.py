"""The smallest chirp app: `chirp run hello:app` from this directory."""

from chirp import App, AppConfig

app = App(AppConfig.from_env())


@app.route("/")
def index() -> str:
    return "Hello!"


@app.route("/greet/{name}")
async def greet(name: str) -> dict[str, str]:
    return {"greeting": f"Hello, {name}!"}
