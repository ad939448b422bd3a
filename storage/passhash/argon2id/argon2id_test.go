package argon2id

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/argon2"
)

// TestRFC9106Vector is the Argon2id test vector of RFC 9106 §5.3, the one
// that exercises a secret and associated data as well as four lanes.
func TestRFC9106Vector(t *testing.T) {
	var m Memory
	got := m.derive(bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16),
		bytes.Repeat([]byte{3}, 8), bytes.Repeat([]byte{4}, 12), 3, 32, 4, 32)
	want := "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
	if hex.EncodeToString(got) != want {
		t.Fatalf("tag %x, RFC 9106 says %s", got, want)
	}
}

// TestSameAsXCrypto compares tags with x/crypto's for parameters drawn at
// random, one Memory reused across them all, growing and shrinking: a reused
// memory must give the tag a fresh one gives.
func TestSameAsXCrypto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var m Memory
	for range 60 {
		password := make([]byte, rng.IntN(40))
		salt := make([]byte, 8+rng.IntN(24))
		for i := range password {
			password[i] = byte(rng.Uint32())
		}
		for i := range salt {
			salt[i] = byte(rng.Uint32())
		}
		time := 1 + rng.Uint32N(3)
		lanes := uint8(1 + rng.IntN(4))
		memory := uint32(8*int(lanes) + rng.IntN(600))
		keyLen := uint32(4 + rng.IntN(130))
		got := m.Key(password, salt, time, memory, lanes, keyLen)
		want := argon2.IDKey(password, salt, time, memory, lanes, keyLen)
		if !bytes.Equal(got, want) {
			t.Fatalf("t=%d m=%d p=%d len=%d: tag %x, x/crypto %x", time, memory, lanes, keyLen, got, want)
		}
	}
}

// TestDefaultParamsSameAsXCrypto is the configuration a provider runs with.
func TestDefaultParamsSameAsXCrypto(t *testing.T) {
	var m Memory
	for _, pw := range []string{"motdepasse1", "autre2", ""} {
		got := m.Key([]byte(pw), []byte("sel de seize oct"), 2, 19456, 1, 32)
		want := argon2.IDKey([]byte(pw), []byte("sel de seize oct"), 2, 19456, 1, 32)
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: tag %x, x/crypto %x", pw, got, want)
		}
	}
	if m.Bytes() != 19456*1024 {
		t.Fatalf("memory holds %d bytes, want %d", m.Bytes(), 19456*1024)
	}
}

// TestCompressGenericMatchesPlatform checks the compression this platform
// uses against the plain Go one, on random blocks, both modes, and with the
// output aliasing an input as the address blocks do.
func TestCompressGenericMatchesPlatform(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var x, y, out1, out2 block
	for range 200 {
		for i := range x {
			x[i], y[i], out1[i] = rng.Uint64(), rng.Uint64(), rng.Uint64()
		}
		out2 = out1
		xor := rng.IntN(2) == 0
		compress(&out1, &x, &y, xor)
		compressGeneric(&out2, &x, &y, xor)
		if out1 != out2 {
			t.Fatalf("xor=%v: compress and compressGeneric differ", xor)
		}
	}
	a, b := y, y
	compress(&a, &x, &a, false)
	compressGeneric(&b, &x, &b, false)
	if a != b {
		t.Fatal("with out = y, compress and compressGeneric differ")
	}
}

func TestPanicsOnZeroTimeOrThreads(t *testing.T) {
	for _, c := range []struct {
		time    uint32
		threads uint8
	}{{0, 1}, {1, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("time=%d threads=%d: no panic", c.time, c.threads)
				}
			}()
			var m Memory
			m.Key([]byte("p"), []byte("saltsalt"), c.time, 64, c.threads, 32)
		}()
	}
}

func BenchmarkKey(b *testing.B) {
	var m Memory
	for b.Loop() {
		m.Key([]byte("motdepasse1"), []byte("sel de seize oct"), 2, 19456, 1, 32)
	}
}

func BenchmarkXCryptoIDKey(b *testing.B) {
	for b.Loop() {
		argon2.IDKey([]byte("motdepasse1"), []byte("sel de seize oct"), 2, 19456, 1, 32)
	}
}

func BenchmarkKeyParallel(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		var m Memory
		for pb.Next() {
			m.Key([]byte("motdepasse1"), []byte("sel de seize oct"), 2, 19456, 1, 32)
		}
	})
}
