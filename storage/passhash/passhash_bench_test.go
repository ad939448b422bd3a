package passhash

import (
	"context"
	"testing"
)

// BenchmarkVerify is one login's password check with the default (OWASP)
// parameters: the floor of the login scenario of `idp bench`.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(DefaultParams(), 0)
	phc, err := h.Hash(ctx, "motdepasse1")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, "motdepasse1", phc); err != nil || !ok {
			b.Fatalf("verify: %v %v", ok, err)
		}
	}
}

// BenchmarkVerifyParallel checks many logins at once through the bounded
// hasher: the throughput stays at the bound of its concurrency, whatever
// the number of callers.
func BenchmarkVerifyParallel(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(DefaultParams(), 0)
	phc, err := h.Hash(ctx, "motdepasse1")
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _, err := h.Verify(ctx, "motdepasse1", phc); err != nil || !ok {
				b.Errorf("verify: %v %v", ok, err)
				return
			}
		}
	})
}
