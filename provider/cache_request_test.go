package provider

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// gateStore answers the gate's queries from memory and counts them.
type gateStore struct {
	storage.Store
	mu            sync.Mutex
	user          storage.User
	client        storage.Client
	userReads     int
	habilitations int
}

func (s *gateStore) GetUser(_ context.Context, id string) (storage.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userReads++
	if id != s.user.ID {
		return storage.User{}, storage.ErrNotFound
	}
	return s.user, nil
}

func (s *gateStore) GetClient(_ context.Context, id string) (storage.Client, error) {
	if id != s.client.ID {
		return storage.Client{}, storage.ErrNotFound
	}
	return s.client, nil
}

func (s *gateStore) GetHabilitation(context.Context, string, string, time.Time) (storage.Habilitation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.habilitations++
	return storage.Habilitation{}, storage.ErrNotFound
}

func (s *gateStore) reads() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userReads, s.habilitations
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
	if u, h := store.reads(); u != 1 || h != 1 {
		t.Fatalf("one request: %d user reads, %d habilitation reads; want 1 and 1", u, h)
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
	if u, _ := store.reads(); u != 3 {
		t.Fatalf("%d user reads, want 3 (one per question once refused)", u)
	}

	// Outside the provider's handlers nothing is remembered.
	store.setUser(storage.User{ID: "u1", PasswordHash: "$argon2id$..."})
	for range 2 {
		if _, _, err := s.allowedFor(context.Background(), "u1", "app"); err != nil {
			t.Fatal(err)
		}
	}
	if u, _ := store.reads(); u != 5 {
		t.Fatalf("%d user reads, want 5", u)
	}

	// Another client in the same request is another question.
	inRequest(func(ctx context.Context) {
		_, _, _ = s.allowedFor(ctx, "u1", "app")
		if _, _, err := s.allowedFor(ctx, "u1", "other"); err == nil {
			t.Fatal("an unknown client was let through by the memo")
		}
	})
}
