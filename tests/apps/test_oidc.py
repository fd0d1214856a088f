"""Single sign-on by OpenID Connect (issue 13, point 6): workbench.apps.oidc.

In process: the configuration (YAML/TOML/environment, the client secret only from the environment,
https only) and the id_token check (signature by the JWKS, algorithm, issuer, audience, expiry,
nonce).  End to end: a fake provider in this process (discovery, authorize, token with PKCE and
client authentication checked, JWKS, userinfo), `workbench apps serve --oidc` in a subprocess and
Debian's Chromium: the identity alice reaches /status with ent-a's numbers only; an unknown
identity, a disabled user, a tampered and an expired id_token are refused; the audit log holds
every login and refusal.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from status_lake import build

from workbench.apps.auth import UserStore
from workbench.apps.oidc import (
    OIDCError,
    TokenRejected,
    load_config,
    verify_id_token,
    with_oidc,
)
from workbench.apps.status import summary
from workbench.reports.status import data_status

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "carbon-workbench"
SECRET = "s3cret-of-the-test-client"  # only in the server's environment
SECRET_ENV = "WB_TEST_OIDC_SECRET"


# ---------------------------------------------------------------------------------------- JWT helpers
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(n: int) -> str:
    return _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def sign(key, claims: dict, *, kid: str = "k1", alg: str = "RS256") -> str:
    head = _b64(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    data = f"{head}.{body}".encode()
    if alg == "RS256":
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        raise ValueError(alg)
    return f"{head}.{body}.{_b64(sig)}"


def jwk(key, kid: str = "k1") -> dict:
    pub = key.public_key().public_numbers()
    if isinstance(key, rsa.RSAPrivateKey):
        return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": _uint(pub.n), "e": _uint(pub.e)}
    return {"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256", "x": _b64(pub.x.to_bytes(32, "big")),
            "y": _b64(pub.y.to_bytes(32, "big"))}


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# ---------------------------------------------------------------------------------------- configuration
def test_configuration_from_yaml_toml_and_the_environment(tmp_path):
    y = tmp_path / "oidc.yaml"
    y.write_text("issuer: https://sso.example.com/realms/main\nclient_id: wb\nclient_secret_env: MY_SECRET\n"
                 "scopes: [profile, email]\nusername_claim: email\n", encoding="utf-8")
    cfg = load_config(y, {"MY_SECRET": "abc"})
    assert (cfg.issuer, cfg.client_id, cfg.client_secret, cfg.token_auth) == \
        ("https://sso.example.com/realms/main", "wb", "abc", "client_secret_basic")
    assert cfg.scopes == ("openid", "profile", "email") and cfg.claims == ("email",)
    assert "abc" not in repr(cfg)                                   # the secret is never printed
    t = tmp_path / "oidc.toml"
    t.write_text('issuer = "https://sso.example.com"\nclient_id = "wb"\ntoken_auth = "none"\n', encoding="utf-8")
    cfg = load_config(t, {})
    assert cfg.client_secret is None and cfg.token_auth == "none"
    assert cfg.claims == ("preferred_username", "email", "sub")
    # the environment alone, and over a file
    env = {"WORKBENCH_OIDC_ISSUER": "https://idp.example.org", "WORKBENCH_OIDC_CLIENT_ID": "x",
           "WORKBENCH_OIDC_CLIENT_SECRET": "from-env", "WORKBENCH_OIDC_SCOPES": "openid,email"}
    cfg = load_config(None, env)
    assert (cfg.issuer, cfg.client_secret, cfg.scopes) == ("https://idp.example.org", "from-env", ("openid", "email"))
    assert load_config(t, {"WORKBENCH_OIDC_CLIENT_ID": "other"}).client_id == "other"
    assert load_config(None, {}) is None                             # single sign-on off


@pytest.mark.parametrize(("text", "env", "match"), [
    ("issuer: https://a.example\nclient_id: wb\nclient_secret: plain\n", {}, "no client_secret in the file"),
    ("issuer: https://a.example\nclient_id: wb\nclient_secret_env: NOT_SET\n", {}, "NOT_SET .* is not set"),
    ("issuer: http://sso.example.com\nclient_id: wb\n", {}, "must be an https URL"),
    ("issuer: https://a.example\nclient_id: wb\ntoken_url: http://10.0.0.1/token\n", {}, "token_url"),
    ("issuer: https://a.example\n", {}, "client_id is required"),
    ("client_id: wb\n", {}, "issuer is required"),
    ("issuer: https://a.example\nclient_id: wb\nclientid: wb\n", {}, "unknown key"),
    ("issuer: https://a.example\nclient_id: wb\nalgorithms: [HS256]\n", {}, "HS256"),
    ("issuer: https://a.example\nclient_id: wb\ntoken_auth: client_secret_post\n", {}, "needs a client secret"),
    ("issuer: https://a.example\nclient_id: wb\ndiscovery: false\n", {}, "without discovery"),
])
def test_configurations_refused(tmp_path, text, env, match):
    p = tmp_path / "oidc.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(OIDCError, match=match):
        load_config(p, env)


# ---------------------------------------------------------------------------------------- the id_token
ISS = "https://sso.example.com"


def _claims(**over):
    now = time.time()
    return {"iss": ISS, "aud": CLIENT_ID, "sub": "u-1", "exp": now + 300, "iat": now, "nonce": "n-1",
            "preferred_username": "alice", **over}


def _verify(token, jwks, **kw):
    return verify_id_token(token, jwks, **{"issuer": ISS, "client_id": CLIENT_ID, "nonce": "n-1", **kw})


def test_an_id_token_is_accepted_only_when_proven(rsa_key):
    jwks = {"keys": [jwk(rsa_key)]}
    assert _verify(sign(rsa_key, _claims()), jwks)["preferred_username"] == "alice"
    eck = ec.generate_private_key(ec.SECP256R1())
    assert _verify(sign(eck, _claims(), kid="e1", alg="ES256"), {"keys": [jwk(eck, "e1")]})["sub"] == "u-1"
    good = sign(rsa_key, _claims())
    head, body, sig = good.split(".")
    forged_body = _b64(json.dumps(_claims(preferred_username="admin")).encode())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "signature does not verify": [f"{head}.{forged_body}.{sig}", sign(other, _claims())],
        "expired": [sign(rsa_key, _claims(exp=time.time() - 3600, iat=time.time() - 7200))],
        "issuer": [sign(rsa_key, _claims(iss="https://evil.example"))],
        "audience": [sign(rsa_key, _claims(aud="someone-else")), sign(rsa_key, _claims(aud=["a", "b"]))],
        "authorized party": [sign(rsa_key, _claims(aud=[CLIENT_ID, "b"]))],
        "nonce": [sign(rsa_key, _claims(nonce="n-2")), sign(rsa_key, {k: v for k, v in _claims().items()
                                                                        if k != "nonce"})],
        "issued in the future": [sign(rsa_key, _claims(iat=time.time() + 3600))],
        "no key": [sign(rsa_key, _claims(), kid="k2")],
        "not a signed JWT": ["abc", f"{head}.{body}"],
    }
    for reason, tokens in cases.items():
        for token in tokens:
            with pytest.raises(TokenRejected, match=reason):
                _verify(token, jwks)
    # alg none, and HS256 keyed with the public key (the classic confusion): never accepted
    for alg in ("none", "HS256"):
        h = _b64(json.dumps({"alg": alg, "kid": "k1"}).encode())
        with pytest.raises(TokenRejected, match="not accepted"):
            _verify(f"{h}.{body}.{sig if alg != 'none' else ''}", jwks)
    with pytest.raises(TokenRejected, match="not accepted"):
        _verify(good, jwks, algorithms=("ES256",))
    # a little clock skew is tolerated
    assert _verify(sign(rsa_key, _claims(exp=time.time() - 30)), jwks)["sub"] == "u-1"


def test_the_login_page_offers_single_sign_on(tmp_path):
    from workbench.apps.server import auth_provider

    store = UserStore(f"sqlite:///{tmp_path / 'u.db'}", scrypt_n=2**10)
    cfg = load_config(None, {"WORKBENCH_OIDC_ISSUER": ISS, "WORKBENCH_OIDC_CLIENT_ID": "wb",
                             "WORKBENCH_OIDC_LABEL": "Log in with <Example SSO>"})
    provider = with_oidc(auth_provider(store), store, cfg)
    paths = [p[0] for p in provider.endpoints]
    assert paths == ["/login", "/logout", "/oidc/login", "/oidc/callback"]
    page = provider.login_handler._login_template.render(login_endpoint="/login", errormessage="", PANEL_CDN="")
    assert 'id="password"' in page and 'id="oidc-login" href="./oidc/login"' in page
    assert "Log in with &lt;Example SSO&gt;" in page
    assert page.index('id="oidc-login"') < page.index("</form>")
    store.dispose()


# ---------------------------------------------------------------------------------------- a fake provider
class FakeProvider:
    """An OpenID provider on a free port: discovery, authorize (answers at once for ``identity``),
    token (checks the client's secret, the redirect URI and the PKCE verifier), JWKS, userinfo.
    ``mode``: ok · tampered (payload changed after signing) · expired · userinfo (the id_token names
    no user; userinfo does)."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.identity = {"sub": "u-alice", "preferred_username": "alice", "email": "alice@example.com",
                         "email_verified": True}
        self.mode = "ok"
        self.codes, self.access, self.log = {}, {}, []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status, data):
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
                provider.log.append(("GET", u.path, q))
                if u.path == "/.well-known/openid-configuration":
                    b = provider.base
                    return self._json(200, {
                        "issuer": b, "authorization_endpoint": f"{b}/authorize", "token_endpoint": f"{b}/token",
                        "userinfo_endpoint": f"{b}/userinfo", "jwks_uri": f"{b}/jwks",
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "code_challenge_methods_supported": ["S256"]})
                if u.path == "/jwks":
                    return self._json(200, {"keys": [jwk(provider.key)]})
                if u.path == "/authorize":
                    ok = (q.get("client_id") == CLIENT_ID and q.get("response_type") == "code"
                          and q.get("code_challenge_method") == "S256" and q.get("code_challenge")
                          and q.get("nonce") and "openid" in q.get("scope", "").split())
                    if not ok:
                        return self._json(400, {"error": "invalid_request"})
                    code = os.urandom(16).hex()
                    provider.codes[code] = {**q, "identity": dict(provider.identity), "mode": provider.mode}
                    target = q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": q["state"]})
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                    return None
                if u.path == "/userinfo":
                    who = provider.access.get(self.headers.get("Authorization", "").removeprefix("Bearer "))
                    return self._json(200, who) if who else self._json(401, {"error": "invalid_token"})
                return self._json(404, {"error": "not found"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(n).decode()).items()}
                provider.log.append(("POST", self.path, {k: v for k, v in form.items() if k != "code_verifier"}))
                basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
                if self.path != "/token" or self.headers.get("Authorization") != f"Basic {basic}":
                    return self._json(401, {"error": "invalid_client"})
                grant = provider.codes.pop(form.get("code", ""), None)     # a code is used once
                verifier = form.get("code_verifier", "").encode()
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
                if (grant is None or form.get("grant_type") != "authorization_code"
                        or form.get("redirect_uri") != grant["redirect_uri"] or challenge != grant["code_challenge"]):
                    return self._json(400, {"error": "invalid_grant"})
                ident, mode, now = grant["identity"], grant["mode"], time.time()
                claims = {"iss": provider.base, "aud": CLIENT_ID, "azp": CLIENT_ID, "exp": now + 300, "iat": now,
                          "nonce": grant["nonce"], **ident}
                if mode == "expired":
                    claims.update(exp=now - 3600, iat=now - 3900)
                if mode == "userinfo":
                    claims = {k: v for k, v in claims.items() if k not in ("preferred_username", "email")}
                token = sign(provider.key, claims)
                if mode == "tampered":
                    head, _, sig = token.split(".")
                    token = f"{head}.{_b64(json.dumps({**claims, 'preferred_username': 'alice'}).encode())}.{sig}"
                access = os.urandom(16).hex()
                provider.access[access] = ident
                return self._json(200, {"access_token": access, "token_type": "Bearer", "expires_in": 300,
                                        "id_token": token})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sso(tmp_path_factory):
    """``(base URL, lake, users, provider)``: `workbench apps serve --oidc` on a lake of ent-a and
    ent-b; alice (manager, ent-a) and dora (disabled) in the users database."""
    tmp = tmp_path_factory.mktemp("oidc")
    lake = build(tmp)
    users = UserStore(f"sqlite:///{tmp / 'users.db'}", scrypt_n=2**10)
    users.add("alice", "manager", "manager password 1")
    users.grant("alice", "ent-a")
    users.add("dora", "analyst", "analyst password 1")
    users.grant("dora", "ent-a")
    users.disable("dora")
    provider = FakeProvider()
    config = tmp / "oidc.yaml"
    config.write_text(f"issuer: {provider.base}\nclient_id: {CLIENT_ID}\nclient_secret_env: {SECRET_ENV}\n"
                      f"label: 示例单点登录 / Example SSO\n", encoding="utf-8")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKBENCH_COOKIE_SECRET": "test-secret-" + "x" * 32,
           SECRET_ENV: SECRET}
    out = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "apps", "serve", "--port", str(port),
                             "--lake", str(tmp / "lake"), "--db", str(tmp / "users.db"), "--oidc", str(config)],
                            stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/login", timeout=2)
            break
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError((tmp / "server.log").read_text()) from None
            time.sleep(0.3)
    yield base, lake, users, provider
    proc.terminate()
    proc.wait(timeout=20)
    out.close()
    provider.stop()
    users.dispose()


