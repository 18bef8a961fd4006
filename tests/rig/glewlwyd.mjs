// A second, independent OpenID provider for the cosmogate end-to-end rig: glewlwyd 2.7 (C),
// installed from Debian by scripts/setup.sh, run as a private instance on 127.0.0.1.
//
// The launcher builds a fresh sqlite database from the package's init script, writes a config
// bound to 127.0.0.1 on a free port, starts glewlwyd, and configures it through its admin API:
// a scope, an OIDC plugin instance (issuer http://127.0.0.1:PORT/api/oidc) whose private JWKS
// holds a fresh RS256 and a fresh ES256 key, and two client_credentials clients, each pinned to
// one key through the client's sign_kid property. Without resource indicators glewlwyd sets
// `aud` to the granted scope list, so a token for scope cosmos.read has aud "cosmos.read".
//
// Usage: node glewlwyd.mjs [--ttl SECONDS] [--port PORT] [--dir DIR]
//   --ttl   access token lifetime in seconds (default 300)
//   --port  port to bind on 127.0.0.1 (default 0 = pick a free one)
//   --dir   directory for the database, config and keys (default: a temp dir removed on exit)
//
// Prints one line to stdout when ready:
//   {"ready":true,"issuer":"http://127.0.0.1:PORT/api/oidc","port":PORT,"scope":"cosmos.read",
//    "clients":[{"client_id":..,"secret":..,"alg":..,"kid":..},..]}
// glewlwyd's own log and everything else go to stderr. Exits on SIGTERM / SIGINT, stopping
// glewlwyd; glewlwyd also gets SIGTERM if this process dies (setpriv --pdeathsig).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';

import * as jose from 'jose';

const INIT_SQL = '/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz';
const MODULES = '/usr/lib/glewlwyd';
const ADMIN = { username: 'admin', password: 'password' };
const SCOPE = 'cosmos.read';
const PLUGIN = 'oidc';
const CLIENTS = [
  { client_id: 'svc-gl-rs256', secret: 'gl-rs256-secret', alg: 'RS256', kid: 'gl-rsa-1' },
  { client_id: 'svc-gl-es256', secret: 'gl-es256-secret', alg: 'ES256', kid: 'gl-ec-1' },
];
const START_ATTEMPTS = 5;
const START_TIMEOUT_MS = 15000;
const REQUEST_TIMEOUT_MS = 5000;
const ANSWER_POLLS = 100;
const ANSWER_POLL_MS = 50;
// The session cookie name is unique per run: a login answered with it proves that the server
// on the port is this run's glewlwyd and not some other process that took the port.
const SESSION_KEY = `GLEWLWYD_RIG_${randomBytes(8).toString('hex')}`;

function log(...args) {
  console.error('glewlwyd-rig:', ...args);
}

function parseCli() {
  const { values } = parseArgs({
    options: {
      ttl: { type: 'string', default: '300' },
      port: { type: 'string', default: '0' },
      dir: { type: 'string' },
    },
  });
  const ttl = Number(values.ttl);
  const port = Number(values.port);
  if (!Number.isInteger(ttl) || ttl < 1) throw new Error(`--ttl must be a positive integer, got ${values.ttl}`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port is not a port: ${values.port}`);
  return { ttl, port, dir: values.dir };
}

function checkInstalled() {
  for (const file of [INIT_SQL, `${MODULES}/plugin/libprotocol_oidc.so`]) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run scripts/setup.sh first`);
  }
}

// Runs a command to completion, feeding `input` on stdin; rejects on a non-zero exit.
function run(cmd, args, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${stderr}`))));
    child.stdin.end(input);
  });
}

// The package's init script, plus one change: the database client backend must store the
// sign_kid property, or glewlwyd drops it and signs every client's tokens with the default key.
async function createDatabase(file) {
  const sql = zlib.gunzipSync(fs.readFileSync(INIT_SQL)).toString('utf8');
  const signKid = `UPDATE g_client_module_instance SET gcmi_parameters = json_set(gcmi_parameters,
    '$."data-format".sign_kid', json('{"multiple":false,"read":true,"write":true}'))
    WHERE gcmi_name = 'database';`;
  await run('sqlite3', [file], `${sql}\n${signKid}\n`);
}

function configText(port, database) {
  return `port=${port}
bind_address="127.0.0.1"
external_url="http://127.0.0.1:${port}"
api_prefix="api"
log_mode="console"
log_level="INFO"
cookie_domain="127.0.0.1"
cookie_secure=0
session_expiration=3600
session_key="${SESSION_KEY}"
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="${MODULES}/user"
user_middleware_module_path="${MODULES}/user_middleware"
client_module_path="${MODULES}/client"
user_auth_scheme_module_path="${MODULES}/scheme"
plugin_module_path="${MODULES}/plugin"
hash_algorithm="SHA512"
database = { type = "sqlite3"; path = "${database}"; };
`;
}

// A port that was free a moment ago; glewlwyd cannot bind port 0 (it falls back to 4593).
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// Starts glewlwyd and resolves once it logs its start line. That line comes before the bind,
// so it does not prove the port is ours: see answering(). Rejects when glewlwyd exits first
// or does not get that far in time.
function startServer(config) {
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', ['--pdeathsig', 'TERM', '--', 'glewlwyd', '-c', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error('glewlwyd did not start in time'));
    }, START_TIMEOUT_MS);
    const watch = (chunk) => {
      process.stderr.write(chunk);
      if (!started && /Glewlwyd started on port/.test(chunk.toString())) {
        started = true;
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on('data', watch);
    child.stderr.on('data', watch);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      if (started) return;
      clearTimeout(timer);
      reject(new Error(`glewlwyd exited before listening (code ${code}, signal ${signal})`));
    });
  });
}

// Resolves once `base` answers a login with this run's session cookie while `child` is alive;
// rejects when the child exits (it could not bind) or the port never answers.
async function answering(child, base) {
  for (let poll = 0; poll < ANSWER_POLLS; poll += 1) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('glewlwyd exited: the port was taken');
    const admin = new Admin(base);
    const ours = await admin.login().then(
      () => admin.cookie.startsWith(`${SESSION_KEY}=`),
      () => null,
    );
    if (ours === false) throw new Error('another server answers on the port');
    if (ours) return admin;
    await new Promise((resolve) => setTimeout(resolve, ANSWER_POLL_MS));
  }
  throw new Error('glewlwyd never answered');
}

// Starts glewlwyd on `wanted`, or on a free port, retrying on another port when it turns out
// to be taken. Returns the child, its port and a logged-in admin session.
async function startOnFreePort(dir, wanted, database) {
  let lastError;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt += 1) {
    const port = wanted || (await freePort());
    const config = path.join(dir, 'glewlwyd.conf');
    fs.writeFileSync(config, configText(port, database));
    let child = null;
    try {
      child = await startServer(config);
      const admin = await answering(child, `http://127.0.0.1:${port}`);
      return { child, port, admin };
    } catch (err) {
      lastError = err;
      child?.kill('SIGTERM');
      log(`start attempt ${attempt} on port ${port} failed: ${err.message}`);
      if (wanted) break;
    }
  }
  throw lastError;
}

