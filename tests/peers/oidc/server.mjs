// Loopback OpenID Provider for doorward's end-to-end tests.
//
// A thin wrapper around the `oidc-provider` npm package (exact version pinned
// in package.json). All configuration comes from environment variables; see
// README.md next to this file. Test-only, never expose it beyond 127.0.0.1.
//
// stdout carries exactly one line, `{"issuer":"http://127.0.0.1:PORT"}`,
// printed once the server is listening. Everything else goes to stderr.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

// oidc-provider prints its "you SHOULD change this default" notices with
// console.info, i.e. to stdout. The test harness reads stdout for the issuer
// line only, so route every console method to stderr before anything else
// can print.
for (const method of ['log', 'info', 'debug']) {
  // eslint-disable-next-line no-console
  console[method] = (...args) => console.error(...args);
}

const { default: Provider, interactionPolicy } = await import('oidc-provider');

function fail(message) {
  process.stderr.write(`oidc-peer: ${message}\n`);
  process.exit(2);
}

function envJson(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  try {
    return JSON.parse(raw);
  } catch (err) {
    return fail(`${name} is not valid JSON: ${err.message}`);
  }
}

function envInt(name, fallback, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    return fail(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  }
  return value;
}

const PORT = envInt('OIDC_PORT', 0, { max: 65535 });
const ACCESS_TOKEN_TTL = envInt('OIDC_ACCESS_TOKEN_TTL', 60, { min: 1 });
const ID_TOKEN_TTL = envInt('OIDC_ID_TOKEN_TTL', 60, { min: 1 });
const REFRESH_TOKEN_TTL = 24 * 60 * 60;
const ROTATION = (process.env.OIDC_REFRESH_TOKEN_ROTATION || 'always').toLowerCase();
if (!['always', 'never'].includes(ROTATION)) {
  fail(`OIDC_REFRESH_TOKEN_ROTATION must be "always" or "never", got ${JSON.stringify(ROTATION)}`);
}

// An API resource (RFC 8707) for which JWT access tokens (RFC 9068,
// `typ: at+jwt`) are issued, only to clients whose id starts with `api-`:
// doorward's own login client keeps opaque tokens that userinfo accepts.
const API_RESOURCE = process.env.OIDC_API_RESOURCE || '';

// Pushed authorization requests (RFC 9126): `off` (the default: discovery
// advertises no PAR endpoint, so clients that use PAR when advertised
// behave as before), `on` (advertised, optional) or `required`
// (require_pushed_authorization_requests: a plain authorization request is
// refused).
const PAR = (process.env.OIDC_PAR || 'off').toLowerCase();
if (!['off', 'on', 'required'].includes(PAR)) {
  fail(`OIDC_PAR must be "off", "on" or "required", got ${JSON.stringify(PAR)}`);
}

// Authentication context classes (OIDC Core 2, `acr`), weakest first, e.g.
// ["urn:doorward:pwd","urn:doorward:mfa"]. Set: discovery advertises them
// (acr_values_supported), every login answers one of them with `amr` and
// `auth_time` in the ID token (and in JWT access tokens, RFC 9068 2.2.1),
// and the per-account test controls below apply. Unset: none of that.
const ACR_VALUES = envJson('OIDC_ACR_VALUES', []);
if (!Array.isArray(ACR_VALUES) || !ACR_VALUES.every((v) => typeof v === 'string' && v !== '')) {
  fail('OIDC_ACR_VALUES must be a JSON array of non-empty strings');
}
const ASSURANCE = ACR_VALUES.length > 0;

const clients = envJson('OIDC_CLIENTS', []);
if (!Array.isArray(clients)) fail('OIDC_CLIENTS must be a JSON array of client metadata objects');

const initialAccounts = envJson('OIDC_ACCOUNTS', {});
if (initialAccounts === null || typeof initialAccounts !== 'object' || Array.isArray(initialAccounts)) {
  fail('OIDC_ACCOUNTS must be a JSON object mapping account id to a claims object');
}

