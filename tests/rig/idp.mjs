// Test OpenID provider for the cosmogate end-to-end rig.
//
// A real oidc-provider 9 OP serving the client_credentials grant with resource indicators, so
// every token is an RFC 9068 JWT access token (typ at+jwt) whose aud is the requested resource
// (default api://cosmogate). Signing keys (RS256 and ES256) are generated fresh on every start.
//
// Usage: node idp.mjs [--ttl SECONDS] [--port PORT]
//   --ttl   access token lifetime in seconds (default 300)
//   --port  port to bind on 127.0.0.1 (default 0 = any free port)
//
// Prints one line to stdout when ready: {"ready":true,"issuer":"http://127.0.0.1:PORT","port":PORT}
// Everything else goes to stderr. Exits on SIGTERM / SIGINT.
//
// Control routes on the same port (never part of the OP):
//   POST /_rig/rotate?phase=publish|switch|retire
//     rotates the signing keys the way oidc-provider's documentation orders it, without a
//     restart: publish appends a new RS256 + ES256 pair to the JWKS (the old pair still signs),
//     switch moves the new pair to the front (it signs from now on, the old pair stays
//     published), retire drops the old pair. Phases must come in that order; another answers
//     409. Answers {"phase":P,"jwks":[kid...],"signing":[kid...]} in JWKS order.
//   GET /_rig/stats
//     request counts since start: {"jwks":N,"discovery":N,"token":N}.
import http from 'node:http';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const DEFAULT_RESOURCE = 'api://cosmogate';
const SCOPE = 'cosmos';

const CLIENTS = [
  { id: 'app-reader', secret: 'reader-secret', alg: 'RS256', roles: ['cosmos.reader'] },
  { id: 'app-writer', secret: 'writer-secret', alg: 'RS256', roles: ['cosmos.reader', 'cosmos.writer'] },
  { id: 'app-es256', secret: 'es256-secret', alg: 'ES256', roles: ['cosmos.reader', 'cosmos.writer'] },
  { id: 'app-nobody', secret: 'nobody-secret', alg: 'RS256', roles: [] },
];
const TENANT = 't1';

