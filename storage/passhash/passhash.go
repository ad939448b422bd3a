// Package passhash hashes and verifies secrets (agents' passwords, client
// secrets) with Argon2id, stored as PHC strings:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// (salt and hash in unpadded standard base64). Each hash costs MemoryKiB of
// memory, so a Hasher bounds how many run at once: a burst of logins must not
// exhaust the instance's memory.
package passhash

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/caf-extranet/idp/storage/passhash/argon2id"
)

// ErrMalformed is returned for a stored hash that is not an Argon2id PHC
// string this package can verify, or whose parameters are out of bounds.
var ErrMalformed = errors.New("passhash: malformed hash")

// Params are Argon2id's cost parameters and the salt and key sizes in bytes.
type Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
	SaltLen     uint32
	KeyLen      uint32
}

// DefaultParams is OWASP's baseline for Argon2id (19 MiB, 2 passes, 1 lane)
// with a 16-byte salt and a 32-byte key.
func DefaultParams() Params {
	return Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
}

// Hasher hashes and verifies with one set of parameters, running at most a
// fixed number of derivations at once.
type Hasher struct {
	params Params
	// slots holds the working memory of the derivations not in progress:
	// a derivation takes one and gives it back, so that at most cap(slots)
	// run at once and none allocates its memory anew (see package argon2id).
	slots chan *argon2id.Memory
	// derive is (*argon2id.Memory).Key; tests replace it to observe
	// concurrency.
	derive func(m *argon2id.Memory, password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
	// derivations counts the derivations started (Derivations); work sums
	// their cost (Work).
	derivations, work atomic.Uint64
}

// Derivations is the number of derivations this Hasher has started: what a
// caller's answers must not let an observer tell apart (an unknown address
// must cost what a known one costs) is checked against it.
func (h *Hasher) Derivations() uint64 { return h.derivations.Load() }

// Work is the cost of the derivations this Hasher has run, in KiB-passes
// (memory × iterations, padding included): Argon2id's time and memory
// traffic grow with it, so two answers of equal Work take the same time.
func (h *Hasher) Work() uint64 { return h.work.Load() }

// minMemoryKiB is the least memory Argon2id takes with one lane: a padding
// below it is a few microseconds' work, not worth a derivation.
const minMemoryKiB = 8

// cost is p's work in KiB-passes.
func cost(p Params) uint64 { return uint64(p.MemoryKiB) * uint64(p.Iterations) }

// NewHasher returns a Hasher for p. Zero fields of p take DefaultParams'
// values. maxConcurrent bounds how many hashes run at once (each costs
// p.MemoryKiB); 0 or less means runtime.NumCPU().
//
// p is not validated against the bounds of ParsePHC: an operator may choose
// any cost, the configuration package is where limits are enforced.
func NewHasher(p Params, maxConcurrent int) *Hasher {
	d := DefaultParams()
	if p.MemoryKiB == 0 {
		p.MemoryKiB = d.MemoryKiB
	}
	if p.Iterations == 0 {
		p.Iterations = d.Iterations
	}
	if p.Parallelism == 0 {
		p.Parallelism = d.Parallelism
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.NumCPU()
	}
	slots := make(chan *argon2id.Memory, maxConcurrent)
	for range maxConcurrent {
		// Empty until its first derivation: an instance that never hashes
		// holds none of this memory.
		slots <- new(argon2id.Memory)
	}
	return &Hasher{params: p, slots: slots, derive: (*argon2id.Memory).Key}
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of password with a fresh random salt. It waits
// for a free slot, giving up with ctx's error when ctx ends first.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("passhash: reading salt: %w", err)
	}
	key, err := h.run(ctx, []byte(password), salt, h.params)
	if err != nil {
		return "", err
	}
	return encodePHC(h.params, salt, key), nil
}

// Verify reports whether password matches the PHC string phc, comparing in
// constant time. needsRehash is true when password matches but phc was made
// with parameters other than h's, so the caller should store a fresh Hash.
// A phc that cannot be parsed gets ErrMalformed; a ctx that ends while
// waiting for a slot gets ctx's error.
func (h *Hasher) Verify(ctx context.Context, password, phc string) (ok bool, needsRehash bool, err error) {
	p, salt, want, err := ParsePHC(phc)
	if err != nil {
		return false, false, err
	}
	got, err := h.run(ctx, []byte(password), salt, p)
	if err != nil {
		return false, false, err
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != h.params, nil
}

// DummyVerify costs what a Verify against a hash made with h's parameters
// costs, and yields nothing. Call it when the account is unknown, so that the
// response time does not tell whether an address is registered. Like Verify,
// it returns ctx's error when ctx ends before a slot is free: the caller
// must then answer as it answers Verify's, or the answer would tell.
func (h *Hasher) DummyVerify(ctx context.Context, password string) error {
	// A zero salt is fine: the result is thrown away; only the work counts.
	salt := make([]byte, h.params.SaltLen)
	got, err := h.run(ctx, []byte(password), salt, h.params)
	if err != nil {
		return err
	}
	// Mirror Verify's comparison so that the two paths do the same work.
	want := make([]byte, len(got))
	_ = subtle.ConstantTimeCompare(got, want)
	return nil
}

// run derives a key with p in the working memory of a free slot.
func (h *Hasher) run(ctx context.Context, password, salt []byte, p Params) ([]byte, error) {
	// Checked first because select picks at random between ready cases: an
	// already ended ctx must not start a costly derivation.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var m *argon2id.Memory
	select {
	case m = <-h.slots:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { h.slots <- m }()
	h.derivations.Add(1)
	h.work.Add(cost(p))
	var key []byte
	if p.MemoryKiB > h.params.MemoryKiB {
		// A stored hash made with more memory than this instance's (an
		// imported one, or older parameters) is verified in memory of its
		// own, left to the collector: the slot keeps the configured size,
		// and the login that follows rehashes with the configured
		// parameters.
		key = h.derive(new(argon2id.Memory), password, salt, p.Iterations, p.MemoryKiB, p.Parallelism, p.KeyLen)
	} else {
		key = h.derive(m, password, salt, p.Iterations, p.MemoryKiB, p.Parallelism, p.KeyLen)
	}
	h.pad(m, p) // more memory is not more work: fewer passes may cost less
	return key, nil
}

// pad brings a derivation with parameters cheaper than h's (an agent
// imported with a legacy hash, or hashed before the parameters were
// raised) up to what one with h's costs: an address without an account
// costs a dummy derivation with h's parameters, and the time taken must
// not tell the two apart until the agent's next login rehashes. What an
// observer times is the longest lane (lanes run in parallel), so the
// padding is a throwaway derivation with h's passes and lanes over the
// memory that makes the longest lanes equal (rounded up to a KiB per
// pass); it is never more than h's memory.
func (h *Hasher) pad(m *argon2id.Memory, p Params) {
	lanes, passes := uint64(h.params.Parallelism), uint64(h.params.Iterations)
	want, done := cost(h.params)/lanes, cost(p)/uint64(p.Parallelism)
	if done >= want {
		return
	}
	memory := uint32(((want-done)*lanes + passes - 1) / passes)
	if memory < minMemoryKiB*uint32(lanes) {
		return // within a few microseconds' work
	}
	h.work.Add(uint64(memory) * passes)
	var zero [16]byte
	h.derive(m, zero[:], zero[:], h.params.Iterations, memory, h.params.Parallelism, 32)
}
