"""Single sign-on by OpenID Connect for the apps (issue 13, point 6), beside the password login.

The site's identity provider (IdP) says *who* someone is; what they may do stays ours: the identity
is mapped to the :class:`~workbench.apps.auth.UserStore` user of the same name, whose role and
enterprise grants apply exactly as after a password login.  An identity without an enabled user of
that name is refused.  Logins and refusals go to the same audit log (action ``login``, detail
``oidc …``).

The flow is the authorization-code flow with PKCE (S256), a ``state`` bound to the browser by a
signed cookie and kept server-side (single use, ten minutes) and a ``nonce``; the ``id_token`` is
validated here: an asymmetric signature (RS/PS/ES 256–512) by a key of the provider's JWKS,
``iss``, ``aud`` (and ``azp``), ``exp``/``iat``/``nbf`` with a small leeway, ``nonce``.  Panel's own
OAuth providers decode the id_token without checking its signature and name the user from the
token, so they are not used; the session cookie is Panel's (``user``), set as the password login
sets it, so ``pn.state.user`` is the mapped name and the pages work unchanged.

Configuration (:func:`load_config`): a YAML or TOML file (``workbench apps serve --oidc FILE`` or
``$WORKBENCH_OIDC``), each key overridable by ``$WORKBENCH_OIDC_<KEY>``::

    issuer: https://sso.example.com/realms/main    # required; endpoints discovered from
                                                   # {issuer}/.well-known/openid-configuration
    client_id: carbon-workbench                    # required
    client_secret_env: WORKBENCH_OIDC_SECRET       # the environment variable holding the secret
                                                   # (never in the file, never on a command line);
                                                   # without it and without $WORKBENCH_OIDC_CLIENT_SECRET:
                                                   # a public client (PKCE only)
    scopes: [openid, profile, email]
    username_claim: preferred_username             # default: preferred_username, else email, else sub
    redirect_uri: https://workbench.example.com/oidc/callback   # default: this server's /oidc/callback
    # optional: authorize_url, token_url, userinfo_url, jwks_url (instead of / over discovery),
    # token_auth (client_secret_basic | client_secret_post | none), algorithms, label, ca_file, leeway

The provider's URLs must be ``https`` (``http`` only on a loopback host).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import os
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.errors import WorkbenchError

__all__ = ["ALGORITHMS", "OIDCClient", "OIDCConfig", "OIDCError", "TokenRejected", "load_config", "verify_id_token",
           "with_oidc"]

#: the signature algorithms an id_token may use (asymmetric only: never ``none``, never HMAC)
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
DEFAULT_SCOPES = ("openid", "profile", "email")
DEFAULT_CLAIMS = ("preferred_username", "email", "sub")
SECRET_ENV = "WORKBENCH_OIDC_CLIENT_SECRET"
LOGIN_PATH = "/oidc/login"
CALLBACK_PATH = "/oidc/callback"
STATE_COOKIE = "wb_oidc_state"
STATE_TTL = 600.0                     # seconds a login may take at the provider
MAX_PENDING = 10_000                  # logins under way at once (a flood cannot grow memory without end)
_KEYS = {"issuer", "client_id", "client_secret_env", "scopes", "username_claim", "redirect_uri", "authorize_url",
         "token_url", "userinfo_url", "jwks_url", "token_auth", "algorithms", "label", "ca_file", "leeway",
         "discovery"}
log = logging.getLogger(__name__)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_B64URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class OIDCError(WorkbenchError, ValueError):
    """A single sign-on configuration that cannot be used."""


class TokenRejected(WorkbenchError, ValueError):
    """A login the provider's answer does not prove (the reason goes to the audit log)."""


# ---------------------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class OIDCConfig:
    issuer: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    scopes: tuple = DEFAULT_SCOPES
    username_claim: str | None = None          # None: preferred_username, else email, else sub
    redirect_uri: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None
    jwks_url: str | None = None
    token_auth: str = "client_secret_basic"
    algorithms: tuple = ALGORITHMS
    label: str = "单点登录 / Single sign-on"
    ca_file: str | None = None
    leeway: float = 60.0
    discovery: bool = True

    @property
    def claims(self) -> tuple:
        return (self.username_claim,) if self.username_claim else DEFAULT_CLAIMS