// account id (= login name typed in the dev login form = `sub`) -> claims.
// Mutable at run time through POST /__test/accounts/<id>.
const accounts = new Map();
for (const [id, claims] of Object.entries(initialAccounts)) {
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    fail(`OIDC_ACCOUNTS["${id}"] must be a JSON object of claims`);
  }
  accounts.set(id, claims);
}

// Fresh signing keys on every start: RS256 (first, the default for clients)
// and ES256.
function signingJwk(type, options, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}`,
  };
}
function freshJwks() {
  return {
    keys: [
      signingJwk('rsa', { modulusLength: 2048 }, 'RS256'),
      signingJwk('ec', { namedCurve: 'P-256' }, 'ES256'),
    ],
  };
}

// Claims released per scope. Scopes are derived from these keys.
// With OIDC_ACR_VALUES, `openid` also releases acr, amr and auth_time, so
// every ID token says how its login was made, not only those whose request
// asked (oidc-provider's default releases auth_time only for max_age and
// acr only for acr_values): a later step-up then starts from a known acr.
const claims = {
  openid: ASSURANCE ? ['sub', 'acr', 'amr', 'auth_time'] : ['sub'],
  email: ['email', 'email_verified'],
  profile: [
    'name', 'preferred_username', 'given_name', 'family_name', 'middle_name', 'nickname',
    'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
  ],
  groups: ['groups'],
};

async function findAccount(_ctx, id) {
  // Unknown (or deleted) ids yield undefined. Unknown login names are
  // refused before they reach a session, see handleInteractionSubmit.
  if (!accounts.has(id)) return undefined;
  return {
    accountId: id,
    // Looked up on every call so /__test/accounts changes show up in the
    // next ID token / userinfo response (including after a refresh).
    // Keys starting with `_` are test controls (see authenticationOf),
    // never claims.
    async claims() {
      const current = accounts.get(id) || {};
      const released = Object.fromEntries(Object.entries(current).filter(([key]) => !key.startsWith('_')));
      return { ...released, sub: id };
    },
  };
}

function listenOnce(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

// The provider is constructed after the socket is bound (the issuer must
// contain the real port); until then the handler answers 503. Rotating the
// signing keys (POST /__test/rotate-keys) replaces both.
let provider;
let oidcCallback;
let rotateKeys;

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// The `traceparent` of the last calls that carried one (path and value),
// for GET /__test/traceparents: whether a client propagates its trace.
const traceparents = [];
function noteTraceparent(req, pathname) {
  const value = req.headers.traceparent;
  if (!value) return;
  traceparents.push({ path: pathname, traceparent: String(value) });
  if (traceparents.length > 200) traceparents.shift();
}

// Test-only admin endpoints, handled before oidc-provider sees the request.
async function handleTestEndpoint(req, res, pathname) {
  if (pathname === '/__test/traceparents') {
    if (req.method !== 'GET') return sendJson(res, 405, { error: 'method not allowed' });
    return sendJson(res, 200, traceparents);
  }
  if (pathname === '/__test/health') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' });
    return sendJson(res, 200, { status: 'ok' });
  }

  const match = /^\/__test\/accounts\/([^/]+)$/.exec(pathname);
  if (match) {
    let id;
    try {
      id = decodeURIComponent(match[1]);
    } catch {
      return sendJson(res, 400, { error: 'bad account id encoding' });
    }
    if (req.method === 'GET') {
      if (!accounts.has(id)) return sendJson(res, 404, { error: 'unknown account' });
      return sendJson(res, 200, { ...accounts.get(id), sub: id });
    }
    if (req.method === 'POST' || req.method === 'PUT') {
      let body;
      try {
        body = JSON.parse(await readBody(req));
      } catch (err) {
        return sendJson(res, 400, { error: `invalid JSON body: ${err.message}` });
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        return sendJson(res, 400, { error: 'body must be a JSON object of claims' });
      }
      const created = !accounts.has(id);
      accounts.set(id, body);
      process.stderr.write(`oidc-peer: account ${JSON.stringify(id)} ${created ? 'created' : 'replaced'}\n`);
      return sendJson(res, 200, { ...body, sub: id });
    }
    if (req.method === 'DELETE') {
      const existed = accounts.delete(id);
      return sendJson(res, existed ? 200 : 404, existed ? { deleted: id } : { error: 'unknown account' });
    }
    return sendJson(res, 405, { error: 'method not allowed' });
  }

  if (pathname === '/__test/rotate-keys') {
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' });
    if (!rotateKeys) return sendJson(res, 503, { error: 'starting' });
    return sendJson(res, 200, await rotateKeys());
  }

  return sendJson(res, 404, { error: 'unknown test endpoint' });
}

// The acr values an authorization request asks for, in its order:
// `acr_values`, then an `acr` claim requested for the ID token through the
// claims parameter (`value` or `values`).
function askedAcrValues(params) {
  const asked = (params.acr_values || '').split(' ').filter(Boolean);
  if (params.claims) {
    try {
      const acr = JSON.parse(params.claims)?.id_token?.acr;
      if (typeof acr?.value === 'string') asked.push(acr.value);
      if (Array.isArray(acr?.values)) asked.push(...acr.values.filter((v) => typeof v === 'string'));
    } catch {
      // oidc-provider has already refused a claims parameter that is not JSON.
    }
  }
  return asked;
}

// How the login of `accountId` for an authorization request with `params`
// was made, as the login interaction's result (`acr`, `amr`, `ts`).
// Default: the first asked acr that is supported, else the first (weakest)
// configured one; `amr` is ["pwd","otp"] for the last (strongest) one, else
// ["pwd"]. Test controls in the account (never released as claims): `_acr`
// answers that acr whatever was asked (an OP that ignores the ask), `_amr`
// those methods, `_auth_age` backdates the login (and so auth_time) by that
// many seconds. (`_no_auth_time` is applied when the ID token is made, see
// makeProvider.) Without OIDC_ACR_VALUES: no acr or amr, the login is now.
function authenticationOf(accountId, params) {
  const account = accounts.get(accountId) || {};
  const now = Math.floor(Date.now() / 1000);
  const ts = now - (Number.isInteger(account._auth_age) ? account._auth_age : 0);
  if (!ASSURANCE) return { ts };
  const acr = typeof account._acr === 'string'
    ? account._acr
    : (askedAcrValues(params).find((v) => ACR_VALUES.includes(v)) || ACR_VALUES[0]);
  const amr = Array.isArray(account._amr)
    ? account._amr
    : (acr === ACR_VALUES[ACR_VALUES.length - 1] ? ['pwd', 'otp'] : ['pwd']);
  return { acr, amr, ts };
}

function sendText(res, status, text) {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

// Replaces the dev interactions' form submit route (POST /interaction/<uid>);
// their GET pages (login and consent forms) are still oidc-provider's.
// Same behaviour as the stock handler, except that a login name that is not
// a known account finishes the interaction with access_denied, so the client
// gets `redirect_uri?error=access_denied&error_description=...&state=...`.
// (Stock behaviour: any name is accepted and, with findAccount returning
// undefined for it, oidc-provider 8.8.1 then fails the resumed authorization
// with a 500 server_error page.) Passwords are not checked.
async function handleInteractionSubmit(req, res) {
  let body;
  try {
    const type = (req.headers['content-type'] || '').split(';', 1)[0].trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      return sendText(res, 400, 'expected an application/x-www-form-urlencoded form submission\n');
    }
    body = new URLSearchParams(await readBody(req));
  } catch (err) {
    return sendText(res, 400, `cannot read form: ${err.message}\n`);
  }

  let interaction;
  try {
    interaction = await provider.interactionDetails(req, res);
  } catch (err) {
    // SessionNotFound: missing/expired `_interaction` cookie or interaction.
    return sendText(res, 400, `${err.error || 'invalid_request'}: ${err.error_description || err.message}\n`);
  }
  const {
    prompt: { name, details }, grantId, session, params,
  } = interaction;
  const submitted = body.get('prompt');
  if (submitted !== name) {
    return sendText(res, 400, `form is for prompt ${JSON.stringify(submitted)} but the interaction wants ${JSON.stringify(name)}\n`);
  }

  if (name === 'login') {
    const login = body.get('login') || '';
    if (!accounts.has(login)) {
      process.stderr.write(`oidc-peer: login refused for unknown account ${JSON.stringify(login)}\n`);
      return provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: `unknown account ${JSON.stringify(login)}`,
      }, { mergeWithLastSubmission: false });
    }
    const { acr, amr, ts } = authenticationOf(login, params);
    process.stderr.write(`oidc-peer: ${JSON.stringify(login)} logged in (acr ${acr}, amr ${JSON.stringify(amr)}, ts ${ts})\n`);
    return provider.interactionFinished(req, res, {
      login: {
        accountId: login, acr, amr, ts,
      },
    }, { mergeWithLastSubmission: false });
  }

  if (name === 'consent') {
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    if (details.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(details.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    return provider.interactionFinished(req, res, {
      consent: { grantId: await grant.save() },
    }, { mergeWithLastSubmission: true });
  }

  return sendText(res, 501, `prompt ${JSON.stringify(name)} not implemented\n`);
}

const server = http.createServer((req, res) => {
  const pathname = (req.url || '/').split('?', 1)[0];
  noteTraceparent(req, pathname);
  if (oidcCallback && req.method === 'POST' && /^\/interaction\/[^/]+$/.test(pathname)) {
    handleInteractionSubmit(req, res).catch((err) => {
      process.stderr.write(`oidc-peer: interaction submit error: ${err.stack || err}\n`);
      if (!res.headersSent) sendText(res, 500, 'internal error\n');
      else res.destroy();
    });
    return;
  }
  if (pathname.startsWith('/__test/')) {
    handleTestEndpoint(req, res, pathname).catch((err) => {
      process.stderr.write(`oidc-peer: test endpoint error: ${err.stack || err}\n`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
    return;
  }
  if (!oidcCallback) {
    sendJson(res, 503, { error: 'starting' });
    return;
  }
  oidcCallback(req, res);
});
// No lingering keep-alive sockets holding the process open on shutdown.
server.keepAliveTimeout = 1000;

let port;
try {
  port = await listenOnce(server, PORT);
} catch (err) {
  fail(`cannot listen on 127.0.0.1:${PORT}: ${err.message}`);
}
const listen = `http://127.0.0.1:${port}`;
// OIDC_ISSUER names the provider by another address (a relay in front of
// it, such as a test's fault injector); it still listens on its own port.
const issuer = process.env.OIDC_ISSUER || listen;