class Admin {
  constructor(base) {
    this.base = base;
    this.cookie = '';
  }

  async login() {
    const res = await fetch(`${this.base}/api/auth/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ADMIN),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0];
    if (!res.ok || !cookie) throw new Error(`admin login answered ${res.status}`);
    this.cookie = cookie;
  }

  async call(method, route, body) {
    const res = await fetch(`${this.base}/api/${route}`, {
      method,
      headers: { 'content-type': 'application/json', cookie: this.cookie },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`${method} /api/${route} answered ${res.status}: ${await res.text()}`);
  }
}

async function signingKeys() {
  const keys = [];
  for (const client of CLIENTS) {
    const { privateKey } = await jose.generateKeyPair(client.alg, { extractable: true });
    keys.push({ ...(await jose.exportJWK(privateKey)), kid: client.kid, alg: client.alg, use: 'sig' });
  }
  return { keys };
}

function pluginInstance(issuer, jwks, ttl) {
  return {
    module: 'oidc',
    name: PLUGIN,
    display_name: 'cosmogate rig',
    enabled: true,
    parameters: {
      iss: issuer,
      'jwks-private': JSON.stringify(jwks),
      'default-kid': CLIENTS[0].kid,
      'client-sign_kid-parameter': 'sign_kid',
      'jwks-show': true,
      'access-token-duration': ttl,
      'refresh-token-duration': 3600,
      'code-duration': 600,
      'allow-non-oidc': true,
      'auth-type-client-enabled': true,
      'auth-type-code-enabled': false,
      'auth-type-token-enabled': false,
      'auth-type-id-token-enabled': false,
      'auth-type-none-enabled': false,
      'auth-type-password-enabled': false,
      'auth-type-refresh-enabled': false,
      'auth-type-device-enabled': false,
      scope: [],
    },
  };
}

function clientRecord(client) {
  return {
    client_id: client.client_id,
    name: client.client_id,
    enabled: true,
    confidential: true,
    authorization_type: ['client_credentials'],
    scope: [SCOPE],
    redirect_uri: [],
    // Basic authentication needs the plaintext client_secret property and the auth method;
    // glewlwyd's `password` field alone is refused.
    client_secret: client.secret,
    token_endpoint_auth_method: ['client_secret_basic'],
    sign_kid: client.kid,
  };
}

async function configure(admin, issuer, ttl) {
  await admin.call('POST', 'scope/', {
    name: SCOPE,
    display_name: 'Cosmos read',
    description: 'Read access to Cosmos DB data through cosmogate',
    password_required: false,
    scheme: {},
  });
  await admin.call('POST', 'mod/plugin/', pluginInstance(issuer, await signingKeys(), ttl));
  for (const client of CLIENTS) await admin.call('POST', 'client/', clientRecord(client));
}

async function main() {
  const { ttl, port: wanted, dir: givenDir } = parseCli();
  checkInstalled();
  const dir = givenDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'glewlwyd-rig-'));
  fs.mkdirSync(dir, { recursive: true });
  const database = path.join(dir, 'glewlwyd.db');
  fs.rmSync(database, { force: true });
  await createDatabase(database);

  const { child, port, admin } = await startOnFreePort(dir, wanted, database);
  const cleanup = () => {
    if (!givenDir) fs.rmSync(dir, { recursive: true, force: true });
  };
  let stopping = false;
  const stop = () => {
    stopping = true;
    child.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  child.on('exit', (code, signal) => {
    if (!stopping) log(`glewlwyd exited unexpectedly (code ${code}, signal ${signal})`);
    cleanup();
    process.exit(stopping ? 0 : 1);
  });

  const base = `http://127.0.0.1:${port}`;
  const issuer = `${base}/api/${PLUGIN}`;
  await configure(admin, issuer, ttl);
  const clients = CLIENTS.map(({ client_id, secret, alg, kid }) => ({ client_id, secret, alg, kid }));
  log(`issuer ${issuer}, token ttl ${ttl}s`);
  process.stdout.write(`${JSON.stringify({ ready: true, issuer, port, scope: SCOPE, clients })}\n`);
}

main().catch((err) => {
  log('failed to start:', err);
  process.exit(1);
});
