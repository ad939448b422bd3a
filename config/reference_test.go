package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// countLeaves counts Config's leaf fields independently of leaves().
func countLeaves(t reflect.Type) int {
	n := 0
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
			n += countLeaves(f.Type)
		} else {
			n++
		}
	}
	return n
}

func TestReferenceCoversEveryLeaf(t *testing.T) {
	ref := Reference()
	if want := countLeaves(reflect.TypeFor[Config]()); len(ref) != want {
		t.Fatalf("Reference has %d entries, Config has %d leaf fields (is a yaml tag missing?)", len(ref), want)
	}
	keys, envs := map[string]bool{}, map[string]bool{}
	for _, e := range ref {
		if e.Key == "" || e.Description == "" {
			t.Errorf("entry %+v lacks a key or a description", e)
		}
		if e.Env != "IDP_"+strings.ToUpper(strings.ReplaceAll(e.Key, ".", "_")) {
			t.Errorf("%s: env %s", e.Key, e.Env)
		}
		if keys[e.Key] || envs[e.Env] {
			t.Errorf("%s / %s appears twice", e.Key, e.Env)
		}
		keys[e.Key], envs[e.Env] = true, true
		if strings.HasPrefix(e.Env, envTestPrefix) || e.Env == EnvConfigFile {
			t.Errorf("%s collides with a reserved variable", e.Env)
		}
	}
	byKey := map[string]Entry{}
	for _, e := range ref {
		byKey[e.Key] = e
	}
	spot := []Entry{
		{Key: "smtp.addr", Env: "IDP_SMTP_ADDR", Default: ""},
		{Key: "captcha.test_answer", Env: "IDP_CAPTCHA_TEST_ANSWER", Default: ""},
		{Key: "issuer", Env: "IDP_ISSUER", Default: "http://localhost:8080"},
		{Key: "tokens.refresh_ttl", Env: "IDP_TOKENS_REFRESH_TTL", Default: "720h"},
		{Key: "tokens.code_ttl", Env: "IDP_TOKENS_CODE_TTL", Default: "1m"},
		{Key: "smtp.timeout", Env: "IDP_SMTP_TIMEOUT", Default: "30s"},
		{Key: "keys.rotation_period", Env: "IDP_KEYS_ROTATION_PERIOD", Default: "2160h"},
		{Key: "password.hash.memory_kib", Env: "IDP_PASSWORD_HASH_MEMORY_KIB", Default: "19456"},
		{Key: "password.policy.require_lowercase", Env: "IDP_PASSWORD_POLICY_REQUIRE_LOWERCASE", Default: "true"},
		{Key: "mail.from", Env: "IDP_MAIL_FROM", Default: "Portail Extranet <no-reply@localhost>"},
		{Key: "http.trusted_proxies", Env: "IDP_HTTP_TRUSTED_PROXIES", Default: ""},
		{Key: "login.relogin_after_change", Env: "IDP_LOGIN_RELOGIN_AFTER_CHANGE", Default: "false"},
	}
	for _, want := range spot {
		got, ok := byKey[want.Key]
		if !ok || got.Env != want.Env || got.Default != want.Default {
			t.Errorf("entry %q = %+v, want env %s default %q", want.Key, got, want.Env, want.Default)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 90 * time.Second: "1m30s", 30 * time.Second: "30s", 2 * time.Hour: "2h", 90 * time.Minute: "90m",
		1500 * time.Millisecond: "1.5s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(formatDuration(d)); err != nil || back != d {
			t.Errorf("%q does not parse back to %v", formatDuration(d), d)
		}
	}
}
