// Verify in your browser: the log's checkpoint and an entry's inclusion proof, checked here with
// WebCrypto (Ed25519 and SHA-256), as app/audit/checkpoint.py and app/audit/merkle.py check
// them, so that an auditor need not trust the answers of the server that sent them (this script
// itself is served by that server: for independence, use `exchange audit verify` or any RFC 9162
// verifier). The last checkpoint verified with each key is kept in this browser: a different
// root for a size already seen (a fork) is refused, and a newer checkpoint must come with a
// consistency proof from it (RFC 9162 2.1.4), so that a rewritten log is noticed.
//
// The checkpoint is a c2sp.org signed note: origin, size, root (base64), "time ...", a blank
// line, then "— <key name> <base64(4-byte key ID || signature)>" lines. The key ID is the
// first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key); the verifier key is
// "<name>+<hex key ID>+<base64(0x01 || public key)>". Leaves are SHA-256(0x00 || RFC 8785
// JSON of the entry); nodes SHA-256(0x01 || left || right) (RFC 9162 2.1.1).

const KEY_STORE = 'nps-exchange.verifier-key';
const CHECKPOINT_STORE = 'nps-exchange.checkpoint.'; // + the key's name and hex ID
export const STEPS = 7; // the checks of a verification that passes
const MAX_SIGNATURES = 16; // as app/audit/checkpoint.py: the spec asks for at least 16
const CONTROL = /[\x00-\x09\x0b-\x1f]/; // every ASCII control but the newline
const TIME = /^time [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$/;
const memory = new Map(); // where a browser has no localStorage (and under Node, in tests)
const store = globalThis.localStorage ?? {
  getItem: (k) => memory.get(k) ?? null, setItem: (k, v) => memory.set(k, v), removeItem: (k) => memory.delete(k),
};
const encoder = new TextEncoder();

const b64decode = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
// Canonical base64 only, as app/audit/checkpoint.py _strict_base64.
const strictB64 = (text) => {
  let bytes;
  try { bytes = b64decode(text); } catch { throw new Failed('The checkpoint is malformed: not base64.'); }
  if (b64encode(bytes) !== text) throw new Failed('The checkpoint is malformed: not canonical base64.');
  return bytes;
};
const b64encode = (bytes) => btoa(String.fromCharCode(...bytes));
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));

export class Failed extends Error {}

// RFC 8785: JSON.stringify writes strings and numbers as JCS asks; members sorted by UTF-16.
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export async function parseVerifierKey(vkey) {
  const parts = vkey.trim().split('+');
  if (parts.length < 3) throw new Failed('This is not a verifier key (name+keyid+key).');
  const [name, keyId] = parts;
  let raw;
  try { raw = b64decode(parts.slice(2).join('+')); } catch { throw new Failed('The key part is not base64.'); }
  if (raw.length !== 33 || raw[0] !== 1) throw new Failed('This is not an Ed25519 verifier key.');
  const expected = (await sha256(concat(encoder.encode(name + '\n'), raw))).slice(0, 4);
  if (hex(expected) !== keyId.toLowerCase()) throw new Failed("The verifier key's ID does not match its key.");
  const key = await crypto.subtle.importKey('raw', raw.slice(1), { name: 'Ed25519' }, false, ['verify']);
  return { name, keyId: expected, key };
}

// As app/audit/checkpoint.py parse_and_verify, with the origin the key's name: what it refuses
// is refused here.
export async function verifyCheckpoint(note, vkey) {
  const malformed = (why) => new Failed(`The checkpoint is malformed: ${why}.`);
  if (CONTROL.test(note)) throw malformed('a control character other than newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new Failed('The checkpoint is not a signed note.');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw malformed('too many signature lines');
  const ours = [];
  for (const line of lines) {
    const rest = line.slice(2);
    const space = rest.indexOf(' ');
    if (!line.startsWith('\u2014 ') || space < 0) throw new Failed('A signature line is malformed.');
    const name = rest.slice(0, space);
    if (!name || /[\s+]/.test(name)) throw new Failed('A signature line is malformed.');
    const signature = strictB64(rest.slice(space + 1));
    if (signature.length < 5) throw new Failed('A signature line is malformed.');
    if (name === vkey.name && equal(signature.slice(0, 4), vkey.keyId)) ours.push(signature.slice(4));
  }
  if (!ours.length) throw new Failed(`The checkpoint is not signed by ${vkey.name} with this key.`);
  for (const signature of ours) {
    const ok = await crypto.subtle.verify({ name: 'Ed25519' }, vkey.key, signature, encoder.encode(text));
    if (!ok) throw new Failed("The checkpoint's signature does not verify with this key.");
  }
  const body = text.slice(0, -1).split('\n');
  if (body.length !== 4) throw malformed('not origin, size, root and time lines');
  const [origin, size, root, time] = body;
  if (origin !== vkey.name) throw new Failed(`The checkpoint is of another log (${origin}), not ${vkey.name}.`);
  if (!/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size))) throw malformed('the tree size');
  const rootHash = strictB64(root);
  if (rootHash.length !== 32) throw malformed('the root hash is not 32 bytes');
  if (!TIME.test(time) || Number.isNaN(Date.parse(time.slice(5)))) throw malformed("no 'time YYYY-MM-DDTHH:MM:SSZ' line");
  const stamp = time.slice(5);
  if (new Date(stamp).toISOString().replace('.000Z', 'Z') !== stamp) throw malformed('the time is not a date and time');
  return { origin, size: Number(size), root: rootHash, time: stamp };
}

