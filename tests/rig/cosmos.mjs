// Cosmos-compatible server for the cosmogate end-to-end rig.
//
// Wraps @vercel/cosmosdb-server (in-memory, checks no credentials at all) over HTTPS with the
// certificate the harness generated, bound to 127.0.0.1, and records every request it receives.
//
// Usage: node cosmos.mjs --cert FILE --key FILE [--port PORT] [--log FILE]
//                        [--master-key KEY] [--setup db:container[,db:container...]]
//                        [--connection-close] [--regions NAME=HOST[,NAME=HOST...]]
//   --cert, --key        PEM server certificate (chain) and private key
//   --port               port on 127.0.0.1 (default 0 = any free port)
//   --log                JSONL file, one record per received request (see logRecord below)
//   --master-key         recompute the master-key HMAC of type=master requests and record
//                        master_sig_valid; setup requests are signed with this key too
//   --setup              databases and containers (partition key /tenant, Hash v2) created
//                        through HTTPS requests to this server before it reports ready
//   --connection-close   answer every request with Connection: close (the library's default);
//                        without it the server keeps connections alive like a real gateway
//   --regions            advertise a multi-region account: GET / lists each region at
//                        https://HOST:PORT/ (this same server under another loopback name,
//                        e.g. 127.0.0.1 and localhost); the first is the write region, all
//                        are readable. Which region a request went to shows in its logged host.
//
// Prints one line to stdout when ready: {"ready":true,"port":PORT}. Logs go to stderr.
// GET / advertises https://127.0.0.1:PORT/ as the account's read and write endpoint, unless
// --regions says otherwise.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import { parseArgs } from 'node:util';

import cosmosServer from '@vercel/cosmosdb-server';

import { checkMasterRequest, masterAuthorization } from './lib/master-key.mjs';

const { createHttpsServer } = cosmosServer;

function parseCli() {
  const { values } = parseArgs({
    options: {
      cert: { type: 'string' },
      key: { type: 'string' },
      port: { type: 'string', default: '0' },
      log: { type: 'string' },
      'master-key': { type: 'string' },
      setup: { type: 'string', default: '' },
      'connection-close': { type: 'boolean', default: false },
      regions: { type: 'string', default: '' },
    },
  });
  if (!values.cert || !values.key) throw new Error('--cert and --key are required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port is not a port: ${values.port}`);
  return {
    cert: fs.readFileSync(values.cert),
    key: fs.readFileSync(values.key),
    port,
    log: values.log,
    masterKey: values['master-key'],
    setup: parseSetup(values.setup),
    keepAlive: !values['connection-close'],
    regions: parseRegions(values.regions),
  };
}

function parseRegions(spec) {
  return spec.split(',').filter((s) => s.trim() !== '').map((pair) => {
    const [name, host, ...rest] = pair.split('=');
    if (!name?.trim() || !host?.trim() || rest.length > 0) throw new Error(`--regions entry must be NAME=HOST, got ${pair}`);
    return { name: name.trim(), host: host.trim() };
  });
}

// The library's own account document with the location lists of a multi-region account.
async function regionalAccount(port, masterKey, regions) {
  const { status, text } = await selfRequest(port, masterKey, 'GET', '/', null);
  if (status !== 200) throw new Error(`GET / answered ${status}: ${text}`);
  const locations = regions.map(({ name, host }) => ({ name, databaseAccountEndpoint: `https://${host}:${port}/` }));
  return { ...JSON.parse(text), writableLocations: locations.slice(0, 1), readableLocations: locations };
}

function parseSetup(spec) {
  return spec.split(',').filter((s) => s.trim() !== '').map((pair) => {
    const [db, container, ...rest] = pair.trim().split(':');
    if (!db || !container || rest.length > 0) throw new Error(`--setup entry must be db:container, got ${pair}`);
    return { db, container };
  });
}

function logRecord(req, masterKey, setup) {
  const record = {
    ts: new Date().toISOString(),
    method: req.method,
    url: req.url,
    host: req.headers.host ?? null,
    authorization: req.headers.authorization ?? null,
    x_ms_date: req.headers['x-ms-date'] ?? null,
    headers: req.headers,
    setup,
  };
  if (masterKey) {
    const check = checkMasterRequest(masterKey, req.method, req.url, req.headers);
    if (check) {
      record.master_sig_valid = check.valid;
      record.resource_type = check.resourceType;
      record.resource_link = check.resourceLink;
    }
  }
  return record;
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server.address().port));
  });
}

// One HTTPS request to this server itself. The peer is this very process, so the certificate
// is not checked here; the harness checks it from the outside.
function selfRequest(port, masterKey, method, path, body) {
  const payload = body === null ? '' : JSON.stringify(body);
  const date = new Date().toUTCString();
  const headers = {
    'content-length': Buffer.byteLength(payload),
    'x-ms-date': date,
    'x-ms-version': '2020-07-15',
  };
  if (body !== null) headers['content-type'] = 'application/json';
  if (masterKey) headers.authorization = masterAuthorization(masterKey, method, path, date);
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, method, path, headers, rejectUnauthorized: false, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => { text += chunk; });
        res.on('end', () => resolve({ status: res.statusCode, text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function createOrKeep(port, masterKey, path, body) {
  const { status, text } = await selfRequest(port, masterKey, 'POST', path, body);
  if (status !== 201 && status !== 409) throw new Error(`setup POST ${path} answered ${status}: ${text}`);
}

async function runSetup(port, masterKey, setup) {
  const dbs = [...new Set(setup.map((s) => s.db))];
  for (const db of dbs) await createOrKeep(port, masterKey, '/dbs', { id: db });
  for (const { db, container } of setup) {
    await createOrKeep(port, masterKey, `/dbs/${encodeURIComponent(db)}/colls`, {
      id: container,
      partitionKey: { paths: ['/tenant'], kind: 'Hash', version: 2 },
    });
  }
}

async function main() {
  const opts = parseCli();
  const logFd = opts.log ? fs.openSync(opts.log, 'a') : null;
  let settingUp = true;

  const server = createHttpsServer({ cert: opts.cert, key: opts.key, keepAlive: opts.keepAlive });
  // With --regions, GET / is answered here with the multi-region document; every other
  // request goes to the library's own handler.
  let account = null;
  const library = server.listeners('request');
  server.removeAllListeners('request');
  server.on('request', (req, res) => {
    if (account !== null && req.method === 'GET' && (req.url === '/' || req.url.startsWith('/?'))) {
      const text = JSON.stringify(account);
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        'x-ms-request-charge': '0',
        'x-ms-activity-id': req.headers['x-ms-activity-id'] ?? crypto.randomUUID(),
      });
      res.end(text);
      return;
    }
    for (const handler of library) handler.call(server, req, res);
  });
  // Runs before any handler, so the record is on disk before any response.
  server.prependListener('request', (req) => {
    if (logFd === null) return;
    fs.writeSync(logFd, `${JSON.stringify(logRecord(req, opts.masterKey, settingUp))}\n`);
  });
  server.on('tlsClientError', (err) => console.error('cosmos: tls error:', err.message));

  const port = await listen(server, opts.port);
  await runSetup(port, opts.masterKey, opts.setup);
  if (opts.regions.length > 0) account = await regionalAccount(port, opts.masterKey, opts.regions);
  settingUp = false;

  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.error(`cosmos: https://127.0.0.1:${port}/ (${opts.setup.length} containers set up)`);
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
}

main().catch((err) => {
  console.error('cosmos: failed to start:', err);
  process.exit(1);
});
