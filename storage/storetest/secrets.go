package storetest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/caf-extranet/idp/storage"
)

func secretBehaviours() []behaviour {
	return []behaviour{
		{"FirstCandidateWins", testSecretFirstCandidateWins},
		{"ConcurrentCallersGetOneValue", testSecretConcurrentCallers},
		{"GetSecretStoresNothing", testGetSecret},
	}
}

// testGetSecret: GetSecret reads the stored secret, and without one answers
// ErrNotFound and stores nothing: the next GetOrCreateSecret stores its
// candidate.
func testGetSecret(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.GetSecret(ctx, "cookie-key")
	wantErr(t, err, storage.ErrNotFound, "GetSecret on an empty store")
	stored := []byte("\x00 stored \xff")
	got, err := s.GetOrCreateSecret(ctx, "cookie-key", stored)
	mustOK(t, err, "GetOrCreateSecret after GetSecret")
	if !bytes.Equal(got, stored) {
		t.Errorf("GetOrCreateSecret after GetSecret = %q, want its candidate %q (GetSecret stored something)", got, stored)
	}
	got, err = s.GetSecret(ctx, "cookie-key")
	mustOK(t, err, "GetSecret of a stored secret")
	if !bytes.Equal(got, stored) {
		t.Errorf("GetSecret = %q, want %q", got, stored)
	}
	_, err = s.GetSecret(ctx, "key-encryption")
	wantErr(t, err, storage.ErrNotFound, "GetSecret under another name")
}

func testSecretFirstCandidateWins(t *testing.T, s storage.Store) {
	ctx := t.Context()
	first := []byte("\x00\x01 first \xfe\xff")
	got, err := s.GetOrCreateSecret(ctx, "cookie-key", first)
	mustOK(t, err, "GetOrCreateSecret on an empty store")
	if !bytes.Equal(got, first) {
		t.Errorf("first GetOrCreateSecret = %q, want the candidate %q", got, first)
	}
	got, err = s.GetOrCreateSecret(ctx, "cookie-key", []byte("second"))
	mustOK(t, err, "GetOrCreateSecret again")
	if !bytes.Equal(got, first) {
		t.Errorf("second GetOrCreateSecret = %q, want the stored %q", got, first)
	}
	got, err = s.GetOrCreateSecret(ctx, "key-encryption", []byte("other"))
	mustOK(t, err, "GetOrCreateSecret under another name")
	if !bytes.Equal(got, []byte("other")) {
		t.Errorf("GetOrCreateSecret under another name = %q, want %q", got, "other")
	}
}

func testSecretConcurrentCallers(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const n = 20
	values := make([][]byte, n)
	errs := race(n, func(i int) error {
		v, err := s.GetOrCreateSecret(ctx, "cookie-key", fmt.Appendf(nil, "candidate-%02d", i))
		values[i] = v
		return err
	})
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("GetOrCreateSecret in goroutine %d", i))
	}
	if !bytes.HasPrefix(values[0], []byte("candidate-")) {
		t.Fatalf("stored secret %q is none of the candidates", values[0])
	}
	for i, v := range values {
		if !bytes.Equal(v, values[0]) {
			t.Errorf("goroutine %d got %q, goroutine 0 got %q: callers disagree", i, v, values[0])
		}
	}
	got, err := s.GetOrCreateSecret(ctx, "cookie-key", []byte("late"))
	mustOK(t, err, "GetOrCreateSecret after the race")
	if !bytes.Equal(got, values[0]) {
		t.Errorf("after the race the secret is %q, want %q", got, values[0])
	}
}
