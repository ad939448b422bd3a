package passhash

import (
	"errors"
	"testing"
)

// FuzzParsePHC: ParsePHC never panics, rejects with ErrMalformed only, and
// whatever it accepts is within bounds and re-encodes to the same string (a
// stored hash has exactly one spelling).
func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := ParsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if p.MemoryKiB > maxMemoryKiB || p.MemoryKiB < 8*uint32(p.Parallelism) ||
			p.Iterations < 1 || p.Iterations > maxIterations || p.Parallelism < 1 {
			t.Fatalf("accepted out-of-bounds params %+v", p)
		}
		if len(salt) < minByteLen || len(salt) > maxByteLen || len(key) < minByteLen || len(key) > maxByteLen {
			t.Fatalf("accepted salt of %d bytes, key of %d", len(salt), len(key))
		}
		if int(p.SaltLen) != len(salt) || int(p.KeyLen) != len(key) {
			t.Fatalf("params %+v disagree with salt %d, key %d", p, len(salt), len(key))
		}
		if again := encodePHC(p, salt, key); again != s {
			t.Fatalf("accepted %q but it re-encodes as %q", s, again)
		}
	})
}