// Cookie signing keys outlive key rotations, so the provider's own sessions do.
const COOKIE_KEYS = [crypto.randomBytes(32).toString('base64url')];

// The interaction policy. With OIDC_ACR_VALUES, the login prompt's
// essential-acr checks (a claims-parameter request for an essential acr the
// session lacks prompts a login: how a step-up gets its fresh login) accept
// what a login just made at this interaction, as the stock max_age check
// does. Otherwise a login answering another acr (`_acr`) would be prompted
// again and again, and the client could never be shown that answer.
function assurancePolicy() {
  const policy = interactionPolicy.base();
  if (!ASSURANCE) return policy;
  for (const reason of ['essential_acrs', 'essential_acr']) {
    const check = policy.get('login').checks.get(reason);
    const stock = check.check;
    check.check = (ctx) => (ctx.oidc.result?.login ? interactionPolicy.Check.NO_NEED_TO_PROMPT : stock(ctx));
  }
  return policy;
}

// The account behind a token being issued has `_no_auth_time` set.
function withoutAuthTime(accountId) {
  return Boolean(accountId && accounts.get(accountId)?._no_auth_time);
}

// One provider instance with these signing keys. Grants, sessions and tokens
// live in oidc-provider's in-memory adapter, which is shared by every
// instance in this process, so a later instance with other keys still knows
// them.
function makeProvider(jwks) {
  const instance = new Provider(issuer, {
    clients,
    ...(ASSURANCE ? { acrValues: ACR_VALUES } : {}),
    interactions: { policy: assurancePolicy() },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    responseTypes: ['code'],
    findAccount,
    claims,
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    // Release scope-requested claims (email, groups, ...) in the ID token too,
    // not only from userinfo.
    conformIdTokenClaims: false,
    jwks,
    pkce: {
      // Every authorization request must carry an S256 code_challenge.
      methods: ['S256'],
      required: () => true,
    },
    // Issue a refresh token from every authorization_code exchange for a
    // client that has the refresh_token grant, whether or not offline_access
    // was requested/granted. (Default: only when offline_access is granted.)
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: ROTATION === 'always',
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL,
      IdToken: ID_TOKEN_TTL,
      RefreshToken: REFRESH_TOKEN_TTL,
      AuthorizationCode: 60,
      Interaction: 60 * 60,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
    },
    cookies: {
      // The issuer is plain http on loopback: no cookie may be `Secure` (the
      // defaults do not set it; koa would refuse to send a Secure cookie over
      // http anyway). Fixed names.
      names: { session: '_session', interaction: '_interaction', resume: '_interaction_resume' },
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
      // Signed cookies (adds a `<name>.sig` companion cookie to each).
      keys: COOKIE_KEYS,
    },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      claimsParameter: { enabled: true },
      pushedAuthorizationRequests: {
        enabled: PAR !== 'off',
        requirePushedAuthorizationRequests: PAR === 'required',
      },
      resourceIndicators: {
        enabled: API_RESOURCE !== '',
        defaultResource: (_ctx, client) => (client.clientId.startsWith('api-') ? API_RESOURCE : undefined),
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== API_RESOURCE) throw new Error(`unknown resource ${resource}`);
          return { scope: 'api:read', audience: API_RESOURCE, accessTokenFormat: 'jwt', accessTokenTTL: ACCESS_TOKEN_TTL };
        },
      },
    },
    // JWT access tokens carry who the user is, as API gateways expect, and
    // with OIDC_ACR_VALUES how the login was made (RFC 9068 2.2.1: acr, amr,
    // auth_time), read from the code or refresh token being exchanged (an
    // AccessToken does not store them itself in this version).
    extraTokenClaims: async (ctx, token) => {
      if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
      const account = accounts.get(token.accountId) || {};
      const { email, email_verified, preferred_username, groups } = account;
      const extra = { email, email_verified, preferred_username, groups };
      const login = ctx?.oidc?.entities?.AuthorizationCode || ctx?.oidc?.entities?.RefreshToken;
      if (ASSURANCE && login) {
        extra.acr = login.acr;
        extra.amr = login.amr;
        if (!withoutAuthTime(token.accountId)) extra.auth_time = login.authTime;
      }
      return extra;
    },
    // Ignored by oidc-provider 8 (whose back-channel requests use `got` and
    // reach loopback as is). oidc-provider >= 9 sends them through fetch with
    // an SSRF-protecting dispatcher that refuses 127.0.0.0/8; every
    // back-channel receiver in the tests is on loopback, so this drops that
    // dispatcher. Kept so a future upgrade does not silently break logout.
    fetch: (url, options) => {
      const { dispatcher, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    // Plain-text error pages: easier to read in test logs.
    async renderError(ctx, out) {
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = Object.entries(out).map(([k, v]) => `${k}: ${v}`).join('\n');
    },
  });
  // The peer is reached directly, never through a TLS-terminating proxy.
  instance.proxy = false;

  // `_no_auth_time`: ID tokens for that account carry no auth_time. In
  // oidc-provider 8.8.1 every grant builds its ID token with the account's
  // claims plus `auth_time` (from the code or refresh token) and masks them
  // in IdToken#payload; this provider's IdToken class is its own (one per
  // instance, `provider.IdToken`), so wrapping that method here deletes the
  // claim after masking, for every grant, without touching other instances.
  const stockPayload = instance.IdToken.prototype.payload;
  instance.IdToken.prototype.payload = async function payload() {
    const claims = await stockPayload.call(this);
    if (withoutAuthTime(claims.sub)) delete claims.auth_time;
    return claims;
  };

  // Log the provider's errors to stderr: a full stack for server errors, one
  // line (with oidc-provider's otherwise hidden error_detail) for the
  // expected protocol errors.
  for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error',
    'userinfo.error', 'introspection.error', 'revocation.error', 'backchannel.error',
    'jwks.error', 'discovery.error', 'registration_create.error', 'pushed_authorization_request.error']) {
    instance.on(event, (...args) => {
      const err = args.find((a) => a instanceof Error);
      let text;
      if (!err) text = '(no error object)';
      else if (event === 'server_error' || !err.error) text = err.stack || String(err);
      else {
        text = `${err.error}: ${err.error_description || err.message}`
          + `${err.error_detail ? ` [${err.error_detail}]` : ''}${err.cause ? ` (cause: ${err.cause.message || err.cause})` : ''}`;
      }
      if (event === 'backchannel.error') {
        const client = args.find((a) => a && a.clientId);
        text = `to ${client?.clientId} ${client?.backchannelLogoutUri}: ${err?.message}`;
      }
      process.stderr.write(`oidc-peer: ${event}: ${text}\n`);
    });
  }
  // Which requests were pushed, for tests to assert PAR was used.
  instance.on('pushed_authorization_request.success', (ctx, client) => {
    process.stderr.write(`oidc-peer: pushed authorization request from ${client.clientId}\n`);
  });
  instance.on('backchannel.success', (_ctx, client, accountId, sid) => {
    process.stderr.write(`oidc-peer: backchannel logout delivered to ${client.clientId} (sub=${accountId} sid=${sid})\n`);
  });
  return instance;
}

