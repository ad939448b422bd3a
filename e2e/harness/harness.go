// Package harness runs the real idp binary for the acceptance tests: it
// builds ./cmd/idp once per test process, starts `idp serve` on a free
// loopback port with the given IDP_* environment, waits until it is ready,
// and stops it with SIGTERM, as an administrator's service manager would.
package harness

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of the idp binary, built once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "idp-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "idp")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/idp")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/idp: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreeAddr returns a loopback host:port nobody listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// safeBuffer collects a process's output from its goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Server is one running `idp serve`.
type Server struct {
	URL     string   // the issuer, http://127.0.0.1:PORT
	Env     []string // the IDP_* environment it runs with (reuse it for admin commands)
	DataDir string
	cmd     *exec.Cmd
	logs    *safeBuffer
	done    chan error
	stopped bool
}

// Env is the environment of a new instance: SQLite in a temp dir unless the
// caller's extra variables say otherwise (later entries win).
func Env(t testing.TB, extra ...string) []string {
	dir := t.TempDir()
	addr := FreeAddr(t)
	base := []string{
		"IDP_LISTEN=" + addr,
		"IDP_ISSUER=http://" + addr,
		"IDP_DATA_DIR=" + filepath.Join(dir, "data"),
		"IDP_DATABASE_URL=sqlite:" + filepath.Join(dir, "idp.db"),
		"IDP_LOG_LEVEL=debug",
	}
	return append(base, extra...)
}

// lookup returns the last value of key in env.
func lookup(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// Start runs `idp serve` with env (see Env) and waits until /readyz answers.
func Start(t testing.TB, env []string) *Server {
	t.Helper()
	s := &Server{URL: lookup(env, "IDP_ISSUER"), Env: env, DataDir: lookup(env, "IDP_DATA_DIR"),
		logs: &safeBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(Binary(t), "serve")
	s.cmd.Env = append(baseEnviron(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if !s.stopped {
			_ = s.Stop()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			t.Fatalf("idp serve exited before ready: %v\n%s", err, s.Logs())
		default:
		}
		// The instance's own address: several instances may share one issuer.
		resp, err := http.Get("http://" + lookup(env, "IDP_LISTEN") + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("idp serve not ready after 30s:\n%s", s.Logs())
	return nil
}

// Logs is everything the process printed so far.
func (s *Server) Logs() string { return s.logs.String() }

// Stop sends SIGTERM and waits for the process to exit (30 s at most).
func (s *Server) Stop() error {
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		return errors.New("idp serve did not stop within 30s of SIGTERM")
	}
}

// Admin runs an idp administrative command with env and returns its
// standard output; a failure fails the test.
func Admin(t testing.TB, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = append(baseEnviron(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("idp %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// ClientSecret extracts the secret `idp client add` printed.
func ClientSecret(t testing.TB, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "client_secret: "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no client_secret in %q", out)
	return ""
}

// baseEnviron is the test process's environment without IDP_* variables,
// so that only what the test sets reaches the server.
func baseEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IDP_") {
			out = append(out, kv)
		}
	}
	return out
}
