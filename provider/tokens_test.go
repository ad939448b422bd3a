package provider

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/caf-extranet/idp/storage"
)

// exchangeStore records the code exchanges and auth request deletions the
// provider asks for; the gate's queries go to gateStore.
type exchangeStore struct {
	gateStore
	mu          sync.Mutex
	exchanged   []string // code hashes
	deleted     []string // auth request ids
	exchangeErr error
}

func (s *exchangeStore) ExchangeAuthCode(_ context.Context, codeHash string, _ storage.AccessToken, _ *storage.RefreshToken, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exchanged = append(s.exchanged, codeHash)
	return s.exchangeErr
}

func (s *exchangeStore) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = append(s.deleted, id)
	return nil
}

func (s *exchangeStore) calls() (exchanged, deleted []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exchanged), slices.Clone(s.deleted)
}

func newExchangeTest() (*exchangeStore, *opStorage, *authRequest) {
	store := &exchangeStore{gateStore: gateStore{
		user:   storage.User{ID: "u1", Email: "a@b.fr", PasswordHash: "$argon2id$..."},
		client: storage.Client{ID: "app"},
	}}
	s := &opStorage{store: store, clients: newClientCache(store, time.Now, time.Minute), now: time.Now,
		log: slog.New(slog.DiscardHandler)}
	a := &authRequest{r: storage.AuthRequest{ID: "ar1", ClientID: "app", UserID: "u1", Done: true},
		userAllowed: true, codeHash: "hash-of-code"}
	return store, s, a
}

// The exchange deletes the auth request in its own transaction: the
// library's DeleteAuthRequest right after, in the same request, must not
// write again; any other call still deletes.
func TestCodeExchangeDeletesAuthRequestOnce(t *testing.T) {
	store, s, a := newExchangeTest()
	inRequest(func(ctx context.Context) {
		if _, _, err := s.CreateAccessToken(ctx, a); err != nil {
			t.Fatalf("CreateAccessToken: %v", err)
		}
		if err := s.DeleteAuthRequest(ctx, a.GetID()); err != nil {
			t.Fatalf("DeleteAuthRequest: %v", err)
		}
		// Another auth request in the same request is not covered.
		if err := s.DeleteAuthRequest(ctx, "ar2"); err != nil {
			t.Fatalf("DeleteAuthRequest ar2: %v", err)
		}
	})
	exchanged, deleted := store.calls()
	if !slices.Equal(exchanged, []string{"hash-of-code"}) {
		t.Fatalf("exchanges %v, want the code's hash once", exchanged)
	}
	if !slices.Equal(deleted, []string{"ar2"}) {
		t.Fatalf("deletions %v, want only ar2 (ar1 went with the exchange)", deleted)
	}

	// Another request, and no request at all, remember nothing.
	inRequest(func(ctx context.Context) {
		if err := s.DeleteAuthRequest(ctx, a.GetID()); err != nil {
			t.Fatal(err)
		}
	})
	if err := s.DeleteAuthRequest(context.Background(), a.GetID()); err != nil {
		t.Fatal(err)
	}
	if _, deleted = store.calls(); !slices.Equal(deleted, []string{"ar2", "ar1", "ar1"}) {
		t.Fatalf("deletions %v, want ar1 deleted by the other request and outside any", deleted)
	}
}

// A code redeemed meanwhile answers invalid_grant, and the request stays
// to be deleted (nothing was noted).
func TestCodeExchangeLost(t *testing.T) {
	store, s, a := newExchangeTest()
	store.exchangeErr = storage.ErrAlreadyUsed
	inRequest(func(ctx context.Context) {
		_, _, _, err := s.CreateAccessAndRefreshTokens(ctx, a, "")
		var oerr *oidc.Error
		if !errors.As(err, &oerr) || oerr.ErrorType != oidc.InvalidGrant {
			t.Fatalf("CreateAccessAndRefreshTokens after a lost race: %v, want invalid_grant", err)
		}
		if err := s.DeleteAuthRequest(ctx, a.GetID()); err != nil {
			t.Fatal(err)
		}
	})
	if _, deleted := store.calls(); !slices.Equal(deleted, []string{"ar1"}) {
		t.Fatalf("deletions %v, want ar1", deleted)
	}
}

// Tokens for an auth request come only from its code.
func TestTokensWithoutCodeRefused(t *testing.T) {
	store, s, a := newExchangeTest()
	a.codeHash = ""
	if _, _, err := s.CreateAccessToken(context.Background(), a); err == nil {
		t.Fatal("tokens issued for an auth request not found by its code")
	}
	if exchanged, _ := store.calls(); len(exchanged) != 0 {
		t.Fatalf("exchanges %v, want none", exchanged)
	}
}
