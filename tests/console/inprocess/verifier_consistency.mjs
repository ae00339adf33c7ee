// The browser verifier's consistency check (app/console/static/verify.mjs verifyConsistency)
// on the cases given as JSON on stdin: [{first, second, first_root, second_root, hashes}],
// base64 hashes. Prints, per case, true if it verified. Run by test_browser_verifier.py.
import { webcrypto } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

globalThis.crypto ??= webcrypto;
globalThis.document = { getElementById: () => null };
const { verifyConsistency } = await import(
  pathToFileURL(path.resolve(process.argv[2], 'app/console/static/verify.mjs')).href
);
const b64 = (text) => Uint8Array.from(Buffer.from(text, 'base64'));
let input = '';
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const c of JSON.parse(input)) {
  try {
    await verifyConsistency(c.first, c.second, b64(c.first_root), b64(c.second_root), c.hashes.map(b64));
    out.push(true);
  } catch {
    out.push(false);
  }
}
console.log(JSON.stringify(out));
