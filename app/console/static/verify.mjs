// Verify in your browser: the log's checkpoint and an entry's inclusion proof, checked here with
// WebCrypto (Ed25519 and SHA-256), exactly as app/audit/checkpoint.py and app/audit/merkle.py
// check them, so that an auditor need not trust the server that sent them.
//
// The checkpoint is a c2sp.org signed note: origin, size, root (base64), "time ...", a blank
// line, then "— <key name> <base64(4-byte key ID || signature)>" lines. The key ID is the
// first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key); the verifier key is
// "<name>+<hex key ID>+<base64(0x01 || public key)>". Leaves are SHA-256(0x00 || RFC 8785
// JSON of the entry); nodes SHA-256(0x01 || left || right) (RFC 9162 2.1.1).

const KEY_STORE = 'nps-exchange.verifier-key';
const encoder = new TextEncoder();

const b64decode = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
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

export async function verifyCheckpoint(note, vkey) {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new Failed('The checkpoint is not a signed note.');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  const ours = [];
  for (const line of lines) {
    if (!line.startsWith('\u2014 ')) throw new Failed('A signature line is malformed.');
    const [name, encoded] = line.slice(2).split(' ');
    const signature = b64decode(encoded);
    if (name === vkey.name && equal(signature.slice(0, 4), vkey.keyId)) ours.push(signature.slice(4));
  }
  if (!ours.length) throw new Failed(`The checkpoint is not signed by ${vkey.name} with this key.`);
  for (const signature of ours) {
    const ok = await crypto.subtle.verify({ name: 'Ed25519' }, vkey.key, signature, encoder.encode(text));
    if (!ok) throw new Failed("The checkpoint's signature does not verify with this key.");
  }
  const [origin, size, root, time] = text.slice(0, -1).split('\n');
  if (!/^(0|[1-9][0-9]*)$/.test(size) || !time?.startsWith('time ')) throw new Failed('The checkpoint is malformed.');
  return { origin, size: Number(size), root: b64decode(root), time: time.slice(5) };
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
    return `root ${b64encode(root)}`;
  });
  return checks;
}

function show(checks) {
  const result = document.getElementById('verify-result');
  const passed = checks.every(([, ok]) => ok) && checks.length === 6;
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
