package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "idp.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// problemsOf returns the problems carried by err, failing when err is not an
// *Error.
func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	return cerr.Problems
}

// requireProblem fails unless a problem with key has a message containing
// every fragment.
func requireProblem(t *testing.T, ps []Problem, key string, fragments ...string) {
	t.Helper()
	for _, p := range ps {
		if p.Key != key {
			continue
		}
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(p.Message, f)
		}
		if ok {
			return
		}
	}
	t.Errorf("no problem %q containing %q among:\n%v", key, fragments, (&Error{Problems: ps}).Error())
}

func TestDefaultsValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() does not validate:\n%v", err)
	}
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("Load with nothing differs from Default():\n%+v", cfg)
	}
}

func TestFileOverrides(t *testing.T) {
	path := writeConfig(t, `
issuer: https://idp.example.fr
listen: ":9000"
database_url: postgres://idp@db:5432/idp?sslmode=require
log:
  level: debug
smtp:
  addr: smtp.example.fr:587
  username: idp
  password: "s3cret: with colon"
  starttls: true
  timeout: 45s
  helo: idp.example.fr
mail:
  from: "Portail Extranet <ne-pas-repondre@example.fr>"
tokens:
  refresh_ttl: 48h
password:
  hash:
    memory_kib: 65536
    iterations: 1
  policy:
    require_uppercase: true
provisional:
  length: 14
http:
  trusted_proxies: [10.0.0.0/8, "192.168.1.1"]
login:
  relogin_after_change: true
`)
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Issuer = "https://idp.example.fr"
	want.Listen = ":9000"
	want.DatabaseURL = "postgres://idp@db:5432/idp?sslmode=require"
	want.Log.Level = "debug"
	want.SMTP = SMTP{Addr: "smtp.example.fr:587", Username: "idp", Password: "s3cret: with colon",
		StartTLS: true, Helo: "idp.example.fr", Timeout: 45 * time.Second}
	want.Mail.From = "Portail Extranet <ne-pas-repondre@example.fr>"
	want.Tokens.RefreshTTL = 48 * time.Hour
	want.Password.Hash.MemoryKiB = 65536
	want.Password.Hash.Iterations = 1
	want.Password.Policy.RequireUppercase = true
	want.Provisional.Length = 14
	want.HTTP.TrustedProxies = []string{"10.0.0.0/8", "192.168.1.1"}
	want.Login.ReloginAfterChange = true
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("loaded\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	path := writeConfig(t, "log:\n  level: debug\n  format: text\nsmtp:\n  timeout: 45s\n")
	cfg, err := Load(path, []string{
		"IDP_LOG_LEVEL=warn",
		"IDP_SMTP_TIMEOUT=50s",
		"IDP_HTTP_TRUSTED_PROXIES= 10.0.0.1 ,fd00::/8,,",
		"IDP_PASSWORD_POLICY_REQUIRE_DIGIT=false",
		"IDP_CAPTCHA_TEST_ANSWER=42",
		"IDP_TOKENS_CODE_TTL=30s",
		"IDP_PROVISIONAL_LENGTH=16",
		"PATH=/usr/bin",                  // not ours
		"IDP_TEST_POSTGRES_URL=whatever", // read by tests, ignored
		EnvConfigFile + "=" + path,       // names the file, not a key
		"NOEQUALSIGN",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "warn" || cfg.Log.Format != "text" {
		t.Errorf("log = %+v: env must override the file's level and keep its format", cfg.Log)
	}
	if cfg.SMTP.Timeout != 50*time.Second {
		t.Errorf("smtp.timeout = %v, want 50s from the environment", cfg.SMTP.Timeout)
	}
	if !slices.Equal(cfg.HTTP.TrustedProxies, []string{"10.0.0.1", "fd00::/8"}) {
		t.Errorf("trusted_proxies = %q", cfg.HTTP.TrustedProxies)
	}
	if cfg.Password.Policy.RequireDigit || cfg.Captcha.TestAnswer != "42" || cfg.Tokens.CodeTTL != 30*time.Second || cfg.Provisional.Length != 16 {
		t.Errorf("env not applied: %+v %+v %+v %+v", cfg.Password.Policy, cfg.Captcha, cfg.Tokens, cfg.Provisional)
	}
	// An empty variable sets an empty value (a list here).
	cfg, err = Load(writeConfig(t, "http:\n  trusted_proxies: [10.0.0.1]\n"), []string{"IDP_HTTP_TRUSTED_PROXIES="})
	if err != nil || len(cfg.HTTP.TrustedProxies) != 0 {
		t.Errorf("empty env list: %q, %v", cfg.HTTP.TrustedProxies, err)
	}
}

// TestFileNamedByIDPConfig: without --config, the file IDP_CONFIG names is
// read, so that a service's environment points every command at it; an
// explicit path wins; a missing file says where its name came from.
func TestFileNamedByIDPConfig(t *testing.T) {
	fromEnv := writeConfig(t, "log:\n  level: debug\n")
	cfg, err := Load("", []string{EnvConfigFile + "=" + fromEnv})
	if err != nil || cfg.Log.Level != "debug" {
		t.Fatalf("IDP_CONFIG's file not read: log.level %q, %v", cfg.Log.Level, err)
	}
	cfg, err = Load(writeConfig(t, "log:\n  level: warn\n"), []string{EnvConfigFile + "=" + fromEnv})
	if err != nil || cfg.Log.Level != "warn" {
		t.Fatalf("--config must win over IDP_CONFIG: log.level %q, %v", cfg.Log.Level, err)
	}
	_, err = Load("", []string{EnvConfigFile + "=" + filepath.Join(t.TempDir(), "absent.yaml")})
	requireProblem(t, problemsOf(t, err), "", "named by IDP_CONFIG", "absent.yaml")
	if cfg, err := Load("", []string{EnvConfigFile + "="}); err != nil || !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("an empty IDP_CONFIG names no file: %v", err)
	}
}

func TestUnknownFileKey(t *testing.T) {
	path := writeConfig(t, "issuer: http://localhost:8080\nsmtp:\n  adr: smtp.example.fr:25\n  timeout: 10s\ncolour: blue\n")
	_, err := Load(path, nil)
	ps := problemsOf(t, err)
	requireProblem(t, ps, "smtp.adr", "unknown key", "line 3", "did you mean smtp.addr?")
	requireProblem(t, ps, "colour", "unknown key", "line 5")
	if len(ps) != 2 {
		t.Errorf("want exactly the two unknown keys, got:\n%v", err)
	}
}

func TestUnknownEnv(t *testing.T) {
	_, err := Load("", []string{"IDP_SMTP_ADR=x:25", "IDP_NOPE=1", "IDP_TEST_ANYTHING=1"})
	ps := problemsOf(t, err)
	requireProblem(t, ps, "IDP_SMTP_ADR", "unknown environment variable", "did you mean IDP_SMTP_ADDR?")
	requireProblem(t, ps, "IDP_NOPE", "unknown environment variable")
	if len(ps) != 2 {
		t.Errorf("IDP_TEST_* must be ignored; got:\n%v", err)
	}
}

func TestSeveralProblemsReportedTogether(t *testing.T) {
	path := writeConfig(t, `
listen: abc
smtp:
  timeout: 30
  unknwn: 1
log:
  level: loud
`)
	_, err := Load(path, []string{
		"IDP_TOKENS_CODE_TTL=1h",
		"IDP_PASSWORD_HASH_ITERATIONS=two",
		"IDP_SESSION_IDLE_TIMEOUT=24h",
		"IDP_TYPO=1",
	})
	ps := problemsOf(t, err)
	requireProblem(t, ps, "smtp.timeout", "line 4", `"30" is not a duration`, `"30s"`)
	requireProblem(t, ps, "smtp.unknwn", "unknown key", "line 5")
	requireProblem(t, ps, "password.hash.iterations", "IDP_PASSWORD_HASH_ITERATIONS", "not an integer")
	requireProblem(t, ps, "IDP_TYPO", "unknown environment variable")
	requireProblem(t, ps, "listen", `"abc" is not host:port`)
	requireProblem(t, ps, "log.level", `"loud" must be one of debug, info, warn, error`)
	requireProblem(t, ps, "tokens.code_ttl", "between 1s and 10m")
	requireProblem(t, ps, "session.idle_timeout", "must not exceed session.absolute_timeout")
	if len(ps) != 8 {
		t.Errorf("want 8 problems, got %d:\n%v", len(ps), err)
	}
	// Error() puts one "key: why" per line.
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(ps) {
		t.Fatalf("Error() has %d lines for %d problems:\n%s", len(lines), len(ps), err)
	}
	for i, p := range ps {
		if lines[i] != p.Key+": "+p.Message {
			t.Errorf("line %d = %q, want %q", i, lines[i], p.Key+": "+p.Message)
		}
	}
}

func TestFileShapeProblems(t *testing.T) {
	cases := []struct {
		name, content, key string
		fragments          []string
	}{
		{"syntax error", "issuer: [unclosed\n", "", []string{"idp.yaml"}},
		{"not a mapping", "- a\n- b\n", "", []string{"expected a mapping"}},
		{"two documents", "issuer: http://localhost\n---\nlisten: :80\n", "", []string{"only one YAML document"}},
		{"section given a value", "smtp: smtp.example.fr:25\n", "smtp", []string{"line 1", "expected keys under smtp"}},
		{"leaf given a mapping", "listen:\n  host: x\n", "listen", []string{"line 2", "expected a single value"}},
		{"list given a scalar", "http:\n  trusted_proxies: 10.0.0.1\n", "http.trusted_proxies", []string{"expected a list"}},
		{"list with a comma item", "http:\n  trusted_proxies: [\"10.0.0.1,10.0.0.2\"]\n", "http.trusted_proxies", []string{"single values"}},
		{"duplicate key", "log:\n  level: info\n  level: debug\n", "log.level", []string{"set twice", "lines 2 and 3"}},
		{"bool", "smtp:\n  starttls: maybe\n", "smtp.starttls", []string{`"maybe" is not true or false`}},
		{"int", "captcha:\n  length: 5.5\n", "captcha.length", []string{"not an integer"}},
		{"int given null", "captcha:\n  length:\n", "captcha.length", []string{"no value"}},
		{"bad duration", "mail:\n  give_up_after: tomorrow\n", "mail.give_up_after", []string{"is not a duration"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, c.content), nil)
			requireProblem(t, problemsOf(t, err), c.key, c.fragments...)
		})
	}
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil)
	requireProblem(t, problemsOf(t, err), "", "reading the configuration file")
}

