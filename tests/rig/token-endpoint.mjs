// Loopback stand-in for Azure's managed-identity token endpoints, for the cosmogate rig.
//
// Speaks two protocols on one 127.0.0.1 port (never the link-local IMDS address):
//   IMDS         GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R
//                    [&client_id=|&object_id=|&msi_res_id=]   header "Metadata: true" required
//   App Service  GET /msi/token?api-version=2019-08-01&resource=R
//                    [&client_id=|&principal_id=|&object_id=|&mi_res_id=]
//                    header "X-IDENTITY-HEADER: <--identity-header>" required
// Numbers in token responses are JSON strings, as the real endpoints send them. The token is
// JWT-shaped (base64url header.payload.signature) with aud = resource and a unique jti; its
// signature is random bytes, since the rig's Cosmos server checks no credentials.
//
// Usage: node token-endpoint.mjs [--port PORT] [--identity-header VALUE] [--lifetime SECONDS]
//                                [--log FILE]
//   --identity-header  the App Service secret header value (default "rig-identity-header")
//   --lifetime         token lifetime in seconds (default 3600)
//   --log              JSONL, one record per request: protocol, query, headers, status, token
//
// Test control: POST /_rig/fail?count=N&status=S makes the next N token requests answer status S
// (default 500) with an error body; the records of those requests are logged as usual.
//
// Prints one line to stdout when ready: {"ready":true,"port":PORT}.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

const SYSTEM_CLIENT_ID = '11111111-2222-4333-8444-555555555555';
const TENANT_ID = '72f988bf-0000-4000-8000-00000000c0de';
const IMDS_PATH = '/metadata/identity/oauth2/token';
const APPSERVICE_PATH = '/msi/token';

function parseCli() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      'identity-header': { type: 'string', default: 'rig-identity-header' },
      lifetime: { type: 'string', default: '3600' },
      log: { type: 'string' },
    },
  });
  const port = Number(values.port);
  const lifetime = Number(values.lifetime);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port is not a port: ${values.port}`);
  if (!Number.isInteger(lifetime) || lifetime < 1) throw new Error(`--lifetime must be a positive integer, got ${values.lifetime}`);
  return { port, identityHeader: values['identity-header'], lifetime, log: values.log };
}

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function mintToken(resource, clientId, lifetime) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', typ: 'JWT', kid: 'rig-mi-1' };
  const payload = {
    aud: resource,
    iss: `https://sts.windows.net/${TENANT_ID}/`,
    iat: now,
    nbf: now,
    exp: now + lifetime,
    jti: crypto.randomUUID(),
    appid: clientId,
    oid: clientId,
    sub: clientId,
    tid: TENANT_ID,
    idtyp: 'app',
  };
  const value = `${b64url(header)}.${b64url(payload)}.${crypto.randomBytes(32).toString('base64url')}`;
  return { value, now, exp: payload.exp };
}

function oauthError(status, error, description) {
  return { status, body: { error, error_description: description } };
}

// At most one of the named identity selectors may be present; returns the chosen client id.
function pickIdentity(query, names) {
  const given = names.filter((n) => query.has(n));
  if (given.length > 1) return { error: `only one of ${names.join(', ')} may be given` };
  if (given.length === 0) return { clientId: SYSTEM_CLIENT_ID };
  const value = query.get(given[0]);
  // A client_id is the identity's id; other selectors map to a stable derived id.
  if (given[0] === 'client_id') return { clientId: value };
  const digest = crypto.createHash('sha256').update(value).digest('hex');
  return { clientId: `${digest.slice(0, 8)}-${digest.slice(8, 12)}-4${digest.slice(13, 16)}-8${digest.slice(17, 20)}-${digest.slice(20, 32)}` };
}