provider = makeProvider(freshJwks());

// Validate every static client now so a bad OIDC_CLIENTS fails at start,
// not at the first authorization request.
for (const meta of clients) {
  try {
    const client = await provider.Client.find(String(meta?.client_id));
    if (!client) throw new Error('not found after registration');
  } catch (err) {
    fail(`invalid client in OIDC_CLIENTS (${meta?.client_id}): ${err.error_description || err.message}`);
  }
}

oidcCallback = provider.callback();

// Key rotation as an IdP does it after a compromise: new signing keys sign
// everything from now on, and the old ones are no longer published at /jwks,
// so tokens they signed stop verifying anywhere that refreshes its key set.
rotateKeys = async () => {
  const jwks = freshJwks();
  provider = makeProvider(jwks);
  oidcCallback = provider.callback();
  const kids = jwks.keys.map((k) => k.kid);
  process.stderr.write(`oidc-peer: signing keys rotated, now publishing ${kids.join(', ')}\n`);
  return { kids };
};

process.stdout.write(`${JSON.stringify({ issuer, listen })}\n`);
process.stderr.write(`oidc-peer: listening, ${clients.length} client(s), ${accounts.size} account(s), `
  + `access_token ttl ${ACCESS_TOKEN_TTL}s, id_token ttl ${ID_TOKEN_TTL}s, refresh rotation ${ROTATION}\n`);

function shutdown(signal) {
  process.stderr.write(`oidc-peer: ${signal}, exiting\n`);
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
