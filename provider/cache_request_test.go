package provider

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// gateStore answers the gate's query from memory and counts it. Any other
// read of the agent or its habilitation panics (the embedded interface is
// nil): the gate must ask one query.
type gateStore struct {
	storage.Store
	mu           sync.Mutex
	user         storage.User
	client       storage.Client
	habilitation *storage.Habilitation // of user for client; nil: none
	reads        int
}

func (s *gateStore) GetUserAccess(_ context.Context, userID, clientID string, _ time.Time) (storage.UserAccess, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if userID != s.user.ID {
		return storage.UserAccess{}, storage.ErrNotFound
	}
	a := storage.UserAccess{User: s.user}
	if s.habilitation != nil && clientID == s.habilitation.ClientID {
		h := *s.habilitation
		a.Habilitation = &h
	}
	return a, nil
}

func (s *gateStore) GetClient(_ context.Context, id string) (storage.Client, error) {
	if id != s.client.ID {
		return storage.Client{}, storage.ErrNotFound
	}
	return s.client, nil
}

func (s *gateStore) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func (s *gateStore) setUser(u storage.User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user = u
}

// inRequest runs fn with the context the provider's handlers give a request.
func inRequest(fn func(ctx context.Context)) {
	h := withGateMemo(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { fn(r.Context()) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/oauth/token", nil))
}

func TestGateMemo(t *testing.T) {
	store := &gateStore{
		user:   storage.User{ID: "u1", Email: "a@b.fr", PasswordHash: "$argon2id$..."},
		client: storage.Client{ID: "app"},
	}
	s := &opStorage{store: store, clients: newClientCache(store, time.Now, time.Minute), now: time.Now}

	// One request: the gate is asked three times, the database once.
	inRequest(func(ctx context.Context) {
		for range 3 {
			u, _, err := s.allowedFor(ctx, "u1", "app")
			if err != nil || u.Email != "a@b.fr" {
				t.Fatalf("allowedFor: %+v, %v", u, err)
			}
		}
	})
	if n := store.readCount(); n != 1 {
		t.Fatalf("one request: %d reads of the agent and its habilitation, want 1", n)
	}

	// The next request asks again: a disabled agent is refused at once,
	// and a refusal is never remembered.
	store.setUser(storage.User{ID: "u1", Email: "a@b.fr", PasswordHash: "$argon2id$...", Disabled: true})
	inRequest(func(ctx context.Context) {
		for range 2 {
			if _, _, err := s.allowedFor(ctx, "u1", "app"); !errors.Is(err, errGate) {
				t.Fatalf("disabled agent: %v", err)
			}
		}
	})
	if n := store.readCount(); n != 3 {
		t.Fatalf("%d reads, want 3 (one per question once refused)", n)
	}

	// Outside the provider's handlers nothing is remembered.
	store.setUser(storage.User{ID: "u1", PasswordHash: "$argon2id$..."})
	for range 2 {
		if _, _, err := s.allowedFor(context.Background(), "u1", "app"); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.readCount(); n != 5 {
		t.Fatalf("%d reads, want 5", n)
	}

	// Another client in the same request is another question.
	inRequest(func(ctx context.Context) {
		_, _, _ = s.allowedFor(ctx, "u1", "app")
		if _, _, err := s.allowedFor(ctx, "u1", "other"); err == nil {
			t.Fatal("an unknown client was let through by the memo")
		}
	})
}

// The gate's answers from its one read: the same refusals as when the agent
// and the habilitation were read apart.
func TestGateAnswers(t *testing.T) {
	active := storage.User{ID: "u1", Email: "a@b.fr", PasswordHash: "$argon2id$..."}
	disabled, pending, noPassword := active, active, active
	disabled.Disabled = true
	pending.PendingPasswordChange = true
	noPassword.PasswordHash = ""
	open := storage.Client{ID: "app"}
	restricted := storage.Client{ID: "app", Restricted: true}
	withRoles := &storage.Habilitation{UserID: "u1", ClientID: "app", Roles: []string{"gestionnaire"}}
	noRoles := &storage.Habilitation{UserID: "u1", ClientID: "app"}
	elsewhere := &storage.Habilitation{UserID: "u1", ClientID: "paie", Roles: []string{"gestionnaire"}}
	for _, c := range []struct {
		name         string
		user         storage.User
		client       storage.Client
		habilitation *storage.Habilitation
		userID       string
		clientID     string
		wantErr      error // nil: allowed
		wantRoles    []string
	}{
		{"open client, no habilitation", active, open, nil, "u1", "app", nil, nil},
		{"open client, habilitation", active, open, withRoles, "u1", "app", nil, []string{"gestionnaire"}},
		{"restricted, habilitation", active, restricted, withRoles, "u1", "app", nil, []string{"gestionnaire"}},
		{"restricted, habilitation without roles", active, restricted, noRoles, "u1", "app", nil, nil},
		{"restricted, no habilitation", active, restricted, nil, "u1", "app", storage.ErrNotHabilitated, nil},
		{"restricted, habilitation for another client", active, restricted, elsewhere, "u1", "app", storage.ErrNotHabilitated, nil},
		{"disabled agent", disabled, restricted, withRoles, "u1", "app", errGate, nil},
		{"pending agent", pending, open, nil, "u1", "app", errGate, nil},
		{"agent without password", noPassword, open, nil, "u1", "app", errGate, nil},
		{"unknown agent", active, open, nil, "u9", "app", storage.ErrNotFound, nil},
		{"unknown client", active, open, nil, "u1", "other", storage.ErrNotFound, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := &gateStore{user: c.user, client: c.client, habilitation: c.habilitation}
			s := &opStorage{store: store, clients: newClientCache(store, time.Now, time.Minute), now: time.Now}
			u, roles, err := s.allowedFor(context.Background(), c.userID, c.clientID)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("allowedFor: %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("allowedFor: %v, want allowed", err)
			}
			if u.ID != c.user.ID || !slices.Equal(roles, c.wantRoles) {
				t.Fatalf("allowedFor: agent %q roles %q, want %q and %q", u.ID, roles, c.user.ID, c.wantRoles)
			}
		})
	}
}

// AuthRequestByCode hands the gate the agent and habilitation read with the
// code's request: a code exchange reads neither again.
func (s *gateStore) AuthRequestByCode(ctx context.Context, _ string, now time.Time) (storage.AuthRequest, storage.UserAccess, error) {
	r := storage.AuthRequest{ID: "ar-1", ClientID: s.client.ID, UserID: s.user.ID, Done: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := storage.UserAccess{User: s.user}
	if s.habilitation != nil && s.habilitation.ClientID == r.ClientID {
		h := *s.habilitation
		a.Habilitation = &h
	}
	return r, a, nil
}

func TestCodeExchangeGateWithoutRead(t *testing.T) {
	store := &gateStore{
		user:   storage.User{ID: "u1", Email: "a@b.fr", PasswordHash: "$argon2id$..."},
		client: storage.Client{ID: "app", Restricted: true},
	}
	store.habilitation = &storage.Habilitation{UserID: "u1", ClientID: "app", Roles: []string{"gestionnaire"}}
	s := &opStorage{store: store, clients: newClientCache(store, time.Now, time.Minute), now: time.Now}
	inRequest(func(ctx context.Context) {
		a, err := s.AuthRequestByCode(ctx, "code")
		if err != nil || !a.Done() {
			t.Fatalf("habilitated agent: %v, done %v", err, a != nil && a.Done())
		}
		// The ID token's claims later in the same request: from the memo.
		if _, roles, err := s.allowedFor(ctx, "u1", "app"); err != nil || !slices.Equal(roles, []string{"gestionnaire"}) {
			t.Fatalf("allowedFor after the code: %v, %v", roles, err)
		}
	})
	if n := store.readCount(); n != 0 {
		t.Fatalf("%d reads of the agent and its habilitation for a code exchange, want 0", n)
	}

	// Refusals come from the same read: a restricted client without
	// habilitation, a disabled agent.
	store.habilitation = nil
	inRequest(func(ctx context.Context) {
		if _, err := s.AuthRequestByCode(ctx, "code"); !errors.Is(err, errGate) {
			t.Fatalf("no habilitation for a restricted client: %v", err)
		}
	})
	store.habilitation = &storage.Habilitation{UserID: "u1", ClientID: "app"}
	store.setUser(storage.User{ID: "u1", Email: "a@b.fr", PasswordHash: "$argon2id$...", Disabled: true})
	inRequest(func(ctx context.Context) {
		if _, err := s.AuthRequestByCode(ctx, "code"); !errors.Is(err, errGate) {
			t.Fatalf("disabled agent: %v", err)
		}
	})
	if n := store.readCount(); n != 0 {
		t.Fatalf("%d reads for refused code exchanges, want 0", n)
	}
}