function parseCli() {
  const { values } = parseArgs({
    options: {
      ttl: { type: 'string', default: '300' },
      port: { type: 'string', default: '0' },
    },
  });
  const ttl = Number(values.ttl);
  const port = Number(values.port);
  if (!Number.isInteger(ttl) || ttl < 1) throw new Error(`--ttl must be a positive integer, got ${values.ttl}`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port is not a port: ${values.port}`);
  return { ttl, port };
}

const PHASES = ['publish', 'switch', 'retire'];

async function signingJwk(alg, kid) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid, alg, use: 'sig' };
}

function clientMetadata(c) {
  return {
    client_id: c.id,
    client_secret: c.secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: SCOPE,
    x_at_alg: c.alg,
    x_roles: c.roles,
    x_tenant: TENANT,
  };
}

function resourceServerInfo(ttl) {
  return (_ctx, indicator, client) => {
    if (typeof indicator !== 'string') throw new errors.InvalidTarget();
    return {
      scope: SCOPE,
      audience: indicator,
      accessTokenTTL: ttl,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: client.x_at_alg } },
    };
  };
}

function buildProvider(issuer, keys, ttl) {
  return new Provider(issuer, {
    jwks: { keys },
    clients: CLIENTS.map(clientMetadata),
    extraClientMetadata: { properties: ['x_at_alg', 'x_roles', 'x_tenant'] },
    scopes: ['openid', SCOPE],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? DEFAULT_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: resourceServerInfo(ttl),
      },
    },
    extraTokenClaims: (_ctx, token) => ({
      roles: token.client?.x_roles ?? [],
      tenant: token.client?.x_tenant,
    }),
    formats: {
      customizers: {
        jwt: (_ctx, _token, jwt) => {
          jwt.payload.nbf = jwt.payload.iat;
        },
      },
    },
    ttl: { ClientCredentials: ttl },
  });
}

// The key ring: `current` signs, `next` is published but not yet signing (after publish) or
// signs while `current` is still published (after switch). oidc-provider signs with the first
// key of the wanted type, so order is what decides.
class KeyRing {
  constructor(current) {
    this.generation = 1;
    this.current = current;
    this.next = null;
    this.phase = 'retire';
  }

  static async create() {
    return new KeyRing(await KeyRing.pair(1));
  }

  static async pair(n) {
    return [await signingJwk('RS256', `rsa-${n}`), await signingJwk('ES256', `ec-${n}`)];
  }

  // The keys to publish, signing keys first.
  keys() {
    switch (this.phase) {
      case 'publish':
        return [...this.current, ...this.next];
      case 'switch':
        return [...this.next, ...this.current];
      default:
        return [...this.current];
    }
  }

  // Moves to `phase`; returns an error message when the phase is out of order.
  async advance(phase) {
    const expected = PHASES[(PHASES.indexOf(this.phase) + 1) % PHASES.length];
    if (phase !== expected) return `phase ${phase} must follow ${this.phase}, expected ${expected}`;
    if (phase === 'publish') {
      this.generation += 1;
      this.next = await KeyRing.pair(this.generation);
    }
    if (phase === 'retire') {
      this.current = this.next;
      this.next = null;
    }
    this.phase = phase;
    return null;
  }

  describe() {
    const keys = this.keys();
    const signing = ['RSA', 'EC'].map((kty) => keys.find((k) => k.kty === kty).kid);
    return { phase: this.phase, jwks: keys.map((k) => k.kid), signing };
  }
}

function sendJson(res, status, body) {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

// The /_rig routes; returns false for any other request.
function control(req, res, state) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (!url.pathname.startsWith('/_rig/')) return false;
  if (req.method === 'GET' && url.pathname === '/_rig/stats') {
    sendJson(res, 200, state.stats);
    return true;
  }
  if (req.method === 'POST' && url.pathname === '/_rig/rotate') {
    const phase = url.searchParams.get('phase') ?? '';
    state.rotate(phase).then(
      (error) => (error ? sendJson(res, 409, { error }) : sendJson(res, 200, state.ring.describe())),
      (err) => sendJson(res, 500, { error: String(err) }),
    );
    return true;
  }
  sendJson(res, 404, { error: 'no such control route' });
  return true;
}

function count(stats, req) {
  const path = req.url.split('?')[0];
  if (path === '/jwks') stats.jwks += 1;
  else if (path === '/.well-known/openid-configuration') stats.discovery += 1;
  else if (path === '/token') stats.token += 1;
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server.address().port));
  });
}

async function main() {
  const { ttl, port: wanted } = parseCli();
  // The issuer must carry the real port, so bind first and build the provider afterwards.
  let handler = (_req, res) => {
    res.statusCode = 503;
    res.end('starting');
  };
  const state = { stats: { jwks: 0, discovery: 0, token: 0 }, ring: null, rotate: null };
  const server = http.createServer((req, res) => {
    if (control(req, res, state)) return;
    count(state.stats, req);
    handler(req, res);
  });
  const port = await listen(server, wanted);
  const issuer = `http://127.0.0.1:${port}`;

  const start = () => {
    const provider = buildProvider(issuer, state.ring.keys(), ttl);
    provider.on('server_error', (_ctx, err) => console.error('idp: server_error', err));
    provider.on('grant.error', (_ctx, err) => console.error('idp: grant.error', err.message, err.error_description ?? ''));
    // Requests already inside the old provider finish there; new ones see the new keys.
    handler = provider.callback();
  };
  state.ring = await KeyRing.create();
  state.rotate = async (phase) => {
    const error = await state.ring.advance(phase);
    if (error) return error;
    start();
    console.error(`idp: rotation ${phase}: jwks ${state.ring.describe().jwks.join(',')}`);
    return null;
  };
  start();

  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.error(`idp: issuer ${issuer}, token ttl ${ttl}s`);
  process.stdout.write(`${JSON.stringify({ ready: true, issuer, port })}\n`);
}

main().catch((err) => {
  console.error('idp: failed to start:', err);
  process.exit(1);
});
