"""The echo of `ws_echo.py` written as a chirp `@app.websocket` route, so the Autobahn|Testsuite
also covers chirp's WebSocket object and dispatch (`python benchmarks/autobahn.py --chirp`)."""

from chirp import App, AppConfig, WebSocket

app = App(AppConfig())


@app.websocket("/")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for message in websocket:
        await websocket.send(message)