func TestFileEdgeCases(t *testing.T) {
	for name, content := range map[string]string{
		"empty":          "",
		"comments only":  "# nothing here\n",
		"null document":  "---\n",
		"empty sections": "smtp:\nlog:\n",
	} {
		cfg, err := Load(writeConfig(t, content), nil)
		if err != nil || !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("%s: %v; config differs from defaults: %v", name, err, !reflect.DeepEqual(cfg, Default()))
		}
	}
	// A null string clears it; aliases resolve.
	cfg, err := Load(writeConfig(t, "smtp:\n  helo: &h mail.example.fr\nmail:\n  from: ~\ntls:\n  cert_file: \"\"\nlisten: *h\n"), nil)
	if cfg.SMTP.Helo != "mail.example.fr" || cfg.Mail.From != "" {
		t.Errorf("helo %q, from %q", cfg.SMTP.Helo, cfg.Mail.From)
	}
	ps := problemsOf(t, err)
	requireProblem(t, ps, "mail.from", "is not a mail address")
	requireProblem(t, ps, "listen", `"mail.example.fr" is not host:port`)
}

func TestSecretsNeverEchoed(t *testing.T) {
	const password = "hunter2-very-secret"
	_, err := Load("", []string{
		"IDP_DATABASE_URL=mysql://admin:" + password + "@db/idp",
		"IDP_SECRETS_CRYPTO_KEY=" + password,
		"IDP_SMTP_PASSWORD=" + password,
	})
	ps := problemsOf(t, err)
	requireProblem(t, ps, "database_url", "must be sqlite:PATH or a postgres:// URL")
	requireProblem(t, ps, "secrets.crypto_key", "base64")
	if strings.Contains(err.Error(), password) {
		t.Fatalf("a secret appears in the error:\n%v", err)
	}
}

