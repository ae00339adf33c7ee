"""The exchange log: entries appended by every use case (`entries`), the Merkle tree in storage
and its sequencer (`tree`), signed checkpoints and their key (`checkpoint`, `signer`), proofs,
export, and the verifier that trusts nothing but the key. `merkle` and `checkpoint` are pure.
"""
