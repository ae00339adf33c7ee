// The browser verifier (app/console/static/verify.mjs) against checkpoints that
// app/audit/checkpoint.py parse_and_verify refuses (its origin line not the log the key names,
// "wrong_origin"; "malformed" ones), each correctly signed, and one it accepts. Run by
// test_browser_verifier.py; prints JSON.
import { webcrypto, createHash, generateKeyPairSync, sign } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

globalThis.crypto ??= webcrypto;
globalThis.document = { getElementById: () => null }; // the module looks for its form
const { parseVerifierKey, verifyCheckpoint } = await import(
  pathToFileURL(path.resolve(process.argv[2], 'app/console/static/verify.mjs')).href
);

const name = 'nps-exchange.example/log';
const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const raw = Buffer.concat([Buffer.from([1]), publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)]);
const keyId = createHash('sha256').update(Buffer.concat([Buffer.from(name + '\n'), raw])).digest().subarray(0, 4);
const vkey = `${name}+${keyId.toString('hex')}+${raw.toString('base64')}`;

const note = (text) => {
  const signature = sign(null, Buffer.from(text), privateKey);
  return `${text}\n\u2014 ${name} ${Buffer.concat([keyId, signature]).toString('base64')}\n`;
};
const root = Buffer.alloc(32, 7).toString('base64');
const body = (lines) => note(lines.map((l) => `${l}\n`).join(''));
const time = 'time 2026-12-07T21:00:00Z';
const cases = {
  good: body([name, '3', root, time]),
  another_origin: body(['staging.nps-exchange.example/log', '3', root, time]),
  five_lines: body([name, '3', root, time, 'extra: line']),
  short_root: body([name, '3', 'AAAA', time]),
  loose_base64_root: body([name, '3', root.replace(/=$/, ''), time]),
  any_time: body([name, '3', root, 'time whenever']),
  not_a_day: body([name, '3', root, 'time 2026-02-30T21:00:00Z']),
  leading_zero_size: body([name, '03', root, time]),
  control_character: body([name, '3', root, `${time}\r`]),
};
const key = await parseVerifierKey(vkey);
const out = {};
for (const [label, text] of Object.entries(cases)) {
  try { out[label] = { accepted: true, ...(await verifyCheckpoint(text, key)), root: undefined }; } catch (e) { out[label] = { accepted: false, why: e.message }; }
}
console.log(JSON.stringify(out));
