package cluster

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/e2e/harness"
	"github.com/caf-extranet/idp/migrations"
	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

// TestConcurrentMigrationsAtStart: three instances started at the same
// moment on an empty schema all become ready; every migration is recorded
// once, and the first signing key was created once.
func TestConcurrentMigrationsAtStart(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	bin := harness.Binary(t)

	c := &cluster{t: t, dbURL: dbURL}
	type process struct {
		cmd  *exec.Cmd
		out  *lockedBuffer
		done chan error
	}
	var procs []*process
	for i := range 3 {
		env := harness.Env(t, "IDP_DATABASE_URL="+dbURL)
		addr := lastValue(env, "IDP_LISTEN")
		p := &process{cmd: exec.Command(bin, "serve"), out: &lockedBuffer{}, done: make(chan error, 1)}
		p.cmd.Env = append(withoutIDPVars(os.Environ()), env...)
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		procs = append(procs, p)
		c.nodes = append(c.nodes, &node{name: string(rune('A' + i)), addr: addr, env: env, transport: newTransport(addr)})
	}
	// Started back to back, before any of them has had time to migrate.
	for _, p := range procs {
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.done <- p.cmd.Wait() }()
	}
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
			}
		}
	})
	for i, nd := range c.nodes {
		deadline := time.Now().Add(30 * time.Second)
		for readyStatus(nd) != http.StatusOK {
			select {
			case err := <-procs[i].done:
				t.Fatalf("instance %s exited during the concurrent start: %v\n%s", nd.name, err, procs[i].out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %s not ready after 30s:\n%s", nd.name, procs[i].out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	ms, err := migrations.Load(migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT version, name, count(*) OVER (PARTITION BY version) FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var (
			version int
			name    string
			times   int64
		)
		if err := rows.Scan(&version, &name, &times); err != nil {
			t.Fatal(err)
		}
		if times != 1 {
			t.Errorf("migration %d recorded %d times", version, times)
		}
		got = append(got, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range ms {
		want = append(want, m.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("schema_migrations holds %v, want %v", got, want)
	}

	// The instances raced to create the first signing key too: one won.
	first := publishedKids(t, c, 0)
	for i := range c.nodes {
		if kids := publishedKids(t, c, i); len(kids) != 1 || !slices.Equal(kids, first) {
			t.Fatalf("instance %s publishes %v, instance A %v: want one shared key", c.nodes[i].name, kids, first)
		}
	}
}

// lockedBuffer collects a process's output from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// withoutIDPVars drops the test process's own IDP_* variables, so that only
// what the test sets reaches the server.
func withoutIDPVars(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "IDP_") {
			out = append(out, kv)
		}
	}
	return out
}

// lastValue is the value of the last key=... entry of env.
func lastValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
