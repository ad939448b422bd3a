// Package storetest is the conformance suite of storage.Store: one set of
// behaviours, read from the contract's comments (storage/store.go and
// storage/types.go), that every engine must pass. Each engine's tests call Run
// with a constructor of fresh, migrated, empty stores.
//
// It is an ordinary package, not a _test one, so that the engines' test
// packages can import it.
package storetest

import (
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
