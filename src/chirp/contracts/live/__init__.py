"""The live contract (`chirp check --live`): boot the app under pounce and verify it over HTTP.

`probes.run_live()` starts the server and records what it answers (`observe.LiveRun`); the
`live.*` rules in `chirp.contracts.rules.live` judge that record, so live findings join the
same report, formats and exit codes as the static ones.
"""
