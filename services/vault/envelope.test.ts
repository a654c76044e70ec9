import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { DecryptError } from "./aes-gcm.ts";
import { open, rewrap, type SealedSecret, seal } from "./envelope.ts";
import { createLocalKeyring } from "./keyring.ts";

const kek1 = { version: 1, key: randomBytes(32) };
const kek2 = { version: 2, key: randomBytes(32) };
const slot = { tenant: "acme", credentialId: "stripe", version: 1 };
const plaintext = new TextEncoder().encode("sk_live_very_secret_material");

function flip(bytes: Uint8Array, index = 0): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[index] = (copy[index] ?? 0) ^ 1;
  return copy;
}

describe("envelope", () => {
  const keys = createLocalKeyring(kek1);

  test("seal then open returns the plaintext", async () => {
    const sealed = await seal(keys, slot, plaintext);
    assert.deepEqual(new Uint8Array(await open(keys, slot, sealed)), plaintext);
    assert.equal(sealed.kekVersion, 1);
    assert.equal(sealed.nonce.length, 12);
    assert.equal(sealed.ciphertext.length, plaintext.length + 16);
  });

  test("no stored field contains the plaintext", async () => {
    const sealed = await seal(keys, slot, plaintext);
    const needle = Buffer.from(plaintext);
    for (const field of [sealed.nonce, sealed.ciphertext, sealed.wrappedKey, sealed.wrappedNonce]) {
      assert.equal(Buffer.from(field).indexOf(needle), -1);
    }
  });

  test("every seal uses a fresh data key and nonce", async () => {
    const a = await seal(keys, slot, plaintext);
    const b = await seal(keys, slot, plaintext);
    assert.notDeepEqual(a.ciphertext, b.ciphertext);
    assert.notDeepEqual(a.wrappedKey, b.wrappedKey);
    assert.notDeepEqual(a.nonce, b.nonce);
  });

  test("tampering with any stored field fails to open", async () => {
    const sealed = await seal(keys, slot, plaintext);
    const tampered: SealedSecret[] = [
      { ...sealed, ciphertext: flip(sealed.ciphertext) },
      { ...sealed, ciphertext: flip(sealed.ciphertext, sealed.ciphertext.length - 1) }, // the tag
      { ...sealed, nonce: flip(sealed.nonce) },
      { ...sealed, wrappedKey: flip(sealed.wrappedKey) },
      { ...sealed, wrappedNonce: flip(sealed.wrappedNonce) },
      { ...sealed, ciphertext: sealed.ciphertext.subarray(0, 10) },
    ];
    for (const bad of tampered) {
      await assert.rejects(open(keys, slot, bad), DecryptError);
    }
  });

  test("a version's ciphertext moved to another credential, version or tenant fails", async () => {
    const sealed = await seal(keys, slot, plaintext);
    for (const other of [
      { ...slot, credentialId: "openai" },
      { ...slot, version: 2 },
      { ...slot, tenant: "globex" },
    ]) {
      await assert.rejects(open(keys, other, sealed), DecryptError);
    }
  });

  test("a relabelled KEK version fails even when that KEK holds the same key", async () => {
    // Same key bytes under two version numbers: only the associated data tells them apart.
    const twoLabels = createLocalKeyring(kek1, [{ version: 7, key: kek1.key }]);
    const sealed = await seal(twoLabels, slot, plaintext);
    await assert.rejects(open(twoLabels, slot, { ...sealed, kekVersion: 7 }), DecryptError);
  });

  test("ciphertext from one row with the wrapped key of another fails", async () => {
    const a = await seal(keys, slot, plaintext);
    const b = await seal(keys, slot, plaintext);
    await assert.rejects(
      open(keys, slot, { ...a, wrappedKey: b.wrappedKey, wrappedNonce: b.wrappedNonce }),
    );
  });

  test("a wrong KEK fails", async () => {
    const sealed = await seal(keys, slot, plaintext);
    const impostor = createLocalKeyring({ version: 1, key: randomBytes(32) });
    await assert.rejects(open(impostor, slot, sealed), DecryptError);
  });

  test("an unknown KEK version is a failed precondition naming the version", async () => {
    const sealed = await seal(createLocalKeyring(kek2), slot, plaintext);
    await assert.rejects(open(keys, slot, sealed), (err: Error & { kind?: string }) => {
      assert.equal(err.kind, "failed_precondition");
      assert.match(err.message, /version 2 is not configured/);
      return true;
    });
  });

  test("after a KEK rotation, rows wrapped by the old KEK still open", async () => {
    const sealedUnder1 = await seal(keys, slot, plaintext);
    const rotated = createLocalKeyring(kek2, [kek1]);
    assert.deepEqual(new Uint8Array(await open(rotated, slot, sealedUnder1)), plaintext);
    const sealedUnder2 = await seal(rotated, slot, plaintext);
    assert.equal(sealedUnder2.kekVersion, 2);
    assert.deepEqual(new Uint8Array(await open(rotated, slot, sealedUnder2)), plaintext);
  });

  test("rewrap moves a row to the current KEK without touching the ciphertext", async () => {
    const sealed = await seal(keys, slot, plaintext);
    const rotated = createLocalKeyring(kek2, [kek1]);
    const moved = await rewrap(rotated, slot, sealed);
    assert.equal(moved.kekVersion, 2);
    assert.deepEqual(moved.ciphertext, sealed.ciphertext);
    assert.deepEqual(moved.nonce, sealed.nonce);
    // Readable with the new KEK alone: the old one can be retired.
    assert.deepEqual(new Uint8Array(await open(createLocalKeyring(kek2), slot, moved)), plaintext);
  });
});

describe("createLocalKeyring", () => {
  test("refuses keys that are not 32 bytes, bad versions and duplicates", () => {
    assert.throws(() => createLocalKeyring({ version: 1, key: randomBytes(16) }), /32 bytes/);
    assert.throws(() => createLocalKeyring({ version: 0, key: randomBytes(32) }), /positive/);
    assert.throws(() => createLocalKeyring(kek1, [{ version: 1, key: randomBytes(32) }]), /twice/);
  });

  test("keeps its own copy of the key", async () => {
    const key = randomBytes(32);
    const keys = createLocalKeyring({ version: 1, key });
    const sealed = await seal(keys, slot, plaintext);
    key.fill(0);
    assert.deepEqual(new Uint8Array(await open(keys, slot, sealed)), plaintext);
  });
});
