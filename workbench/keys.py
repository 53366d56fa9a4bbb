"""API keys for hosted model providers: the OS keyring, with environment variables first.

Keys live in the OS keyring under the service ``workbench`` with the provider name
(``openai``, ``anthropic``, ...) as the user name. The provider's documented environment
variable (``OPENAI_API_KEY``, ...) is the scriptable alternative and wins over the keyring.

A keyring can be missing (headless Linux has only keyring's ``fail`` backend) or hang
(a locked Secret Service waits for an unlock prompt), so every keyring call runs in a
daemon thread with a time limit. Reading a key never raises for keyring trouble: the app
keeps working with environment variables. No message ever contains a key.

``keyring`` is imported inside the worker thread: importing this module stays cheap.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from workbench.errors import NotFoundError, ValidationError, WorkbenchError

SERVICE = "workbench"

ENV_VARS: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "cohere": "COHERE_API_KEY",
}

_PROVIDER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_ENV_HINT = "set the provider's environment variable (OPENAI_API_KEY, ...) instead"

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Worker threads that passed their time limit and have not finished yet. While one is
# stuck (a keyring waiting for an unlock prompt), new calls fail fast instead of piling
# up more threads and more unlock prompts.
_stuck: list[threading.Thread] = []
_stuck_lock = threading.Lock()


class KeyringUnavailable(WorkbenchError):
    """No keyring backend exists, it failed, or it did not answer within the time limit."""


def check_provider(provider: str) -> str:
    """Return ``provider`` if it is a valid provider name, else raise ValidationError.

    The name is not repeated in the message: a key pasted in its place must not be shown.
    """
    if not isinstance(provider, str) or not _PROVIDER.fullmatch(provider):
        raise ValidationError(
            "invalid provider name: use 1-64 lowercase letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (for example openai, anthropic, together_ai)"
        )
    return provider


def env_var(provider: str) -> str:
    """The environment variable that holds ``provider``'s key (``OPENAI_API_KEY``, ...)."""
    check_provider(provider)
    if provider in ENV_VARS:
        return ENV_VARS[provider]
    return re.sub(r"[^A-Z0-9]", "_", provider.upper()) + "_API_KEY"


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValidationError("the key is empty: nothing was stored")
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        raise ValidationError(
            "the key contains whitespace or control characters (an API key is one word): "
            "nothing was stored"
        )


def _backend_name(backend: object) -> str:
    """``fail.Keyring`` for keyring's own backends, the full class path for others."""
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    return name.removeprefix("keyring.backends.")


def _call(op: Callable[[Any], _T], timeout_s: float, hint: str) -> _T:
    """Run ``op(backend)`` in a daemon thread; give up after ``timeout_s`` seconds.

    Every failure becomes :class:`KeyringUnavailable` whose message ends with ``hint``.
    """
    with _stuck_lock:
        _stuck[:] = [t for t in _stuck if t.is_alive()]
        if _stuck:
            raise KeyringUnavailable(
                "the keyring has not yet answered an earlier request that passed its time "
                f"limit (a locked keyring waits for an unlock prompt); {hint}"
            )
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            import keyring
            from keyring.backends import fail, null
            from keyring.errors import NoKeyringError

            backend = keyring.get_keyring()
            box["backend"] = _backend_name(backend)
            # null.Keyring (keyring.disable()) would accept a key and silently drop it.
            if isinstance(backend, fail.Keyring | null.Keyring):
                box["missing"] = True
                return
            # keyrings.alt's file backends keep keys unencrypted (or weakly) on disk; one
            # installed as a test dependency must not become where keys go by accident.
            if type(backend).__module__.startswith("keyrings.alt") and not os.environ.get(
                "PYTHON_KEYRING_BACKEND"
            ):
                box["missing"] = True
                return
            box["result"] = op(backend)
        except NoKeyringError:
            box["missing"] = True
        except BaseException as exc:  # handed to the caller, who maps it
            box["error"] = exc

    thread = threading.Thread(target=work, name="workbench-keyring", daemon=True)
    thread.start()
    thread.join(timeout_s)
    backend = box.get("backend", "not yet detected")
    if thread.is_alive():
        with _stuck_lock:
            _stuck.append(thread)
        raise KeyringUnavailable(
            f"the keyring did not answer within the time limit of {timeout_s:g} s "
            f"(keyring backend: {backend}; a locked keyring waits for an unlock prompt); {hint}"
        )
    return _result(box, backend, hint)


