// Package storetest is the conformance suite of storage.Store: one set of
// behaviours, read from the contract's comments (storage/store.go and
// storage/types.go), that every engine must pass. Each engine's tests call Run
// with a constructor of fresh, migrated, empty stores.
//
// It is an ordinary package, not a _test one, so that the engines' test
// packages can import it.
package storetest

import (
	"fmt"
	"testing"

	"github.com/caf-extranet/idp/storage"
)

// Run runs every behaviour of storage.Store as subtests, grouped by area.
// newStore returns a fresh, migrated, empty store for each subtest and
// registers its own cleanup.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	for _, a := range areas() {
		t.Run(a.name, func(t *testing.T) {
			for _, b := range a.behaviours {
				t.Run(b.name, func(t *testing.T) {
					b.run(t, newStore(t))
				})
			}
		})
	}
}

// behaviour is one subtest: it receives a store of its own.
type behaviour struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

// area groups the behaviours of one part of the contract.
type area struct {
	name       string
	behaviours []behaviour
}

func areas() []area {
	return []area{
		{"Basics", basicBehaviours()},
		{"Secrets", secretBehaviours()},
		{"Users", userBehaviours()},
		{"Clients", clientBehaviours()},
		{"Habilitations", habilitationBehaviours()},
		{"AuthRequests", authRequestBehaviours()},
		{"AuthCodes", authCodeBehaviours()},
		{"Tokens", tokenBehaviours()},
		{"Sessions", sessionBehaviours()},
		{"Challenges", challengeBehaviours()},
		{"RecoveryJobs", recoveryJobBehaviours()},
		{"ProvisionalPasswords", provisionalBehaviours()},
		{"ChangePassword", changePasswordBehaviours()},
		{"Outbox", outboxBehaviours()},
		{"Counters", counterBehaviours()},
		{"Throttles", throttleBehaviours()},
		{"SigningKeys", signingKeyBehaviours()},
		{"ChangeGenerations", changeGenerationBehaviours()},
		{"Audit", auditBehaviours()},
		{"Purge", purgeBehaviours()},
	}
}

func basicBehaviours() []behaviour {
	return []behaviour{
		{"PingAndSchemaVersion", testPingAndSchemaVersion},
		{"UnstorableKeysAreUnknown", testUnstorableKeysAreUnknown},
	}
}

// testUnstorableKeysAreUnknown: a key that is not UTF-8, or holds a NUL,
// names no record: the lookups answer ErrNotFound and a revocation does
// nothing, on every engine. Such keys come from outside (a random bearer
// token that the OIDC library's fallback decryption reads as an id, a
// client_id, a cookie), and an error there would be a server error where
// the contract says unknown.
func testUnstorableKeysAreUnknown(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	for _, key := range []string{"\xff\xfeab", "ab\x00c"} {
		_, err := s.GetAccessToken(ctx, key, now)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("GetAccessToken(%q)", key))
		_, err = s.GetRefreshToken(ctx, key, now)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("GetRefreshToken(%q)", key))
		_, err = s.GetClient(ctx, key)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("GetClient(%q)", key))
		_, err = s.GetAuthRequest(ctx, key, now)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("GetAuthRequest(%q)", key))
		_, err = s.GetUser(ctx, key)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("GetUser(%q)", key))
		_, err = s.GetUserByEmail(ctx, key)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("GetUserByEmail(%q)", key))
		_, err = s.GetSession(ctx, key, now)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("GetSession(%q)", key))
		mustOK(t, s.RevokeAccessToken(ctx, key), fmt.Sprintf("RevokeAccessToken(%q)", key))
	}
}

func testPingAndSchemaVersion(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustOK(t, s.Ping(ctx), "Ping")
	v, err := s.SchemaVersion(ctx)
	mustOK(t, err, "SchemaVersion")
	if v < 1 {
		t.Errorf("SchemaVersion of a migrated store = %d, want >= 1", v)
	}
}
