package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func changeGenerationBehaviours() []behaviour {
	return []behaviour{
		{"MoveWithEveryChange", testGenerationsMove},
		{"StillOnFailedChanges", testGenerationsStill},
	}
}

// Each change to the clients moves the clients' generation only, each change
// to the signing keys the keys' only, and reads alone move nothing: that is
// what lets the instances drop one cache without the other.
func testGenerationsMove(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	last, err := s.ChangeGenerations(ctx)
	mustOK(t, err, "ChangeGenerations on a new store")
	step := func(what string, clientsMove, keysMove bool, change func() error) {
		t.Helper()
		mustOK(t, change(), what)
		g, err := s.ChangeGenerations(ctx)
		mustOK(t, err, "ChangeGenerations after "+what)
		if moved := g.Clients != last.Clients; moved != clientsMove {
			t.Errorf("%s: clients' generation %d → %d, want moved=%v", what, last.Clients, g.Clients, clientsMove)
		}
		if moved := g.SigningKeys != last.SigningKeys; moved != keysMove {
			t.Errorf("%s: keys' generation %d → %d, want moved=%v", what, last.SigningKeys, g.SigningKeys, keysMove)
		}
		last = g
	}
	step("CreateClient", true, false, func() error { return s.CreateClient(ctx, newClient("portail", now)) })
	step("GetClient and ListClients", false, false, func() error {
		if _, err := s.GetClient(ctx, "portail"); err != nil {
			return err
		}
		_, err := s.ListClients(ctx)
		return err
	})
	step("SetClientRestricted", true, false, func() error { return s.SetClientRestricted(ctx, "portail", true) })
	step("DeleteClient", true, false, func() error { return s.DeleteClient(ctx, "portail") })
	step("AddSigningKey", false, true, func() error { return s.AddSigningKey(ctx, newSigningKey("k1", now), "") })
	step("AddSigningKey again", false, true, func() error {
		return s.AddSigningKey(ctx, newSigningKey("k2", now.Add(time.Hour)), "k1")
	})
	step("ListSigningKeys", false, false, func() error { _, err := s.ListSigningKeys(ctx); return err })
	step("DeleteSigningKey", false, true, func() error { return s.DeleteSigningKey(ctx, "k1") })
}

// A change refused by the store, or one that finds nothing to change, leaves
// the generations where they were: the bump is part of the change itself.
func testGenerationsStill(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	mustOK(t, s.AddSigningKey(ctx, newSigningKey("k1", now), ""), "AddSigningKey")
	before, err := s.ChangeGenerations(ctx)
	mustOK(t, err, "ChangeGenerations")
	wantErr(t, s.CreateClient(ctx, newClient("portail", now)), storage.ErrDuplicate, "CreateClient twice")
	wantErr(t, s.DeleteClient(ctx, "inconnu"), storage.ErrNotFound, "DeleteClient unknown")
	wantErr(t, s.SetClientRestricted(ctx, "inconnu", true), storage.ErrNotFound, "SetClientRestricted unknown")
	if err := s.DeleteSigningKey(ctx, "k-inconnue"); err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("DeleteSigningKey unknown: %v", err)
	}
	wantErr(t, s.AddSigningKey(ctx, newSigningKey("k2", now.Add(time.Hour)), ""), storage.ErrConflict, "AddSigningKey on a stale newest key")
	after, err := s.ChangeGenerations(ctx)
	mustOK(t, err, "ChangeGenerations")
	if after != before {
		t.Errorf("refused changes moved the generations: %+v → %+v", before, after)
	}
}