function checkCommon(query, minVersion) {
  const version = query.get('api-version');
  if (!version) return oauthError(400, 'invalid_request', 'Required query parameter api-version not specified');
  if (!/^\d{4}-\d{2}-\d{2}$/.test(version) || version < minVersion) {
    return oauthError(400, 'invalid_request', `Invalid api-version ${version}`);
  }
  if (!query.get('resource')) return oauthError(400, 'invalid_request', 'Required audience parameter not specified');
  return null;
}

function imds(req, query, opts) {
  if (req.headers.metadata !== 'true') {
    return oauthError(400, 'invalid_request', 'Required metadata header not specified');
  }
  const bad = checkCommon(query, '2018-02-01');
  if (bad) return bad;
  const identity = pickIdentity(query, ['client_id', 'object_id', 'msi_res_id']);
  if (identity.error) return oauthError(400, 'invalid_request', identity.error);
  const resource = query.get('resource');
  const token = mintToken(resource, identity.clientId, opts.lifetime);
  return {
    status: 200,
    token: token.value,
    body: {
      access_token: token.value,
      refresh_token: '',
      expires_in: String(opts.lifetime),
      ext_expires_in: String(opts.lifetime),
      expires_on: String(token.exp),
      not_before: String(token.now),
      resource,
      token_type: 'Bearer',
      client_id: identity.clientId,
    },
  };
}

function appService(req, query, opts) {
  if (req.headers['x-identity-header'] !== opts.identityHeader) {
    return oauthError(401, 'unauthorized', 'X-IDENTITY-HEADER is missing or does not match');
  }
  const bad = checkCommon(query, '2019-08-01');
  if (bad) return bad;
  const identity = pickIdentity(query, ['client_id', 'principal_id', 'object_id', 'mi_res_id']);
  if (identity.error) return oauthError(400, 'invalid_request', identity.error);
  const resource = query.get('resource');
  const token = mintToken(resource, identity.clientId, opts.lifetime);
  return {
    status: 200,
    token: token.value,
    body: {
      access_token: token.value,
      expires_on: String(token.exp),
      not_before: String(token.now),
      resource,
      token_type: 'Bearer',
      client_id: identity.clientId,
    },
  };
}

function route(req, url, opts, faults) {
  const path = url.pathname;
  if (req.method === 'POST' && path === '/_rig/fail') {
    faults.count = Number(url.searchParams.get('count') ?? '1');
    faults.status = Number(url.searchParams.get('status') ?? '500');
    return { protocol: 'control', status: 204, body: null };
  }
  const protocol = path === IMDS_PATH ? 'imds' : path.toLowerCase() === APPSERVICE_PATH ? 'appservice' : 'unknown';
  if (protocol === 'unknown') return { protocol, ...oauthError(404, 'not_found', 'no such endpoint') };
  if (req.method !== 'GET') return { protocol, ...oauthError(405, 'invalid_request', 'only GET is supported') };
  if (faults.count > 0) {
    faults.count -= 1;
    return { protocol, ...oauthError(faults.status, 'unknown', 'injected failure') };
  }
  const handler = protocol === 'imds' ? imds : appService;
  return { protocol, ...handler(req, url.searchParams, opts) };
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server.address().port));
  });
}

async function main() {
  const opts = parseCli();
  const logFd = opts.log ? fs.openSync(opts.log, 'a') : null;
  const faults = { count: 0, status: 500 };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const result = route(req, url, opts, faults);
    if (logFd !== null) {
      const record = {
        ts: new Date().toISOString(),
        protocol: result.protocol,
        method: req.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        status: result.status,
        token: result.token ?? null,
      };
      fs.writeSync(logFd, `${JSON.stringify(record)}\n`);
    }
    res.statusCode = result.status;
    if (result.body === null) return res.end();
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(result.body));
  });

  const port = await listen(server, opts.port);
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.error(`token-endpoint: http://127.0.0.1:${port} (lifetime ${opts.lifetime}s)`);
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
}

main().catch((err) => {
  console.error('token-endpoint: failed to start:', err);
  process.exit(1);
});