def _sso_login(page, base, path="/status"):
    """Open ``path`` (→ the login page) and take the single sign-on link; the page where it ends."""
    page.goto(f"{base}{path}")
    assert "/login" in page.url
    page.click("#oidc-login")
    page.wait_for_load_state("networkidle")
    return page


def _logins(users):
    return [(r["actor"], r["ok"], r["detail"]) for r in users.audit_log(action="login")]


def test_sso_login_reaches_only_the_granted_enterprise(sso, browser, ui):
    base, lake, users, provider = sso
    provider.identity, provider.mode = {"sub": "u-alice", "preferred_username": "alice"}, "ok"
    page, errors = ui.page(browser)
    page.goto(f"{base}/login")
    assert page.inner_text("#oidc-login") == "示例单点登录 / Example SSO"
    ui.shot(page, "login-with-sso")
    _sso_login(page, base)
    page.wait_for_selector("#quarantined", timeout=30_000)
    assert page.url == f"{base}/status"
    want = summary(data_status(lake.for_enterprise("ent-a")))
    assert page.inner_text("#quarantined") == str(want["quarantined"])
    assert page.inner_text("#completeness") == f"{want['completeness']:.2%}"
    options = page.locator("select option").all_inner_texts()
    assert "ent-a" in options and "ent-b" not in options
    ui.shot(page, "status-after-sso")
    page.goto(f"{base}/status?enterprise=ent-b")
    page.get_by_text("Not permitted").wait_for(timeout=30_000)
    assert page.locator("#quarantined").count() == 0
    page.goto(f"{base}/")
    page.get_by_text("alice (manager)").wait_for(timeout=30_000)
    assert errors == [], errors
    page.close()
    # the provider saw the code flow with PKCE and the client's secret (checked there), and the audit log the login
    token_calls = [e for e in provider.log if e[:2] == ("POST", "/token")]
    assert token_calls and token_calls[-1][2]["grant_type"] == "authorization_code"
    assert "client_secret" not in token_calls[-1][2]                 # client_secret_basic: in the header only
    actor, ok, detail = _logins(users)[0]
    assert (actor, ok) == ("alice", True) and detail == f"oidc {provider.base} sub=u-alice"
    assert ("alice", "denied:read", "ent-b") in [(r["actor"], r["action"], r["enterprise_id"])
                                                  for r in users.audit_log()]


