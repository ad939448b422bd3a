package provider

import (
	"context"
	"log/slog"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// changeWatchInterval is how often each instance reads the change
// generations: a client removed or restricted, or a key rotated, by any
// instance or any `idp` command, reaches every instance within about this.
// One indexed read per interval and instance, none per request.
const changeWatchInterval = time.Second

// generationReader is the part of the store the watcher needs.
type generationReader interface {
	ChangeGenerations(ctx context.Context) (storage.ChangeGenerations, error)
}

// changeWatcher drops an instance's caches of the clients or of the signing
// keys when the store's generation of that topic moves. The database's
// triggers move the generations in the same transaction as the change, so
// no writer can forget to announce one.
type changeWatcher struct {
	store generationReader
	// Called when the generation of the topic moved, and at the first
	// read: what was cached before it may predate a change.
	onClients, onKeys []func()
	log               *slog.Logger

	seen    storage.ChangeGenerations
	primed  bool // seen holds a successful read
	failing bool // the last read failed (logged once per streak)
}

// changeReadTimeout bounds one read of the generations: a connection that
// hangs must not stop the watcher, which tries again at its next tick.
const changeReadTimeout = 5 * time.Second

// check reads the generations once and drops what they say is stale.
func (w *changeWatcher) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, changeReadTimeout)
	defer cancel()
	g, err := w.store.ChangeGenerations(ctx)
	if err != nil {
		return err
	}
	if !w.primed || g.Clients != w.seen.Clients {
		for _, f := range w.onClients {
			f()
		}
	}
	if !w.primed || g.SigningKeys != w.seen.SigningKeys {
		for _, f := range w.onKeys {
			f()
		}
	}
	w.seen, w.primed = g, true
	return nil
}

// run checks every interval until ctx is done. While the database does not
// answer, the caches keep what they hold (a change cannot be committed
// either) and the first answer after settles any change made meanwhile.
func (w *changeWatcher) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := w.check(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !w.failing:
			w.log.WarnContext(ctx, "cannot read the change generations; caches kept as they are", "err", err)
		case err == nil && w.failing:
			w.log.InfoContext(ctx, "change generations read again")
		}
		w.failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
