package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// tokenOutage corrects one answer of the token endpoint. The library turns
// every storage error met while reading a code or a refresh token into
// invalid_grant, which tells the relying application its grant is dead.
// When the database is the reason, that is false, and the application would
// throw away a code or a refresh token that works again a minute later. So
// when the endpoint refuses a grant, the database is pinged (only then: the
// cost is on failures, never on the hot path) and, if it does not answer,
// the refusal becomes server_error, as OAuth says for a temporary fault.
func (p *Provider) tokenOutage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != p.op.TokenEndpoint().Relative() {
			next.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if rec.status == http.StatusBadRequest && errorCode(rec.body.Bytes()) == string(oidc.InvalidGrant) && !p.databaseAnswers(r.Context()) {
			p.log.WarnContext(r.Context(), "token request refused while the database is unreachable: answered server_error")
			rec.header.Set("Content-Type", "application/json")
			rec.status = http.StatusInternalServerError
			rec.body.Reset()
			_ = json.NewEncoder(&rec.body).Encode(oidc.ErrServerError().WithDescription("temporary fault, try again"))
		}
		rec.writeTo(w)
	})
}

func (p *Provider) databaseAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return p.store.Ping(ctx) == nil
}

// bufferedResponse holds a small answer (a token response) until it is
// known to be right.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }

// writeTo sends the answer held.
func (b *bufferedResponse) writeTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}
