"""Deployment artefacts in the contract: Dockerfiles, Kubernetes manifests and Compose files.

`discover.load()` finds and parses them into `model.Artefacts` (every value with the file and
line it came from); the `probes.*`, `shutdown.*`, `capacity.*`, `secrets.*`, `container.*` and
`artefacts.*` rules judge that record against the app and server settings of the snapshot.
The parsers (PyYAML, dockerfile-parse) are imported only when a project has such files, so a
check without artefacts pays nothing for them.
"""
