package provider

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// jwksKids is the key ids of a key set answer.
func jwksKids(t *testing.T, body []byte) []string {
	t.Helper()
	var s struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("key set %q: %v", body, err)
	}
	var kids []string
	for _, k := range s.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// TestKeySetThroughAFaultIsNotOlderThanTheKeysHeld: two instances share the
// database. Another instance (a) rotates: the new key is published ahead.
// This instance (b) reads it (for a discovery request here), but no relying
// application asked b for the key set since. Then b's database link fails:
// b's key set is still the keys b holds, the new one included, not the
// document it served before the rotation, which would make a relying
// application that refreshes through b drop the key a signs with next.
func TestKeySetThroughAFaultIsNotOlderThanTheKeysHeld(t *testing.T) {
	shared := newFuzzStore()
	storeA := &faultyKeysStore{fuzzStore: shared}
	storeB := &faultyKeysStore{fuzzStore: shared}
	a, err := New(context.Background(), storeA, keyFaultConfig(), time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	b, advance := keyFaultProvider(t, storeB, slog.DiscardHandler, &mu)
	before := jwksKids(t, fetch(t, b.Handler(), http.MethodGet, fuzzIssuer+"/keys").Body.Bytes())

	if _, err := a.keys.Rotate(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	newKid := jwksKids(t, fetch(t, a.Handler(), http.MethodGet, fuzzIssuer+"/keys").Body.Bytes())
	newKid = slices.DeleteFunc(newKid, func(k string) bool { return slices.Contains(before, k) })
	if len(newKid) != 1 {
		t.Fatalf("rotation: before %v, new %v", before, newKid)
	}

	advance() // b's keys fall due, b reads them again for a discovery request
	if rec := fetch(t, b.Handler(), http.MethodGet, fuzzIssuer+"/.well-known/openid-configuration"); rec.Code != http.StatusOK {
		t.Fatalf("discovery: %d", rec.Code)
	}
	held, err := b.keys.publicKeys(context.Background())
	if err != nil || len(held) != 2 {
		t.Fatalf("b holds %d keys (%v), want 2", len(held), err)
	}

	storeB.fail(errors.New("connection refused")) // b's link to the database goes down
	advance()
	rec := fetch(t, b.Handler(), http.MethodGet, fuzzIssuer+"/keys")
	if rec.Code != http.StatusOK || !slices.Contains(jwksKids(t, rec.Body.Bytes()), newKid[0]) {
		t.Fatalf("b's key set through the fault: %d %v, want 200 with the key %s that b holds", rec.Code, jwksKids(t, rec.Body.Bytes()), newKid[0])
	}
}