// RFC 9162 2.1.4.2 (app/audit/merkle.py verify_consistency), with sizes as safe integers.
export async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  const node = async (l, r) => sha256(concat(new Uint8Array([1]), l, r));
  if (!(first > 0 && first < second)) throw new Failed('No consistency proof between these sizes.');
  if (!proof.length) throw new Failed('The consistency proof is empty.');
  const path = [...proof];
  if (Math.log2(first) % 1 === 0) path.unshift(firstRoot);
  let fn = first - 1; let sn = second - 1;
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let fr = path[0]; let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) throw new Failed('The consistency proof is longer than the path to the root.');
    if (fn % 2 === 1 || fn === sn) {
      fr = await node(c, fr); sr = await node(c, sr);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      sr = await node(sr, c);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0 || !equal(fr, firstRoot) || !equal(sr, secondRoot)) {
    throw new Failed('The log is not an extension of the checkpoint this browser verified before: it was rewritten.');
  }
}

// The checkpoint against the last one this browser verified with this key: the same, or a
// newer one proved consistent with it; then it is remembered in its place.
async function consistentWithRemembered(vkey, signed) {
  const slot = `${CHECKPOINT_STORE}${vkey.name}+${hex(vkey.keyId)}`;
  let seen = null;
  try { seen = JSON.parse(store.getItem(slot)); } catch { seen = null; }
  const root = b64encode(signed.root);
  let found;
  if (!seen || typeof seen.size !== 'number' || typeof seen.root !== 'string') {
    found = `none verified before in this browser: this one (${signed.size} entries) is remembered`;
  } else if (seen.size === signed.size) {
    if (seen.root !== root) throw new Failed(`A different root for ${signed.size} entries than the one verified before (${seen.root}): the log was rewritten.`);
    found = `the same as the one verified before (${seen.size} entries)`;
  } else if (seen.size > signed.size) {
    throw new Failed(`The log is smaller (${signed.size} entries) than a checkpoint verified before (${seen.size}).`);
  } else if (seen.size === 0) {
    found = `an extension of the empty log verified before`;
  } else {
    const proof = await fetchJson(`/console/verify/consistency?first=${seen.size}&second=${signed.size}`);
    if (proof.first !== seen.size || proof.second !== signed.size) throw new Failed('The consistency proof is for other sizes.');
    await verifyConsistency(seen.size, signed.size, b64decode(seen.root), signed.root, proof.hashes.map(b64decode));
    found = `consistent with the one verified before (${seen.size} entries), by a proof of ${proof.hashes.length} hashes`;
  }
  store.setItem(slot, JSON.stringify({ size: signed.size, root }));
  return found;
}

export async function leafHash(entry) {
  return sha256(concat(new Uint8Array([0]), encoder.encode(canonical(entry))));
}

// RFC 9162 2.1.3.2, step by step (app/audit/merkle.py verify_inclusion).
export async function rootFromPath(leaf, index, treeSize, path) {
  if (!(index >= 0 && index < treeSize)) throw new Failed('The leaf index is not in the tree.');
  let fn = index; let sn = treeSize - 1; let r = leaf;
  for (const p of path) {
    if (sn === 0) throw new Failed('The proof is longer than the path to the root.');
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(new Uint8Array([1]), p, r));
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await sha256(concat(new Uint8Array([1]), r, p));
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Failed('The proof is shorter than the path to the root.');
  return r;
}

async function fetchJson(url) {
  const response = await fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Failed(body.error || `The server answered ${response.status}.`);
  return body;
}

