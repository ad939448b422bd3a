package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func signingKeyBehaviours() []behaviour {
	return []behaviour{
		{"AddCompareAndSwap", testKeyAddCAS},
		{"Delete", testKeyDelete},
		{"ConcurrentFirstKeyOneWinner", testKeyRaceEmpty},
		{"ConcurrentRotationOneWinner", testKeyRaceRotation},
	}
}

func testKeyAddCAS(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	keys, err := s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys on an empty store")
	assertIDs(t, "keys of an empty store", keys)

	k1 := newSigningKey("k1", now)
	mustOK(t, s.AddSigningKey(ctx, k1, ""), "AddSigningKey first key")
	k2 := newSigningKey("k2", now.Add(24*time.Hour+345*time.Microsecond))
	k2.Algorithm = "RS256"
	wantErr(t, s.AddSigningKey(ctx, k2, ""), storage.ErrConflict, "AddSigningKey expecting an empty table")
	wantErr(t, s.AddSigningKey(ctx, k2, "k-unknown"), storage.ErrConflict, "AddSigningKey expecting an unknown key")
	mustOK(t, s.AddSigningKey(ctx, k2, "k1"), "AddSigningKey after k1")

	k3 := newSigningKey("k3", now.Add(48*time.Hour))
	wantErr(t, s.AddSigningKey(ctx, k3, "k1"), storage.ErrConflict, "AddSigningKey expecting a stale newest key")
	keys, err = s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys")
	assertSameList(t, "keys oldest first", keys, []storage.SigningKey{k1, k2})

	mustOK(t, s.AddSigningKey(ctx, k3, "k2"), "AddSigningKey after k2")
	keys, err = s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys")
	assertSameList(t, "keys oldest first", keys, []storage.SigningKey{k1, k2, k3})
}

func testKeyDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	k1, k2 := newSigningKey("k1", now), newSigningKey("k2", now.Add(time.Hour))
	mustOK(t, s.AddSigningKey(ctx, k1, ""), "AddSigningKey k1")
	mustOK(t, s.AddSigningKey(ctx, k2, "k1"), "AddSigningKey k2")
	mustOK(t, s.DeleteSigningKey(ctx, "k1"), "DeleteSigningKey")
	keys, err := s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys")
	assertSameList(t, "keys after delete", keys, []storage.SigningKey{k2})
	k3 := newSigningKey("k3", now.Add(2*time.Hour))
	mustOK(t, s.AddSigningKey(ctx, k3, "k2"), "AddSigningKey after the delete")
}

// Several instances starting on an empty database all try to create the
// first key: one must win.
func testKeyRaceEmpty(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	errs := race(10, func(i int) error {
		return s.AddSigningKey(ctx, newSigningKey(fmt.Sprintf("k-%d", i), now), "")
	})
	w := oneWinner(t, "AddSigningKey on an empty table", errs, storage.ErrConflict)
	keys, err := s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys")
	assertSameList(t, "keys after the race", keys, []storage.SigningKey{newSigningKey(fmt.Sprintf("k-%d", w), now)})
}

func testKeyRaceRotation(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	k1 := newSigningKey("k1", now)
	mustOK(t, s.AddSigningKey(ctx, k1, ""), "AddSigningKey k1")
	t1 := now.Add(24 * time.Hour)
	errs := race(10, func(i int) error {
		return s.AddSigningKey(ctx, newSigningKey(fmt.Sprintf("k-%d", i), t1), "k1")
	})
	w := oneWinner(t, "AddSigningKey rotating k1", errs, storage.ErrConflict)
	winner := newSigningKey(fmt.Sprintf("k-%d", w), t1)
	keys, err := s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys")
	assertSameList(t, "keys after the race", keys, []storage.SigningKey{k1, winner})
	// The winner is now the newest key.
	next := newSigningKey("k-next", t1.Add(24*time.Hour))
	wantErr(t, s.AddSigningKey(ctx, next, "k1"), storage.ErrConflict, "AddSigningKey expecting k1 after the race")
	mustOK(t, s.AddSigningKey(ctx, next, winner.ID), "AddSigningKey expecting the winner")
}
