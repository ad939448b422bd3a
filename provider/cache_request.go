package provider

import (
	"context"
	"net/http"
	"sync"

	"github.com/caf-extranet/idp/storage"
)

// gateMemo remembers the gate's answers (allowedFor) for the length of one
// request. The library asks the storage about the same agent and client up
// to three times while answering one token request (loading the code or the
// refresh token, creating the tokens, filling the ID token's claims); each
// answer costs a query (the agent and its habilitation, GetUserAccess).
// Within one request the first answer is as good as a fresh one, and every
// new request asks the database again, so a disabled agent or a revoked
// habilitation is refused from the next request on, as before.
//
// It also remembers the auth requests this request deleted: a code's
// exchange deletes its auth request in the transaction that stores the
// tokens, and the library, unaware, asks for the deletion again right after.
type gateMemo struct {
	mu      sync.Mutex
	answers map[gateKey]gateAnswer
	deleted map[string]bool // auth request ids
}

type gateKey struct{ userID, clientID string }

type gateAnswer struct {
	user  storage.User
	roles []string
}

type gateMemoKey struct{}

// withGateMemo is an op.HttpInterceptor giving each request its memo.
func withGateMemo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), gateMemoKey{}, &gateMemo{})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// gateMemoFrom returns the request's memo; nil (which remembers nothing)
// outside the provider's handlers.
func gateMemoFrom(ctx context.Context) *gateMemo {
	m, _ := ctx.Value(gateMemoKey{}).(*gateMemo)
	return m
}

// get returns a remembered permission; refusals and errors are never
// remembered.
func (m *gateMemo) get(userID, clientID string) (storage.User, []string, bool) {
	if m == nil {
		return storage.User{}, nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.answers[gateKey{userID, clientID}]
	return a.user, a.roles, ok
}

func (m *gateMemo) put(userID, clientID string, u storage.User, roles []string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.answers == nil {
		m.answers = make(map[gateKey]gateAnswer, 1)
	}
	m.answers[gateKey{userID, clientID}] = gateAnswer{user: u, roles: roles}
}

// noteAuthRequestDeleted remembers that this request deleted the auth
// request id.
func (m *gateMemo) noteAuthRequestDeleted(id string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deleted == nil {
		m.deleted = make(map[string]bool, 1)
	}
	m.deleted[id] = true
}

// authRequestDeleted reports whether this request deleted the auth request
// id; always false outside a request (nil memo), so that the caller deletes.
func (m *gateMemo) authRequestDeleted(id string) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.deleted[id]
}