def _result(box: dict[str, Any], backend: str, hint: str) -> Any:
    """The worker's result, or its failure as :class:`KeyringUnavailable`."""
    if box.get("missing"):
        raise KeyringUnavailable(
            f"no keyring is available on this machine (keyring backend: {backend}); {hint}"
        )
    error = box.get("error")
    if error is None:
        return box["result"]
    if isinstance(error, WorkbenchError):
        raise error
    detail = type(error).__name__
    if "backend" not in box:
        # Loading the backend failed (a bad PYTHON_KEYRING_BACKEND, ...): no key was involved
        # yet, so its message is safe to show. After that, only the type: a backend's
        # message is not ours to vouch for.
        detail = f"{detail}: {error}"
    raise KeyringUnavailable(
        f"the keyring failed ({detail}; keyring backend: {backend}); {hint}"
    ) from None


def _hint(provider: str) -> str:
    return f"set {env_var(provider)} in the environment instead"


def _from_env(provider: str) -> tuple[str | None, str]:
    var = env_var(provider)
    value = os.environ.get(var, "").strip()
    return (value, f"env:{var}") if value else (None, "none")


def _stored(provider: str, timeout_s: float, hint: str) -> str | None:
    def read(kr: Any) -> str | None:
        return kr.get_password(SERVICE, provider)

    return _call(read, timeout_s, hint)


def get_key(provider: str, *, timeout_s: float = 3.0) -> tuple[str | None, str]:
    """The key for ``provider`` and where it came from.

    Args:
        provider: A provider name such as ``openai``.
        timeout_s: How long to wait for the keyring.

    Returns:
        ``(key, source)``: source is ``"env:OPENAI_API_KEY"`` (the environment variable,
        which wins), ``"keyring"`` or ``"none"`` (with key ``None``). A missing, broken or
        hanging keyring gives ``(None, "none")``: it never raises for keyring trouble.
    """
    key, source = _from_env(provider)
    if key is not None:
        return key, source
    try:
        stored = _stored(provider, timeout_s, _hint(provider))
    except KeyringUnavailable as exc:
        _log.debug("no key from the keyring for %s: %s", provider, exc)
        return None, "none"
    remember(stored)
    return (stored, "keyring") if stored else (None, "none")


def set_key(provider: str, key: str, *, timeout_s: float = 3.0) -> None:
    """Store ``key`` for ``provider`` in the keyring.

    Raises:
        ValidationError: An invalid provider name, or an empty key or one with whitespace.
        KeyringUnavailable: No keyring, a failing one, or no answer within ``timeout_s``.
    """
    check_provider(provider)
    _check_key(key)
    _call(lambda kr: kr.set_password(SERVICE, provider, key), timeout_s, _hint(provider))


def delete_key(provider: str, *, timeout_s: float = 3.0) -> None:
    """Remove ``provider``'s key from the keyring.

    Raises:
        NotFoundError: The keyring holds no key for ``provider``.
        KeyringUnavailable: No keyring, a failing one, or no answer within ``timeout_s``.
    """

    def delete(kr: Any) -> bool:
        if kr.get_password(SERVICE, provider) is None:
            return False
        kr.delete_password(SERVICE, provider)
        return True

    hint = _hint(provider)
    if not _call(delete, timeout_s, hint):
        note = ""
        if _from_env(provider)[0] is not None:
            note = f" ({env_var(provider)} is set in the environment: unset it there)"
        raise NotFoundError(f"no key for {provider} in the keyring{note}")


