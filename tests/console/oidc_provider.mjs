// A real OpenID provider for the console's tests and for `make run` users: the npm package
// oidc-provider, on loopback, with one client (the console) and a few people. Its own login
// form (oidc-provider's development interactions) signs in any of the accounts below by login
// name; the password is not checked: a test provider, never one to deploy.
//
//   node tests/console/oidc_provider.mjs --port 9090 --redirect-uri http://127.0.0.1:8000/console/callback
//
// prints one JSON line when it listens: {"issuer", "client_id", "client_secret"}.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

// Under `pytest --today`, the suite's wall clock is moved by whole days (tests/helpers/clock.py):
// the provider's moves with it, so that its tokens are dated on the day the exchange sees.
const shiftDays = Number(process.env.EXCHANGE_TEST_CLOCK_SHIFT || 0);
if (shiftDays) {
  const realNow = Date.now;
  Date.now = () => realNow() + shiftDays * 86_400_000;
  // The browser's clock is not moved: a cookie's expiry written from the moved clock would
  // already have passed (or be far off). Its cookies last the browser's session instead,
  // stripped as the headers are written (oidc-provider appends its session cookie's expiry
  // after setting the cookie).
  const { ServerResponse } = await import('node:http');
  const writeHead = ServerResponse.prototype.writeHead;
  const strip = (v) => String(v).replace(/; expires=(?!Thu, 01 Jan 1970)[^;]*/gi, '');
  ServerResponse.prototype.writeHead = function writeHeadUnmoved(...args) {
    const cookies = this.getHeader('set-cookie');
    if (cookies) this.setHeader('set-cookie', [].concat(cookies).map(strip));
    return writeHead.apply(this, args);
  };
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'client-id': { type: 'string', default: 'nps-exchange-console' },
    'client-secret': { type: 'string', default: 'console-secret-for-local-use-only-0123456789' },
    'id-token-ttl': { type: 'string', default: '300' },
  },
});

// Each person: the organisation code (claim "organisation") and role (claim "role").
const ACCOUNTS = {
  'auditor-alice': { organisation: 'AUDIT', role: 'information_governance_officer', name: 'Alice Auditor' },
  'operator-olu': { organisation: 'OPS', role: 'operator', name: 'Olu Operator' },
  'prison-pat': { organisation: 'MDI', role: 'prison_officer', name: 'Pat Prison' },
  'nobody-nia': { organisation: 'NOWHERE', role: 'auditor', name: 'Nia Nobody' },
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-' + randomBytes(4).toString('hex'), use: 'sig', alg: 'RS256' };

async function listen(port) {
  const http = await import('node:http');
  const server = http.createServer();
  await new Promise((resolve) => server.listen(Number(port), '127.0.0.1', resolve));
  return server;
}

const server = await listen(values.port);
const issuer = `http://127.0.0.1:${server.address().port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: values['client-id'],
    client_secret: values['client-secret'],
    redirect_uris: values['redirect-uri'],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  claims: { openid: ['sub'], profile: ['name'], nps: ['organisation', 'role'] },
  scopes: ['openid', 'profile', 'nps'],
  conformIdTokenClaims: false, // the scopes' claims in the ID token, as the console reads them
  pkce: { required: () => true },
  ttl: { IdToken: Number(values['id-token-ttl']) },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const account = ACCOUNTS[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
});
provider.on('server_error', (ctx, error) => console.error('oidc-provider:', error));
server.on('request', provider.callback());
console.log(JSON.stringify({ issuer, client_id: values['client-id'], client_secret: values['client-secret'] }));
