package main

import (
	"context"
	"log/slog"
)

// requestIDKey carries the request id in a request's context.
type requestIDKey struct{}

// requestIDHandler adds the request id to every record logged with the
// request's context (log.InfoContext(r.Context(), ...)), so that the lines
// a component writes about a request can be found from the request line.
type requestIDHandler struct{ slog.Handler }

func withRequestIDs(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
