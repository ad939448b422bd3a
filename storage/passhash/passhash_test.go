package passhash

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/caf-extranet/idp/storage/passhash/argon2id"
)

// cheap keeps tests fast: the behaviour under test does not depend on cost.
var cheap = Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

func TestHashFormatAndRoundTrip(t *testing.T) {
	h := NewHasher(DefaultParams(), 1)
	ctx := context.Background()
	phc, err := h.Hash(ctx, "Mot de passe é 1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected prefix: %s", phc)
	}
	p, salt, key, err := ParsePHC(phc)
	if err != nil {
		t.Fatal(err)
	}
	if p != DefaultParams() || len(salt) != 16 || len(key) != 32 {
		t.Fatalf("parsed %+v, salt %d bytes, key %d bytes", p, len(salt), len(key))
	}
	// The key must be exactly Argon2id with these parameters, in this order.
	if want := argon2.IDKey([]byte("Mot de passe é 1"), salt, 2, 19456, 1, 32); string(want) != string(key) {
		t.Fatal("stored key is not argon2id(password, salt, t=2, m=19456, p=1)")
	}
	ok, rehash, err := h.Verify(ctx, "Mot de passe é 1", phc)
	if err != nil || !ok || rehash {
		t.Fatalf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestHashUsesFreshSalt(t *testing.T) {
	h := NewHasher(cheap, 1)
	a, _ := h.Hash(context.Background(), "same")
	b, _ := h.Hash(context.Background(), "same")
	if a == b {
		t.Fatal("two hashes of the same password are identical: salt is not random")
	}
}

// The reference implementation's published vector (argon2 test.c): proves we
// interoperate with hashes made elsewhere.
func TestVerifyReferenceVector(t *testing.T) {
	const phc = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	h := NewHasher(DefaultParams(), 1)
	ok, rehash, err := h.Verify(context.Background(), "password", phc)
	if err != nil || !ok {
		t.Fatalf("Verify(reference vector) = %v, %v", ok, err)
	}
	if !rehash {
		t.Fatal("m=65536 differs from the hasher's m=19456: needsRehash should be true")
	}
}

func TestVerifyWrongPassword(t *testing.T) {
	h := NewHasher(cheap, 1)
	phc, err := h.Hash(context.Background(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	for _, wrong := range []string{"correct hors", "Correct horse", "correct horse ", ""} {
		ok, rehash, err := h.Verify(context.Background(), wrong, phc)
		if err != nil || ok || rehash {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, nil", wrong, ok, rehash, err)
		}
	}
}

func TestNeedsRehashOnParamChange(t *testing.T) {
	old := NewHasher(cheap, 1)
	phc, err := old.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string]func(*Params){
		"memory":      func(p *Params) { p.MemoryKiB = 128 },
		"iterations":  func(p *Params) { p.Iterations = 2 },
		"parallelism": func(p *Params) { p.Parallelism = 2 },
		"salt length": func(p *Params) { p.SaltLen = 32 },
		"key length":  func(p *Params) { p.KeyLen = 64 },
	}
	for name, change := range changes {
		p := cheap
		change(&p)
		ok, rehash, err := NewHasher(p, 1).Verify(context.Background(), "pw", phc)
		if err != nil || !ok || !rehash {
			t.Errorf("%s changed: Verify = %v, %v, %v; want true, true, nil", name, ok, rehash, err)
		}
	}
	ok, rehash, err := NewHasher(cheap, 1).Verify(context.Background(), "pw", phc)
	if err != nil || !ok || rehash {
		t.Errorf("same params: Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestNewHasherZeroFieldsTakeDefaults(t *testing.T) {
	if got := NewHasher(Params{}, 0).Params(); got != DefaultParams() {
		t.Fatalf("zero Params became %+v, want %+v", got, DefaultParams())
	}
	if got := cap(NewHasher(Params{}, 0).slots); got < 1 {
		t.Fatalf("maxConcurrent 0 gave a semaphore of %d", got)
	}
}

func TestMalformed(t *testing.T) {
	const salt = "c29tZXNhbHQ"                                // 8 bytes
	const key = "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc" // 32 bytes
	valid := "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + key
	if _, _, _, err := ParsePHC(valid); err != nil {
		t.Fatalf("control case rejected: %v", err)
	}
	cases := map[string]string{
		"empty":               "",
		"garbage":             "not a hash",
		"bcrypt":              "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":             "$argon2i$v=19$m=65536,t=2,p=1$" + salt + "$" + key,
		"argon2d":             "$argon2d$v=19$m=65536,t=2,p=1$" + salt + "$" + key,
		"no leading dollar":   "argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + key,
		"missing version":     "$argon2id$m=65536,t=2,p=1$" + salt + "$" + key,
		"old version":         "$argon2id$v=16$m=65536,t=2,p=1$" + salt + "$" + key,
		"extra field":         valid + "$x",
		"missing hash":        "$argon2id$v=19$m=65536,t=2,p=1$" + salt,
		"params out of order": "$argon2id$v=19$t=2,m=65536,p=1$" + salt + "$" + key,
		"missing param":       "$argon2id$v=19$m=65536,t=2$" + salt + "$" + key,
		"extra param":         "$argon2id$v=19$m=65536,t=2,p=1,k=2$" + salt + "$" + key,
		"negative":            "$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key,
		"leading zero":        "$argon2id$v=19$m=065536,t=2,p=1$" + salt + "$" + key,
		"plus sign":           "$argon2id$v=19$m=+65536,t=2,p=1$" + salt + "$" + key,
		"empty number":        "$argon2id$v=19$m=,t=2,p=1$" + salt + "$" + key,
		"overflow":            "$argon2id$v=19$m=99999999999999999999,t=2,p=1$" + salt + "$" + key,
		"memory > 4 GiB":      "$argon2id$v=19$m=4194305,t=2,p=1$" + salt + "$" + key,
		"memory < 8/lane":     "$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key,
		"t = 0":               "$argon2id$v=19$m=65536,t=0,p=1$" + salt + "$" + key,
		"t > 100":             "$argon2id$v=19$m=65536,t=101,p=1$" + salt + "$" + key,
		"p = 0":               "$argon2id$v=19$m=65536,t=2,p=0$" + salt + "$" + key,
		"p > 255":             "$argon2id$v=19$m=65536,t=2,p=256$" + salt + "$" + key,
		"salt too short":      "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbA$" + key,
		"key too short":       "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$c29tZXNhbA",
		"salt too long":       "$argon2id$v=19$m=65536,t=2,p=1$" + b64.EncodeToString(make([]byte, 1025)) + "$" + key,
		"padded base64":       "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ=$" + key,
		"url base64 alphabet": "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + strings.Replace(key, "J", "-", 1),
		"non-canonical b64":   "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHR$" + key,
		"huge input":          valid + strings.Repeat("A", 10000),
	}
	h := NewHasher(cheap, 1)
	for name, phc := range cases {
		if _, _, _, err := ParsePHC(phc); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParsePHC error = %v, want ErrMalformed", name, err)
		}
		ok, rehash, err := h.Verify(context.Background(), "password", phc)
		if !errors.Is(err, ErrMalformed) || ok || rehash {
			t.Errorf("%s: Verify = %v, %v, %v; want false, false, ErrMalformed", name, ok, rehash, err)
		}
	}
	// The boundaries themselves are accepted.
	for _, phc := range []string{
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4194304,t=100,p=255$" + salt + "$" + key,
		"$argon2id$v=19$m=65536,t=2,p=1$" + b64.EncodeToString(make([]byte, 1024)) + "$" + b64.EncodeToString(make([]byte, 1024)),
	} {
		if _, _, _, err := ParsePHC(phc); err != nil {
			t.Errorf("boundary %.60s… rejected: %v", phc, err)
		}
	}
}

// observe replaces the derivation with a slow one that records the highest
// number of derivations running at once.
func observe(h *Hasher) (maxSeen *atomic.Int32) {
	var running atomic.Int32
	maxSeen = new(atomic.Int32)
	h.derive = func(m *argon2id.Memory, password, salt []byte, time_, memory uint32, threads uint8, keyLen uint32) []byte {
		n := running.Add(1)
		for {
			m := maxSeen.Load()
			if n <= m || maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		return make([]byte, keyLen)
	}
	return maxSeen
}

func TestConcurrencyBound(t *testing.T) {
	for _, limit := range []int{1, 2} {
		h := NewHasher(cheap, limit)
		maxSeen := observe(h)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					_, _ = h.Hash(context.Background(), "pw")
				} else {
					_ = h.DummyVerify(context.Background(), "pw")
				}
			}()
		}
		wg.Wait()
		if got := maxSeen.Load(); got != int32(limit) {
			t.Errorf("maxConcurrent=%d: at most %d derivations ran at once, want exactly %d", limit, got, limit)
		}
	}
}

func TestWaitHonoursContext(t *testing.T) {
	h := NewHasher(cheap, 1)
	phc, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	var derived atomic.Int32
	h.derive = func(m *argon2id.Memory, password, salt []byte, time_, memory uint32, threads uint8, keyLen uint32) []byte {
		derived.Add(1)
		return m.Key(password, salt, time_, memory, threads, keyLen)
	}
	taken := <-h.slots // the only slot is taken, as by a long-running hash

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hash while full: err = %v, want DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited < 25*time.Millisecond {
		t.Fatalf("Hash gave up after %v, before its deadline", waited)
	}

	cancelled, cancelNow := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancelNow() }()
	if ok, _, err := h.Verify(cancelled, "pw", phc); !errors.Is(err, context.Canceled) || ok {
		t.Fatalf("Verify while full: %v, %v; want false, Canceled", ok, err)
	}
	if err := h.DummyVerify(cancelled, "pw"); !errors.Is(err, context.Canceled) { // must return, not block
		t.Fatalf("DummyVerify while full: %v; want Canceled, as Verify", err)
	}
	if n := derived.Load(); n != 0 {
		t.Fatalf("%d derivations ran while the slot was taken", n)
	}

	h.slots <- taken // the slot frees up: work proceeds
	if ok, _, err := h.Verify(context.Background(), "pw", phc); err != nil || !ok {
		t.Fatalf("Verify after release = %v, %v", ok, err)
	}
}