// Each check: [what was checked, passed?, what was found]; stops at the first that fails.
export async function verify(vkeyText, leafIndex) {
  const checks = [];
  const step = async (what, run) => {
    try { const found = await run(); checks.push([what, true, found]); return true; } catch (error) {
      checks.push([what, false, error instanceof Failed ? error.message : `Could not check: ${error.message}`]);
      return false;
    }
  };
  let vkey; let checkpoint; let proof; let leaf; let signed;
  if (!await step('The verifier key you gave', async () => { vkey = await parseVerifierKey(vkeyText); return `${vkey.name}, key ID ${hex(vkey.keyId)}`; })) return checks;
  if (!await step("The log's latest checkpoint was fetched", async () => { checkpoint = await fetchJson('/console/verify/checkpoint'); return `tree size ${checkpoint.tree_size}`; })) return checks;
  if (!await step("The checkpoint's Ed25519 signature, with your key", async () => { signed = await verifyCheckpoint(checkpoint.note, vkey); return `${signed.origin}: ${signed.size} entries, root ${b64encode(signed.root)}, signed ${signed.time}`; })) return checks;
  if (!await step('The checkpoint extends the one this browser verified before', () => consistentWithRemembered(vkey, signed))) return checks;
  if (!await step(`The inclusion proof of leaf ${leafIndex} was fetched`, async () => { proof = await fetchJson(`/console/verify/proof?leaf_index=${leafIndex}&tree_size=${signed.size}`); return `${proof.hashes.length} hashes on the path; entry ${proof.entry.id} (${proof.entry.action})`; })) return checks;
  if (!await step("The entry's leaf hash, computed here from the entry", async () => {
    leaf = await leafHash(proof.entry);
    if (!equal(leaf, b64decode(proof.leaf_hash))) throw new Failed('The entry does not hash to the leaf the server sent.');
    return b64encode(leaf);
  })) return checks;
  await step('The Merkle path leads from the leaf to the signed root', async () => {
    if (proof.tree_size !== signed.size || proof.leaf_index !== leafIndex) throw new Failed('The proof is for another tree or leaf.');
    const root = await rootFromPath(leaf, leafIndex, signed.size, proof.hashes.map(b64decode));
    if (!equal(root, signed.root)) throw new Failed('The inclusion proof does not lead to the signed root.');
    checks.entry = proof.entry;
    return `root ${b64encode(root)}`;
  });
  return checks;
}

function show(checks) {
  const result = document.getElementById('verify-result');
  const passed = checks.every(([, ok]) => ok) && checks.length === STEPS;
  result.innerHTML = '';
  const banner = document.createElement('div');
  banner.className = passed ? 'govuk-panel govuk-panel--confirmation' : 'govuk-error-summary';
  banner.id = 'verify-outcome';
  banner.dataset.outcome = passed ? 'verified' : 'failed';
  const title = document.createElement('h2');
  title.className = passed ? 'govuk-panel__title' : 'govuk-error-summary__title';
  title.textContent = passed ? 'Verified: the entry is in the signed log' : 'Failed: do not rely on this entry';
  banner.append(title);
  result.append(banner);
  const list = document.createElement('dl');
  list.className = 'govuk-summary-list';
  for (const [what, ok, found] of checks) {
    const row = document.createElement('div');
    row.className = 'govuk-summary-list__row';
    const key = document.createElement('dt');
    key.className = 'govuk-summary-list__key';
    key.textContent = what;
    const value = document.createElement('dd');
    value.className = `govuk-summary-list__value console-check console-check--${ok ? 'passed' : 'failed'}`;
    value.textContent = `${ok ? 'Passed' : 'Failed'}: ${found}`;
    row.append(key, value);
    list.append(row);
  }
  result.append(list);
  if (passed && checks.entry) {
    const heading = document.createElement('h2');
    heading.className = 'govuk-heading-m';
    heading.textContent = 'The entry verified, as hashed';
    const pre = document.createElement('pre');
    pre.className = 'console-mono';
    pre.id = 'verified-entry';
    pre.textContent = JSON.stringify(checks.entry, null, 2);
    result.append(heading, pre);
  }
  (passed ? banner : title).setAttribute('tabindex', '-1');
  (passed ? banner : title).focus();
}

const form = document.getElementById('verify-form');
if (form) {
  const input = document.getElementById('verifier_key');
  const saved = localStorage.getItem(KEY_STORE);
  if (saved && !input.value) { input.value = saved; document.getElementById('save_key').checked = true; }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const vkey = input.value.trim();
    if (document.getElementById('save_key').checked) localStorage.setItem(KEY_STORE, vkey);
    else localStorage.removeItem(KEY_STORE);
    const index = Number.parseInt(document.getElementById('leaf_index').value, 10);
    show(await verify(vkey, Number.isNaN(index) ? -1 : index));
  });
}