def load_config(path=None, environ=None) -> OIDCConfig | None:
    """The single sign-on configuration of the file ``path`` (YAML, or TOML by its ``.toml`` suffix)
    and of ``$WORKBENCH_OIDC_<KEY>`` (over the file's keys); ``None`` when neither gives an
    issuer (single sign-on off).  The client secret comes only from the environment variable
    ``client_secret_env`` names (default ``$WORKBENCH_OIDC_CLIENT_SECRET``)."""
    env = os.environ if environ is None else environ
    raw: dict = {}
    if path:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise OIDCError(f"single sign-on configuration {p}: {exc.strerror or exc}") from exc
        try:
            if p.suffix.lower() == ".toml":
                import tomllib

                raw = tomllib.loads(text)
            else:
                import yaml

                raw = yaml.safe_load(text) or {}
        except Exception as exc:                            # any parse error, named with the file
            raise OIDCError(f"single sign-on configuration {p}: not readable YAML/TOML ({exc})") from exc
        if not isinstance(raw, dict):
            raise OIDCError(f"single sign-on configuration {p}: expected keys and values")
        raw = dict(raw.get("oidc", raw)) if set(raw) == {"oidc"} else dict(raw)
        if "client_secret" in raw:
            raise OIDCError(f"single sign-on configuration {p}: no client_secret in the file — put the secret in "
                            f"an environment variable and name it with client_secret_env")
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise OIDCError(f"single sign-on configuration {p}: unknown key(s) {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(_KEYS))})")
    for key in _KEYS:
        value = env.get(f"WORKBENCH_OIDC_{key.upper()}")
        if value not in (None, ""):
            raw[key] = value
    if not raw.get("issuer"):
        if raw:
            raise OIDCError("single sign-on: issuer is required (the provider's issuer URL, as in its id_tokens)")
        return None
    where = f"single sign-on configuration {path}" if path else "single sign-on ($WORKBENCH_OIDC_*)"
    if not raw.get("client_id"):
        raise OIDCError(f"{where}: client_id is required")
    secret_env = raw.get("client_secret_env")
    secret = env.get(secret_env or SECRET_ENV) or None
    if secret_env and not secret:
        raise OIDCError(f"{where}: the environment variable {secret_env} (client_secret_env) is not set")
    token_auth = str(raw.get("token_auth") or ("client_secret_basic" if secret else "none"))
    if token_auth not in ("client_secret_basic", "client_secret_post", "none"):
        raise OIDCError(f"{where}: token_auth {token_auth!r}: client_secret_basic, client_secret_post or none")
    if token_auth != "none" and not secret:
        raise OIDCError(f"{where}: token_auth {token_auth} needs a client secret (client_secret_env)")
    scopes = _words(raw.get("scopes")) or DEFAULT_SCOPES
    if "openid" not in scopes:
        scopes = ("openid", *scopes)
    algorithms = _words(raw.get("algorithms")) or ALGORITHMS
    bad = [a for a in algorithms if a not in ALGORITHMS]
    if bad:
        raise OIDCError(f"{where}: algorithms {', '.join(bad)}: only {', '.join(ALGORITHMS)}")
    cfg = OIDCConfig(
        issuer=str(raw["issuer"]), client_id=str(raw["client_id"]), client_secret=secret, scopes=scopes,
        username_claim=raw.get("username_claim") or None, redirect_uri=raw.get("redirect_uri") or None,
        authorize_url=raw.get("authorize_url") or None, token_url=raw.get("token_url") or None,
        userinfo_url=raw.get("userinfo_url") or None, jwks_url=raw.get("jwks_url") or None,
        token_auth=token_auth, algorithms=algorithms, label=str(raw.get("label") or OIDCConfig.label),
        ca_file=raw.get("ca_file") or None, leeway=float(raw.get("leeway", 60)),
        discovery=_flag(raw.get("discovery", True)))
    for key in ("issuer", "authorize_url", "token_url", "userinfo_url", "jwks_url"):
        if getattr(cfg, key):
            _check_url(getattr(cfg, key), f"{where}: {key}")
    if not cfg.discovery and not (cfg.authorize_url and cfg.token_url and cfg.jwks_url):
        raise OIDCError(f"{where}: without discovery, authorize_url, token_url and jwks_url are required")
    return cfg


def _words(value) -> tuple:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return tuple(str(v) for v in value)