func TestEndedContextStartsNoWork(t *testing.T) {
	h := NewHasher(cheap, 4)
	maxSeen := observe(h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Hash(cancelled ctx) err = %v", err)
		}
	}
	if maxSeen.Load() != 0 {
		t.Fatal("a derivation ran for an already cancelled context")
	}
}

// DummyVerify must cost what a real Verify costs, or a timing difference
// would reveal which addresses are registered: the same derivation (passes,
// memory, lanes, key length), hence the same work. Checked on the
// derivations themselves rather than by timing them, which a loaded machine
// makes unreliable.
func TestDummyVerifyCostsLikeVerify(t *testing.T) {
	h := NewHasher(DefaultParams(), 1)
	ctx := context.Background()
	phc, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	h.derive = func(m *argon2id.Memory, password, salt []byte, time_, memory uint32, threads uint8, keyLen uint32) []byte {
		calls = append(calls, fmt.Sprintf("t=%d m=%d p=%d salt=%d key=%d", time_, memory, threads, len(salt), keyLen))
		return m.Key(password, salt, time_, memory, threads, keyLen)
	}
	work := func(f func()) (uint64, []string) {
		calls = nil
		before := h.Work()
		f()
		return h.Work() - before, calls
	}
	realWork, realCalls := work(func() { _, _, _ = h.Verify(ctx, "wrong", phc) })
	dummyWork, dummyCalls := work(func() { _ = h.DummyVerify(ctx, "wrong") })
	if realWork == 0 || dummyWork != realWork || fmt.Sprint(dummyCalls) != fmt.Sprint(realCalls) {
		t.Fatalf("DummyVerify derived %v (%d KiB-passes), Verify %v (%d)", dummyCalls, dummyWork, realCalls, realWork)
	}
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(DefaultParams(), 1)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "un mot de passe1"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentDerivationsKeepTheirMemory: the slots' working memory is
// reused, never shared. Many derivations at once through two slots, with
// parameters that alternate in size (so that memories grow), each give the
// tag x/crypto gives; two derivations writing one memory would not.
func TestConcurrentDerivationsKeepTheirMemory(t *testing.T) {
	h := NewHasher(cheap, 2)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 15 {
				p := cheap
				p.MemoryKiB = uint32(64 + 64*((g+i)%3))
				salt := []byte(fmt.Sprintf("sel-%02d-%02d-xxxx", g, i))
				pw := fmt.Sprintf("mot de passe %d/%d", g, i)
				got, err := h.run(ctx, []byte(pw), salt, p)
				if err != nil {
					errs <- err
					return
				}
				if want := argon2.IDKey([]byte(pw), salt, p.Iterations, p.MemoryKiB, p.Parallelism, p.KeyLen); string(got) != string(want) {
					errs <- fmt.Errorf("goroutine %d, derivation %d (m=%d): tag differs from x/crypto's", g, i, p.MemoryKiB)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSlotsKeepTheConfiguredMemory: verifying a hash made with more memory
// than configured (an imported one, say, up to the 4 GiB ParsePHC accepts)
// must not leave a slot holding that much for the life of the process.
func TestSlotsKeepTheConfiguredMemory(t *testing.T) {
	ctx := context.Background()
	big := cheap
	big.MemoryKiB = 4 * cheap.MemoryKiB
	phc, err := NewHasher(big, 1).Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(cheap, 1)
	if ok, rehash, err := h.Verify(ctx, "pw", phc); err != nil || !ok || !rehash {
		t.Fatalf("Verify of the bigger hash = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	if _, err := h.Hash(ctx, "pw"); err != nil {
		t.Fatal(err)
	}
	m := <-h.slots
	defer func() { h.slots <- m }()
	if got, limit := m.Bytes(), int(cheap.MemoryKiB)*1024; got > limit {
		t.Fatalf("the slot holds %d bytes after a bigger verification, want at most the configured %d", got, limit)
	}
	if m.Bytes() == 0 {
		t.Fatal("the slot holds no memory after a hash with the configured parameters: it is not reused")
	}
}

// TestCheaperHashIsPaddedToTheConfiguredCost: verifying a hash made with
// cheaper parameters than the Hasher's runs a throwaway derivation that
// makes up the difference (h's passes over the missing memory), and leaves
// the verdict alone; a hash as costly or costlier is not padded.
func TestCheaperHashIsPaddedToTheConfiguredCost(t *testing.T) {
	ctx := context.Background()
	configured := Params{MemoryKiB: 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	legacy := Params{MemoryKiB: 256, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	costlier := Params{MemoryKiB: 2048, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	h := NewHasher(configured, 1)
	type call struct{ time, memory uint32 }
	var calls []call
	h.derive = func(m *argon2id.Memory, password, salt []byte, time_, memory uint32, threads uint8, keyLen uint32) []byte {
		calls = append(calls, call{time_, memory})
		return m.Key(password, salt, time_, memory, threads, keyLen)
	}
	for _, c := range []struct {
		name  string
		p     Params
		calls []call
	}{
		{"cheaper", legacy, []call{{1, 256}, {2, 896}}}, // 256 + 2 × 896 = 2 × 1024
		{"same", configured, []call{{2, 1024}}},
		{"costlier", costlier, []call{{2, 2048}}},
	} {
		phc, err := NewHasher(c.p, 1).Hash(ctx, "ancien12")
		if err != nil {
			t.Fatal(err)
		}
		for _, pw := range []string{"ancien12", "mauvais1"} {
			calls = nil
			before := h.Work()
			ok, _, err := h.Verify(ctx, pw, phc)
			if err != nil || ok != (pw == "ancien12") {
				t.Fatalf("%s, %s: Verify = %v, %v", c.name, pw, ok, err)
			}
			if fmt.Sprint(calls) != fmt.Sprint(c.calls) {
				t.Errorf("%s, %s: derivations %v, want %v", c.name, pw, calls, c.calls)
			}
			if got, want := h.Work()-before, max(cost(c.p), cost(configured)); got != want {
				t.Errorf("%s, %s: work %d, want %d", c.name, pw, got, want)
			}
		}
	}
}

// TestCheaperHashWithMoreMemoryIsPadded: a stored hash with more memory but
// fewer passes than the configured parameters (47 MiB × 1 before a move to
// 19 MiB × 3, say) is cheaper all the same, and padded like any cheaper one
// (to within a KiB per pass).
func TestCheaperHashWithMoreMemoryIsPadded(t *testing.T) {
	ctx := context.Background()
	configured := Params{MemoryKiB: 1024, Iterations: 3, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	legacy := Params{MemoryKiB: 2048, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32} // 2048 < 3072
	h := NewHasher(configured, 1)
	phc, err := NewHasher(legacy, 1).Hash(ctx, "ancien12")
	if err != nil {
		t.Fatal(err)
	}
	before := h.Work()
	_ = h.DummyVerify(ctx, "mauvais1")
	dummy := h.Work() - before
	before = h.Work()
	if ok, _, err := h.Verify(ctx, "mauvais1", phc); err != nil || ok {
		t.Fatal(ok, err)
	}
	if got := h.Work() - before; got < dummy || got >= dummy+uint64(configured.Iterations) {
		t.Errorf("refusal against a cheaper hash with more memory: %d KiB-passes, an unknown address's %d", got, dummy)
	}
}

// TestPaddingTakesTheTimeOfTheConfiguredLanes: lanes run in parallel, so
// what an observer times is the longest lane's work. A one-lane legacy
// hash checked by a Hasher configured with four lanes is padded until its
// longest lanes add up to a dummy's.
func TestPaddingTakesTheTimeOfTheConfiguredLanes(t *testing.T) {
	ctx := context.Background()
	configured := Params{MemoryKiB: 1024, Iterations: 2, Parallelism: 4, SaltLen: 16, KeyLen: 32}
	legacy := Params{MemoryKiB: 256, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	h := NewHasher(configured, 1)
	var path uint64 // KiB-passes on the longest lane
	h.derive = func(m *argon2id.Memory, password, salt []byte, time_, memory uint32, threads uint8, keyLen uint32) []byte {
		path += uint64(memory) * uint64(time_) / uint64(threads)
		return m.Key(password, salt, time_, memory, threads, keyLen)
	}
	phc, err := NewHasher(legacy, 1).Hash(ctx, "ancien12")
	if err != nil {
		t.Fatal(err)
	}
	path = 0
	_ = h.DummyVerify(ctx, "mauvais1")
	dummy := path
	path = 0
	_, _, _ = h.Verify(ctx, "mauvais1", phc)
	if path != dummy {
		t.Errorf("longest lane of a refusal: %d KiB-passes for the padded legacy hash, %d for an unknown address", path, dummy)
	}
}