def scan_keys(
    providers: Iterable[str] | None = None, *, timeout_s: float = 3.0
) -> tuple[list[dict[str, Any]], str | None]:
    """Like :func:`list_keys`, and also why the keyring could not be asked (None if it could).

    The first keyring failure stops the keyring checks, so a hanging keyring costs one
    time limit, not one per provider.
    """
    names = list(ENV_VARS)
    for name in sorted(set(providers or ())):
        if check_provider(name) not in names:
            names.append(name)
    problem: str | None = None
    rows = []
    for name in names:
        in_keyring = False
        if problem is None:
            try:
                in_keyring = bool(_stored(name, timeout_s, _ENV_HINT))
            except KeyringUnavailable as exc:
                problem = str(exc)
        var = env_var(name)
        env = bool(os.environ.get(var, "").strip())
        rows.append({"provider": name, "keyring": in_keyring, "env": env, "env_var": var})
    return rows, problem


def list_keys(
    providers: Iterable[str] | None = None, *, timeout_s: float = 3.0
) -> list[dict[str, Any]]:
    """Which providers have a key in the keyring and in the environment; never the keys.

    Args:
        providers: Providers to check besides the known ones (the keys of ``ENV_VARS``).
        timeout_s: How long to wait for the keyring per call.

    Returns:
        One ``{"provider", "keyring", "env", "env_var"}`` dict per provider. ``keyring`` is
        False where the keyring is unavailable; :func:`scan_keys` also says why.
    """
    return scan_keys(providers, timeout_s=timeout_s)[0]


def _b64_forms(data: bytes) -> set[str]:
    """Base64 of ``data`` alone, and the part that is the same wherever it sits in a stream.

    In a longer base64 text (``Basic base64("user:KEY")``) the secret's encoding depends
    on its offset modulo 3; the characters made only of its own bits do not.
    """
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(data).decode("ascii")
        forms |= {whole, whole.rstrip("=")}
        for offset in (0, 1, 2):
            text = encode(b"\0" * offset + data).decode("ascii").rstrip("=")
            start = (offset * 8 + 5) // 6  # characters that hold bits of the padding
            end = ((offset + len(data)) * 8) // 6  # full characters of the secret's bits
            core = text[start:end]
            if len(core) >= 8:
                forms.add(core)
    return forms


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret, its URL-encoded and its base64 forms in ``text`` with ``***``.

    Secrets shorter than 4 characters are ignored (they would blank out ordinary words).
    """
    forms: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        for encoded in (secret, quote(secret), quote(secret, safe=""), quote_plus(secret)):
            forms |= {encoded, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)}
        forms |= _b64_forms(secret.encode("utf-8"))
    if not forms:
        return text
    # Longest first, so a form that contains another is replaced whole.
    pattern = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.sub(pattern, "***", text)


_CREDENTIAL_VARS = re.compile(
    r"(_API_KEY|_AUTH_TOKEN|_ACCESS_TOKEN|_SECRET_KEY|_SECRET|_TOKEN|PASSWORD)$")
_SEEN: set[str] = set()
"""Secrets this process read from the keyring (never written anywhere)."""


def remember(secret: str | None) -> None:
    """Note a secret read from the keyring, so error text shown later is scrubbed of it."""
    if secret:
        _SEEN.add(secret)


def known_secrets() -> list[str]:
    """Every secret error text may hold: those read from the keyring by this process and the
    credential-looking environment variables (``PGPASSWORD`` included)."""
    return [*_SEEN, *environment_secrets()]


def environment_secrets() -> list[str]:
    """Values of credential-looking environment variables (``*_API_KEY``, ``*_TOKEN``,
    ``*PASSWORD``...),
    to scrub from error text: client libraries may send them without being asked."""
    return [
        value
        for name, value in os.environ.items()
        if _CREDENTIAL_VARS.search(name.upper()) and len(value) >= 8
    ]