def _flag(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() not in ("0", "false", "no", "off")


def _check_url(url: str, what: str) -> None:
    """https, or http on a loopback host only (tokens and the client secret travel on it)."""
    u = urllib.parse.urlsplit(str(url))
    if u.scheme == "https" and u.hostname:
        return
    if u.scheme == "http" and u.hostname in _LOOPBACK:
        return
    raise OIDCError(f"{what} {url!r}: must be an https URL (http only on a loopback host)")


# ---------------------------------------------------------------------------------------- id_token
def _b64(data: str) -> bytes:
    if not isinstance(data, str) or not set(data) <= _B64URL:
        raise TokenRejected("id_token: not base64url")
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _int(data: str) -> int:
    return int.from_bytes(_b64(data), "big")


def _public_key(jwk: dict):
    """The public key of a JWK (RSA or EC)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if jwk.get("kty") == "RSA":
        return rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
    if jwk.get("kty") == "EC":
        curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}.get(jwk.get("crv"))
        if curve is None:
            raise TokenRejected(f"JWKS: curve {jwk.get('crv')!r} not supported")
        return ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), curve()).public_key()
    raise TokenRejected(f"JWKS: key type {jwk.get('kty')!r} not supported")


def _verify_signature(alg: str, jwk: dict, signed: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    digest = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}[alg[2:]]()
    try:
        key = _public_key(jwk)
        if alg.startswith("RS") and jwk.get("kty") == "RSA":
            key.verify(signature, signed, padding.PKCS1v15(), digest)
        elif alg.startswith("PS") and jwk.get("kty") == "RSA":
            key.verify(signature, signed, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
        elif alg.startswith("ES") and jwk.get("kty") == "EC":
            half = len(signature) // 2
            if len(signature) != 2 * ((key.curve.key_size + 7) // 8):
                return False
            der = encode_dss_signature(int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"))
            key.verify(der, signed, ec.ECDSA(digest))
        else:
            return False
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return False
    return True


def _keys_for(header: dict, jwks: dict) -> list[dict]:
    alg, kid = header.get("alg"), header.get("kid")
    kty = "EC" if alg.startswith("ES") else "RSA"
    keys = [k for k in (jwks or {}).get("keys", []) if isinstance(k, dict) and k.get("kty") == kty
            and k.get("use", "sig") == "sig" and k.get("alg", alg) == alg]
    if kid is not None:
        return [k for k in keys if k.get("kid") == kid]
    return keys if len(keys) == 1 else []


def verify_id_token(token: str, jwks: dict, *, issuer: str, client_id: str, nonce: str,
                    algorithms=ALGORITHMS, leeway: float = 60.0, now: float | None = None) -> dict:
    """The claims of ``token`` once it is proven: signed by a key of ``jwks`` with an allowed
    asymmetric algorithm, issued by ``issuer`` for ``client_id``, not expired, and carrying the
    ``nonce`` of this login; else :class:`TokenRejected` with the reason."""
    now = time.time() if now is None else now
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise TokenRejected("id_token: not a signed JWT")
    try:
        header = json.loads(_b64(parts[0]))
        claims = json.loads(_b64(parts[1]))
        signature = _b64(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenRejected("id_token: not a signed JWT") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenRejected("id_token: not a signed JWT")
    alg = header.get("alg")
    if alg not in algorithms or alg not in ALGORITHMS:
        raise TokenRejected(f"id_token: algorithm {alg!r} not accepted")
    if header.get("crit"):
        raise TokenRejected("id_token: critical header parameters not supported")
    keys = _keys_for(header, jwks)
    if not keys:
        raise TokenRejected(f"id_token: no key {header.get('kid')!r} for {alg} in the provider's JWKS")
    signed = f"{parts[0]}.{parts[1]}".encode("ascii")
    if not any(_verify_signature(alg, k, signed, signature) for k in keys):
        raise TokenRejected("id_token: the signature does not verify")
    if claims.get("iss") != issuer:
        raise TokenRejected(f"id_token: issuer {claims.get('iss')!r} is not {issuer!r}")
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in auds:
        raise TokenRejected(f"id_token: audience {aud!r} does not include this client")
    if ("azp" in claims or len(auds) > 1) and claims.get("azp") != client_id:
        raise TokenRejected(f"id_token: authorized party {claims.get('azp')!r} is not this client")
    for key in ("exp", "iat"):
        if not isinstance(claims.get(key), (int, float)) or isinstance(claims.get(key), bool):
            raise TokenRejected(f"id_token: no {key}")
    if now > claims["exp"] + leeway:
        raise TokenRejected("id_token: expired")
    if claims["iat"] > now + leeway or (isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] > now + leeway):
        raise TokenRejected("id_token: issued in the future")
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"].encode(), nonce.encode()):
        raise TokenRejected("id_token: nonce does not match this login")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenRejected("id_token: no subject")
    return claims


def _unverified_claims(token) -> dict:
    """The payload of a token that failed (for the audit detail only — never trusted)."""
    try:
        claims = json.loads(_b64(token.split(".")[1]))
        return claims if isinstance(claims, dict) else {}
    except (ValueError, IndexError):                       # unreadable: nothing
        return {}


# ---------------------------------------------------------------------------------------- the client
@dataclass
class _Pending:
    nonce: str
    verifier: str
    redirect_uri: str
    next_url: str
    created: float


class OIDCClient:
    """The relying party: the provider's metadata and keys (cached), the logins under way, the
    authorization URL and the code exchange."""

    def __init__(self, config: OIDCConfig):
        self.config = config
        self._meta: dict | None = None
        self._jwks: dict | None = None
        self._jwks_at = 0.0
        self._pending: dict[str, _Pending] = {}

    async def _fetch(self, url: str, what: str, *, body: str | None = None, headers: dict | None = None) -> dict:
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

        request = HTTPRequest(url, method="POST" if body is not None else "GET", body=body,
                              headers={"Accept": "application/json", **(headers or {})}, follow_redirects=False,
                              connect_timeout=10, request_timeout=15, ca_certs=self.config.ca_file)
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as exc:
            detail = ""
            if exc.response is not None and exc.response.body:
                try:
                    detail = " " + str(json.loads(exc.response.body).get("error", ""))[:80]
                except (ValueError, AttributeError):
                    pass
            raise TokenRejected(f"{what}: HTTP {exc.code}{detail}") from exc
        except OSError as exc:
            raise TokenRejected(f"{what}: provider unreachable ({exc})") from exc
        try:
            data = json.loads(response.body)
        except ValueError as exc:
            raise TokenRejected(f"{what}: not JSON") from exc
        if not isinstance(data, dict):
            raise TokenRejected(f"{what}: not a JSON object")
        return data

    async def metadata(self) -> dict:
        """The endpoints: discovered from the issuer (once), the configured ones over them."""
        if self._meta is None:
            cfg, meta = self.config, {}
            if cfg.discovery and not (cfg.authorize_url and cfg.token_url and cfg.jwks_url):
                url = cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
                meta = await self._fetch(url, "discovery")
                if meta.get("issuer") != cfg.issuer:
                    raise TokenRejected(f"discovery: issuer {meta.get('issuer')!r} is not {cfg.issuer!r}")
            found = {"authorize_url": cfg.authorize_url or meta.get("authorization_endpoint"),
                     "token_url": cfg.token_url or meta.get("token_endpoint"),
                     "userinfo_url": cfg.userinfo_url or meta.get("userinfo_endpoint"),
                     "jwks_url": cfg.jwks_url or meta.get("jwks_uri")}
            for key, url in found.items():
                if url is None and key != "userinfo_url":
                    raise TokenRejected(f"discovery: no {key}")
                if url is not None:
                    try:
                        _check_url(url, key)
                    except OIDCError as exc:
                        raise TokenRejected(f"discovery: {exc}") from exc
            self._meta = found
        return self._meta

    async def jwks(self, *, refresh: bool = False) -> dict:
        if self._jwks is None or (refresh and time.monotonic() - self._jwks_at > 30):
            self._jwks = await self._fetch((await self.metadata())["jwks_url"], "JWKS")
            self._jwks_at = time.monotonic()
        return self._jwks

    def _purge(self) -> None:
        cutoff = time.monotonic() - STATE_TTL
        for key in [k for k, p in self._pending.items() if p.created < cutoff]:
            del self._pending[key]

    async def begin(self, redirect_uri: str, next_url: str) -> tuple[str, str]:
        """``(the provider's authorization URL, state)`` of a new login; the state, nonce and PKCE
        verifier stay here."""
        meta = await self.metadata()
        self._purge()
        if len(self._pending) >= MAX_PENDING:
            raise TokenRejected("too many logins under way")
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        self._pending[state] = _Pending(nonce, verifier, redirect_uri, next_url, time.monotonic())
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": self.config.client_id, "redirect_uri": redirect_uri,
            "scope": " ".join(self.config.scopes), "state": state, "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256"})
        sep = "&" if "?" in meta["authorize_url"] else "?"
        return f"{meta['authorize_url']}{sep}{query}", state

    def take(self, state: str) -> _Pending | None:
        """The login under way of ``state`` (removed: a state is used once), ``None`` if unknown or
        too old."""
        self._purge()
        return self._pending.pop(state, None) if isinstance(state, str) else None

    async def complete(self, code: str, pending: _Pending) -> dict:
        """The proven claims of the login: the code exchanged (with the PKCE verifier), the id_token
        verified, the userinfo added when the id_token does not name the user."""
        cfg, meta = self.config, await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": pending.redirect_uri,
                "code_verifier": pending.verifier}
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if cfg.token_auth == "client_secret_basic":
            pair = f"{urllib.parse.quote(cfg.client_id, safe='')}:{urllib.parse.quote(cfg.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = cfg.client_id
            if cfg.token_auth == "client_secret_post":
                form["client_secret"] = cfg.client_secret
        tokens = await self._fetch(meta["token_url"], "token endpoint", body=urllib.parse.urlencode(form),
                                   headers=headers)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise TokenRejected("token endpoint: no id_token (is the scope openid granted?)")
        check = {"issuer": cfg.issuer, "client_id": cfg.client_id, "nonce": pending.nonce,
                 "algorithms": cfg.algorithms, "leeway": cfg.leeway}
        try:
            try:
                claims = verify_id_token(id_token, await self.jwks(), **check)
            except TokenRejected as exc:
                if "no key" not in str(exc):
                    raise
                claims = verify_id_token(id_token, await self.jwks(refresh=True), **check)  # keys rolled over
        except TokenRejected as exc:
            said = _unverified_claims(id_token)
            said = {c: said[c] for c in (*cfg.claims, "exp") if isinstance(said.get(c), (str, int, float))}
            raise TokenRejected(f"{exc}; unverified claims {said}"[:400] if said else str(exc)) from exc
        named = [c for c in cfg.claims if c != "sub" or cfg.username_claim == "sub"]    # sub: the last resort
        if not any(c in claims for c in named) and meta.get("userinfo_url") and tokens.get("access_token"):
            info = await self._fetch(meta["userinfo_url"], "userinfo",
                                     headers={"Authorization": f"Bearer {tokens['access_token']}"})
            if info.get("sub") != claims["sub"]:
                raise TokenRejected("userinfo: subject differs from the id_token's")
            claims = {**info, **claims}
        return claims

    def username(self, claims: dict) -> str:
        """The user name the claims give (the configured claim, else the first of
        preferred_username, email, sub); an email not verified by the provider is not used."""
        for claim in self.config.claims:
            value = claims.get(claim)
            if isinstance(value, str) and value.strip():
                if claim == "email" and claims.get("email_verified") is False:
                    raise TokenRejected("the email address is not verified by the provider")
                return value.strip()
        raise TokenRejected(f"no claim naming the user ({', '.join(self.config.claims)})")


# ---------------------------------------------------------------------------------------- the server
_ERRORS = {
    "refused": "单点登录：没有此用户或已停用 / Single sign-on: no workbench user of that name, or disabled",
    "failed": "单点登录失败 / Single sign-on failed",
}


def _local(url) -> bool:
    """A redirect target inside this server (no scheme, no host): never an open redirect."""
    return isinstance(url, str) and url.startswith("/") and not url.startswith("//") and "\\" not in url


def _handlers(client: OIDCClient, store):
    from panel.auth import BasicLoginHandler
    from tornado.web import RequestHandler

    def root(handler) -> str:
        """The server's path prefix ('' at the root)."""
        path = handler.request.path
        for suffix in (LOGIN_PATH, CALLBACK_PATH):
            if path.endswith(suffix):
                return path[: -len(suffix)]
        return ""

    def refuse(handler, actor: str, reason: str, kind: str = "failed") -> None:
        store.log(actor or "?", "login", detail=f"oidc: {reason}"[:500], client=handler.request.remote_ip or "",
                  ok=False)
        handler.clear_cookie(STATE_COOKIE, path=root(handler) or "/")
        handler.redirect(f"{root(handler)}/login?error=" + urllib.parse.quote(_ERRORS[kind]))

    class Login(RequestHandler):
        """``/oidc/login``: off to the provider, the login's state bound to this browser."""

        async def get(self):
            here = root(self)
            next_url = self.get_cookie("next_url", "") or self.get_argument("next", "")
            next_url = next_url if _local(next_url) else f"{here}/"
            redirect_uri = client.config.redirect_uri or f"{self.request.protocol}://{self.request.host}{here}" \
                                                         f"{CALLBACK_PATH}"
            try:
                url, state = await client.begin(redirect_uri, next_url)
            except TokenRejected as exc:
                refuse(self, "?", str(exc))
                return
            self.set_signed_cookie(STATE_COOKIE, state, expires_days=None, httponly=True, samesite="Lax",
                                   path=here or "/", secure=self.request.protocol == "https")
            self.redirect(url)

    class Callback(RequestHandler):
        """``/oidc/callback``: the provider's answer checked, the identity mapped to our user."""

        async def get(self):
            state = self.get_argument("state", "")
            bound = (self.get_signed_cookie(STATE_COOKIE, max_age_days=1) or b"").decode("utf-8", "replace")
            if not state or not bound or not hmac.compare_digest(state.encode(), bound.encode()):
                refuse(self, "?", "state does not match this browser's login")
                return
            pending = client.take(state)
            if pending is None:
                refuse(self, "?", "login expired or already used")
                return
            error = self.get_argument("error", "")
            if error:
                refuse(self, "?", f"provider: {error} {self.get_argument('error_description', '')}"[:200])
                return
            try:
                claims = await client.complete(self.get_argument("code", ""), pending)
                name = client.username(claims)
            except TokenRejected as exc:
                refuse(self, "?", str(exc))
                return
            except Exception as exc:
                log.exception("single sign-on: unexpected failure")
                refuse(self, "?", f"unexpected failure ({type(exc).__name__}; see the server log)")
                return
            who = f"{client.config.issuer} sub={claims['sub']}"
            principal = store.principal(name, client=self.request.remote_ip or "")
            if principal is None:
                refuse(self, name[:64], f"no enabled user of this name ({who})", "refused")
                return
            store.log(principal.name, "login", detail=f"oidc {who}", client=self.request.remote_ip or "")
            self.clear_cookie(STATE_COOKIE, path=root(self) or "/")
            BasicLoginHandler.set_current_user(self, principal.name)  # Panel's session cookie, as for a password
            self.redirect(pending.next_url)

    return Login, Callback


def with_oidc(base, store, config: OIDCConfig | OIDCClient):
    """The auth provider ``base`` (the password login) with single sign-on beside it: the login page
    gains a link to ``/oidc/login``; ``/oidc/login`` and ``/oidc/callback`` are served."""
    from bokeh.server.auth_provider import AuthProvider

    client = config if isinstance(config, OIDCClient) else OIDCClient(config)
    login, callback = _handlers(client, store)
    link = (f'<div style="text-align:center;margin:1.2em 0 .4em;color:#666;font-size:.9em">或 / or</div>'
            f'<a id="oidc-login" href=".{LOGIN_PATH}" style="display:block;text-align:center;padding:.6em;'
            f'border:1px solid #00705f;border-radius:4px;color:#00705f;text-decoration:none">'
            f'{html.escape(client.config.label)}</a>')

    class WithLink:
        """The login page's template, the single sign-on link added inside its form."""

        def __init__(self, template):
            self.template = template

        def render(self, *args, **kwargs):
            page = self.template.render(*args, **kwargs)
            at = page.rfind("</form>")
            at = at if at >= 0 else page.rfind("</body>")
            return page[:at] + link + page[at:] if at >= 0 else page + link

    class Provider(AuthProvider):
        def __init__(self):
            self.base = base
            self.client = client
            super().__init__()

        def __getattr__(self, name):
            return getattr(self.base, name)

        @property
        def endpoints(self):
            return [*super().endpoints, (LOGIN_PATH, login), (CALLBACK_PATH, callback)]

        @property
        def get_user(self):
            return base.get_user

        @property
        def get_user_async(self):
            return base.get_user_async

        @property
        def get_login_url(self):
            return base.get_login_url

        @property
        def login_url(self):
            return base.login_url

        @property
        def login_handler(self):
            handler = base.login_handler
            if handler is None:
                return None
            return type(handler.__name__, (handler,), {"_login_template": WithLink(handler._login_template)})

        @property
        def logout_url(self):
            return base.logout_url

        @property
        def logout_handler(self):
            return base.logout_handler

    return Provider()
