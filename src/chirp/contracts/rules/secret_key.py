"""`secret_key.*`: the key that signs sessions and CSRF tokens must exist, be strong and stay out of source."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Location, Severity, levels, rule
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING

MIN_LENGTH = 32
MIN_DISTINCT = 8
# Values people paste from tutorials or leave from scaffolds; matched case-insensitively.
PLACEHOLDERS = frozenset(
    {"secret", "secret-key", "secret_key", "secretkey", "dev", "development", "test", "testing",
     "password", "default", "key", "changeme", "change-me", "change_me", "xxx", "todo"}
)  # fmt: skip
PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "replace-me", "replace_me", "placeholder",
                       "your-secret", "your_secret", "insecure", "not-secret", "notsecret", "dummy")  # fmt: skip


def weakness(key: str) -> str | None:
    """Why `key` is too weak to sign anything, or None when it is fine."""
    lowered = key.strip().lower()
    if lowered in PLACEHOLDERS or any(m in lowered for m in PLACEHOLDER_MARKERS):
        return "it is a well-known placeholder value"
    if len(key) < MIN_LENGTH:
        return f"it is {len(key)} characters long (at least {MIN_LENGTH} needed)"
    if len(set(key)) < MIN_DISTINCT:
        return f"it uses only {len(set(key))} distinct characters (at least {MIN_DISTINCT} needed)"
    return None


@rule(
    "secret_key.empty",
    title="No secret key",
    severity=levels(None, E, E),
    hint="Export CHIRP_SECRET_KEY (32+ random characters) and build the config with AppConfig.from_env().",
)
def empty(snap: Snapshot) -> Iterator[Finding]:
    """Sessions and CSRF tokens are signed with the secret key; without one they are forgeable."""
    if snap.config is not None and not snap.config.secret_key:
        yield Finding(
            f"secret_key is empty in {snap.view_env}: sessions and CSRF tokens cannot be signed safely",
            snap.config_location,
            "secret_key",
        )


@rule(
    "secret_key.weak",
    title="Weak secret key",
    severity=levels(W, W, E),
    hint="Generate a key with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`.",
)
def weak(snap: Snapshot) -> Iterator[Finding]:
    """A short, repetitive or placeholder key can be guessed, and every signed cookie with it."""
    key = snap.config.secret_key if snap.config is not None else ""
    reason = weakness(key) if key else None
    if reason:
        yield Finding(f"secret_key is weak: {reason}", snap.config_location, "secret_key")


@rule(
    "secret_key.hardcoded",
    title="Secret key written in source",
    severity=levels(None, W, W),
    hint="Read the key from the environment or a secrets file: AppConfig.from_env() with CHIRP_SECRET_KEY.",
)
def hardcoded(snap: Snapshot) -> Iterator[Finding]:
    """A key in source is in every clone, backup and CI log of the repository."""
    cfg = snap.config
    if cfg is None or not cfg.secret_key or "secret_key" in cfg.from_environment or len(cfg.secret_key) < 4:
        return
    for path, text in snap.source_texts:
        index = text.find(cfg.secret_key)
        if index >= 0:
            line = text.count("\n", 0, index) + 1
            yield Finding("secret_key is a literal in the source code", Location(path, line), "secret_key")
            return


@rule(
    "secret_key.fallback_weak",
    title="Weak or reused fallback secret key",
    severity=levels(W, W, E),
    hint="Drop the weak entry from secret_key_fallbacks once its sessions have expired; fallbacks must be as strong as the key.",
)
def fallback_weak(snap: Snapshot) -> Iterator[Finding]:
    """Cookies signed with any fallback key are accepted, so one weak fallback weakens the whole app."""
    cfg = snap.config
    if cfg is None:
        return
    for index, key in enumerate(cfg.secret_key_fallbacks):
        subject = f"secret_key_fallbacks[{index}]"
        if not key:
            yield Finding(f"{subject} is empty", snap.config_location, subject)
        elif key == cfg.secret_key:
            yield Finding(
                f"{subject} repeats the current secret_key; it adds nothing", snap.config_location, subject
            )
        elif reason := weakness(key):
            yield Finding(f"{subject} is weak: {reason}", snap.config_location, subject)


RULES = (empty, weak, hardcoded, fallback_weak)