def test_the_user_can_come_from_userinfo(sso, browser, ui):
    base, _, users, provider = sso
    provider.identity, provider.mode = {"sub": "u-alice-2", "preferred_username": "alice"}, "userinfo"
    page, errors = ui.page(browser)
    _sso_login(page, base, "/")
    page.get_by_text("alice (manager)").wait_for(timeout=30_000)
    assert any(e[:2] == ("GET", "/userinfo") for e in provider.log)
    assert _logins(users)[0] == ("alice", True, f"oidc {provider.base} sub=u-alice-2")
    assert errors == [], errors
    page.close()


@pytest.mark.parametrize(("identity", "mode", "actor", "reason"), [
    ({"sub": "u-m", "preferred_username": "mallory"}, "ok", "mallory", "no enabled user of this name"),
    ({"sub": "u-d", "preferred_username": "dora"}, "ok", "dora", "no enabled user of this name"),
    ({"sub": "u-x", "preferred_username": "admin"}, "tampered", "?", "the signature does not verify"),
    ({"sub": "u-alice", "preferred_username": "alice"}, "expired", "?", "id_token: expired"),
    ({"sub": "u-e", "email": "alice", "email_verified": False}, "ok", "?", "email address is not verified"),
])
def test_refused_identities_and_tokens(sso, browser, ui, identity, mode, actor, reason):
    base, _, users, provider = sso
    provider.identity, provider.mode = identity, mode
    page, errors = ui.page(browser)
    _sso_login(page, base)
    assert urllib.parse.urlsplit(page.url).path == "/login"
    assert "Single sign-on" in page.inner_text("#error-message")
    if actor != "?":
        assert "no workbench user" in page.inner_text("#error-message")
        ui.shot(page, f"sso-refused-{actor}")
    page.goto(f"{base}/status")
    assert "/login" in page.url                                      # no session
    got_actor, ok, detail = _logins(users)[0]
    assert (got_actor, ok) == (actor, False) and detail.startswith("oidc: ") and reason in detail, detail
    assert errors == [], errors
    page.close()


def test_a_callback_without_this_browsers_state_is_refused(sso):
    base, _, users, _ = sso
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as exc:
        opener.open(f"{base}/oidc/callback?code=stolen&state=forged", timeout=10)
    assert exc.value.code == 302 and exc.value.headers["Location"].startswith("/login?error=")
    assert "user=" not in (exc.value.headers.get("Set-Cookie") or "")
    assert _logins(users)[0] == ("?", False, "oidc: state does not match this browser's login")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
