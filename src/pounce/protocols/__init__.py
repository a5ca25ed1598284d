"""Sans-IO protocol state machines: bytes in, events out; no sockets, no app."""