func TestEveryKeyLoadsFromFileAndEnv(t *testing.T) {
	ref := Reference()
	// A file spelling out every default must load to exactly Default():
	// every key is accepted by the file loader and the defaults shown by
	// Reference are the real ones.
	var b strings.Builder
	var section []string
	for _, e := range ref {
		parts := strings.Split(e.Key, ".")
		parents := parts[:len(parts)-1]
		common := 0
		for common < len(parents) && common < len(section) && parents[common] == section[common] {
			common++
		}
		for i := common; i < len(parents); i++ {
			b.WriteString(strings.Repeat("  ", i) + parents[i] + ":\n")
		}
		section = parents
		value := "\"" + strings.ReplaceAll(e.Default, "\"", "\\\"") + "\""
		if strings.HasSuffix(e.Key, "trusted_proxies") {
			value = "[]"
		}
		b.WriteString(strings.Repeat("  ", len(parents)) + parts[len(parts)-1] + ": " + value + "\n")
	}
	cfg, err := Load(writeConfig(t, b.String()), nil)
	if err != nil {
		t.Fatalf("%v\nfile:\n%s", err, b.String())
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("file of all defaults loaded as\n%+v\nfile:\n%s", cfg, b.String())
	}
	// Same through the environment.
	var environ []string
	for _, e := range ref {
		environ = append(environ, e.Env+"="+e.Default)
	}
	cfg, err = Load("", environ)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("environment of all defaults loaded as\n%+v", cfg)
	}
}
