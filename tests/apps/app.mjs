// Sample app for the cosmogate rig and demo: a plain @azure/cosmos (JS SDK v4) client doing a
// fixed sequence of data-plane operations, each reported as one JSON line on stdout:
//   {"sdk":"js","op":NAME,"ok":bool,"status":int|null,"code":string|null,"message":string|null,
//    "count":int|null}
// (count: number of documents returned by query/feed ops, otherwise null). Nothing else is
// printed on stdout; diagnostics go to stderr. Exits 0 unless the app itself crashed.
//
// Usage: node app.mjs --endpoint URL --ca FILE --database D --container C
//                     (--idp ISSUER --client ID --secret S | --static-token TOKEN)
//                     [--ops a,b,c] [--id ITEM_ID] [--tenant T] [--resource URI]
//                     [--no-discovery] [--preferred-locations A,B] [--timeout-ms MS]
//   --idp/--client/--secret  client_credentials against the IdP (token endpoint taken from
//                            discovery), resource --resource (default api://cosmogate), cached
//                            until exp; the scopes the SDK asks for are ignored
//   --static-token           hand the SDK exactly this string as the access token
//   --ops                    subset of: create,read,query_pk,query_cross,upsert,replace,patch,
//                            read_all,change_feed,bulk,delete (default: all, in that order)
//   --id / --tenant          item id (default unique per run) and partition key (default t1)
//   --no-discovery           connectionPolicy.enableEndpointDiscovery = false
//   --preferred-locations    connectionPolicy.preferredLocations, comma-separated region names
// (--key KEY, for checking the rig without cosmogate, authenticates with a master key instead.)
import fs from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

import { OPS, runOps } from './ops.mjs';

// @azure/cosmos lives in the rig's node_modules, not next to this file.
const rigRequire = createRequire(new URL('../rig/package.json', import.meta.url));
const cosmos = rigRequire('@azure/cosmos');

function parseCli() {
  const { values } = parseArgs({
    options: {
      endpoint: { type: 'string' },
      ca: { type: 'string' },
      database: { type: 'string' },
      container: { type: 'string' },
      idp: { type: 'string' },
      client: { type: 'string' },
      secret: { type: 'string' },
      resource: { type: 'string', default: 'api://cosmogate' },
      'static-token': { type: 'string' },
      key: { type: 'string' },
      ops: { type: 'string' },
      id: { type: 'string' },
      tenant: { type: 'string', default: 't1' },
      'no-discovery': { type: 'boolean', default: false },
      'preferred-locations': { type: 'string' },
      'timeout-ms': { type: 'string', default: '15000' },
    },
  });
  for (const name of ['endpoint', 'ca', 'database', 'container']) {
    if (!values[name]) throw new Error(`--${name} is required`);
  }
  const modes = [values.idp, values['static-token'], values.key].filter((v) => v !== undefined);
  if (modes.length !== 1) throw new Error('give exactly one of --idp, --static-token, --key');
  if (values.idp && (!values.client || !values.secret)) throw new Error('--idp needs --client and --secret');
  const ops = values.ops ? values.ops.split(',').map((s) => s.trim()).filter(Boolean) : OPS;
  const unknown = ops.filter((op) => !OPS.includes(op));
  if (unknown.length > 0) throw new Error(`unknown ops: ${unknown.join(',')}`);
  return { ...values, ops, timeoutMs: Number(values['timeout-ms']) };
}

// A TokenCredential that gets OIDC access tokens by client_credentials from the test IdP.
class IdpCredential {
  constructor(issuer, clientId, secret, resource) {
    this.issuer = issuer.replace(/\/$/, '');
    this.clientId = clientId;
    this.secret = secret;
    this.resource = resource;
    this.cached = null;
  }

  async tokenEndpoint() {
    const res = await fetch(`${this.issuer}/.well-known/openid-configuration`);
    if (!res.ok) throw new Error(`idp discovery answered ${res.status}`);
    const doc = await res.json();
    return doc.token_endpoint;
  }

  async getToken(scopes) {
    console.error(`app: getToken asked for ${JSON.stringify(scopes)}`);
    const now = Date.now();
    if (this.cached && this.cached.expiresOnTimestamp - 5000 > now) return this.cached;
    const basic = Buffer.from(`${encodeURIComponent(this.clientId)}:${encodeURIComponent(this.secret)}`).toString('base64');
    const res = await fetch(await this.tokenEndpoint(), {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: this.resource, scope: 'cosmos' }),
    });
    const body = await res.json();
    if (!res.ok) throw new Error(`idp token request answered ${res.status}: ${body.error ?? ''}`);
    const payload = JSON.parse(Buffer.from(body.access_token.split('.')[1], 'base64url').toString());
    this.cached = { token: body.access_token, expiresOnTimestamp: payload.exp * 1000 };
    return this.cached;
  }
}

// A TokenCredential that always hands out the same string.
class StaticCredential {
  constructor(token) {
    this.token = token;
  }

  async getToken() {
    return { token: this.token, expiresOnTimestamp: Date.now() + 3600 * 1000 };
  }
}

function buildClient(args) {
  const options = {
    endpoint: args.endpoint,
    agent: new https.Agent({ ca: fs.readFileSync(args.ca), keepAlive: true }),
    connectionPolicy: {
      enableEndpointDiscovery: !args['no-discovery'],
      requestTimeout: args.timeoutMs,
    },
  };
  if (args['preferred-locations']) {
    options.connectionPolicy.preferredLocations = args['preferred-locations']
      .split(',').map((s) => s.trim()).filter(Boolean);
  }
  if (args.key) options.key = args.key;
  else if (args.idp) options.aadCredentials = new IdpCredential(args.idp, args.client, args.secret, args.resource);
  else options.aadCredentials = new StaticCredential(args['static-token']);
  return new cosmos.CosmosClient(options);
}

async function main() {
  const args = parseCli();
  const client = buildClient(args);
  const container = client.database(args.database).container(args.container);
  const id = args.id ?? `js-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  await runOps({ cosmos, container, id, tenant: args.tenant, ops: args.ops });
  client.dispose();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error('app: crashed:', err);
    process.exit(2);
  },
);
