// A server that holds the log's key (the exchange signs its own checkpoints: app.state.
// log_signer) rewrites entry 0 after the auditor has verified it, and signs a checkpoint of the
// same size with another root. The browser verifier (app/console/static/verify.mjs), asked
// twice for leaf 0, must verify the first and refuse the second: it remembers the checkpoint it
// verified. Run by test_browser_verifier.py; prints JSON.
import { webcrypto, createHash, generateKeyPairSync, sign } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

globalThis.crypto ??= webcrypto;
globalThis.document = { getElementById: () => null };
const { verify, leafHash, STEPS } = await import(
  pathToFileURL(path.resolve(process.argv[2], 'app/console/static/verify.mjs')).href
);

const name = 'nps-exchange.example/log';
const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const raw = Buffer.concat([Buffer.from([1]), publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)]);
const keyId = createHash('sha256').update(Buffer.concat([Buffer.from(name + '\n'), raw])).digest().subarray(0, 4);
const vkey = `${name}+${keyId.toString('hex')}+${raw.toString('base64')}`;
const node = (l, r) => createHash('sha256').update(Buffer.concat([Buffer.from([1]), l, r])).digest();

async function served(entry0) {
  const entry1 = { id: 2, action: 'notice.received', details: null };
  const l0 = Buffer.from(await leafHash(entry0)); const l1 = Buffer.from(await leafHash(entry1));
  const text = `${name}\n2\n${node(l0, l1).toString('base64')}\ntime 2026-12-07T21:00:00Z\n`;
  const note = `${text}\n\u2014 ${name} ${Buffer.concat([keyId, sign(null, Buffer.from(text), privateKey)]).toString('base64')}\n`;
  return (url) => ({
    ok: true,
    json: async () => (url.includes('checkpoint') ? { tree_size: 2, note } : {
      leaf_index: 0, tree_size: 2, leaf_hash: l0.toString('base64'), entry: entry0, hashes: [l1.toString('base64')],
    }),
  });
}

const outcomes = [];
for (const entry of [
  { id: 1, action: 'audit.consulted', actor_client_id: 'person:auditor-alice', details: { query: 'entries' } },
  { id: 1, action: 'audit.consulted', actor_client_id: 'person:someone-else', details: { query: 'entries' } },
]) {
  globalThis.fetch = await served(entry);
  const checks = await verify(vkey, 0);
  outcomes.push({ actor: entry.actor_client_id, verified: checks.length === STEPS && checks.every(([, ok]) => ok), root: checks[2][2], last: checks.at(-1) });
}
console.log(JSON.stringify(outcomes));
