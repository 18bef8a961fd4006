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
  const server = http.createServer((req, res) => handler(req, res));
  const port = await listen(server, wanted);
  const issuer = `http://127.0.0.1:${port}`;

  const keys = [await signingJwk('RS256', 'rsa-1'), await signingJwk('ES256', 'ec-1')];
  const provider = buildProvider(issuer, keys, ttl);
  provider.on('server_error', (_ctx, err) => console.error('idp: server_error', err));
  provider.on('grant.error', (_ctx, err) => console.error('idp: grant.error', err.message, err.error_description ?? ''));
  handler = provider.callback();

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
