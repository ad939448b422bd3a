package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/config"
)

// selfSigned makes a certificate for 127.0.0.1 that is its own root.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), cert
}

// replaceFile writes data aside then renames it over path, as certificate
// renewal tools do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedCertificate connects and returns the certificate the server showed.
func servedCertificate(t *testing.T, addr string, roots *x509.CertPool) (*x509.Certificate, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// TestNativeTLSReloadsCertificate: `idp serve` with IDP_TLS_CERT_FILE and
// IDP_TLS_KEY_FILE serves https with that certificate (and HSTS, the issuer
// being https); when the files are replaced, the next handshake after the
// reload check shows the new certificate, without a restart. A broken
// replacement keeps the previous certificate in service.
func TestNativeTLSReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert1PEM, key1PEM, cert1 := selfSigned(t, "first")
	cert2PEM, key2PEM, cert2 := selfSigned(t, "second")
	replaceFile(t, certFile, cert1PEM)
	replaceFile(t, keyFile, key1PEM)
	roots := x509.NewCertPool()
	roots.AddCert(cert1)
	roots.AddCert(cert2)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := config.Load("", []string{
		"IDP_ISSUER=https://" + addr, "IDP_LISTEN=" + addr,
		"IDP_DATABASE_URL=" + sqliteURL(t), "IDP_DATA_DIR=" + filepath.Join(dir, "data"),
		"IDP_TLS_CERT_FILE=" + certFile, "IDP_TLS_KEY_FILE=" + keyFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := newServer(context.Background(), c, time.Now, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.store.Close()
	srv.certCheckEvery = 50 * time.Millisecond // instead of 10 s
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.run(ctx, io.Discard) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	var got *x509.Certificate
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, err = servedCertificate(t, addr, roots); err == nil {
			break
		}
	}
	if err != nil || !got.Equal(cert1) {
		t.Fatalf("first certificate: %s, %v", subject(got), err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Get("https://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Fatalf("https /readyz: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}

	// A broken certificate file: the first one stays in service.
	replaceFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"))
	time.Sleep(100 * time.Millisecond)
	if got, err := servedCertificate(t, addr, roots); err != nil || !got.Equal(cert1) {
		t.Fatalf("after a broken renewal: %s, %v", subject(got), err)
	}
	if !strings.Contains(logs.String(), "tls certificate reload failed") {
		t.Errorf("the failed reload was not logged")
	}

	// The renewal: key and certificate replaced.
	replaceFile(t, keyFile, key2PEM)
	replaceFile(t, certFile, cert2PEM)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, err = servedCertificate(t, addr, roots); err == nil && got.Equal(cert2) {
			break
		}
	}
	if err != nil || !got.Equal(cert2) {
		t.Fatalf("after the renewal the server shows %s (%v), want the second certificate", subject(got), err)
	}
	if !strings.Contains(logs.String(), "tls certificate reloaded") {
		t.Errorf("the reload was not logged")
	}
}

func subject(c *x509.Certificate) string {
	if c == nil {
		return "no certificate"
	}
	return c.Subject.CommonName
}
