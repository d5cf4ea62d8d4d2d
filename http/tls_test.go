package http_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a pool
// that trusts it.
func selfSigned(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tidings test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// WithTLS makes the server speak HTTPS with cert.
func WithTLS(cert tls.Certificate) Option {
	return func(s *TestServer) { s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}} }
}

// sessionCookieOf logs bob in with client, optionally with an
// X-Forwarded-Proto header, and returns the session cookie it was given.
func sessionCookieOf(tb testing.TB, s *TestServer, client *http.Client, proto string) *http.Cookie {
	tb.Helper()
	req := s.NewRequest(tb, "POST", "/api/v1/login", "", map[string]any{"login": "bob", "password": "password1"})
	if proto != "" {
		req.Header.Set("X-Forwarded-Proto", proto)
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("login: status %d", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "tidings_session" {
			return c
		}
	}
	tb.Fatalf("login set no session cookie: %q", resp.Header.Values("Set-Cookie"))
	return nil
}

func mustBeSessionCookie(tb testing.TB, c *http.Cookie, secure bool, how string) {
	tb.Helper()
	if c.Secure != secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		tb.Fatalf("%s: cookie Secure=%v HttpOnly=%v SameSite=%v; want Secure=%v, HttpOnly, SameSite=Lax",
			how, c.Secure, c.HttpOnly, c.SameSite, secure)
	}
}

// TestHTTPSAndTheSecureCookie: over HTTPS the session cookie is Secure and
// keeps the session working over the same HTTPS; logging out clears it
// with a Secure cookie too.
func TestHTTPSAndTheSecureCookie(t *testing.T) {
	cert, pool := selfSigned(t)
	s := MustOpenServer(t, WithTLS(cert))
	s.MustCreateUser(t, "bob", false)
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL() = %q, want https://", s.URL())
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	mustBeSessionCookie(t, sessionCookieOf(t, s, client, ""), true, "login over HTTPS")

	c := &Client{s: s, client: client}
	var me struct{ User struct{ Login string } }
	c.MustDo(t, "GET", "/api/v1/me", nil, http.StatusOK, &me)
	if me.User.Login != "bob" {
		t.Fatalf("/me over HTTPS is %q, want bob", me.User.Login)
	}
	req := s.NewRequest(t, "POST", "/api/v1/logout", "", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: status %d", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "tidings_session" && !ck.Secure {
			t.Fatal("logout over HTTPS clears the cookie without Secure")
		}
	}

	// A plain-HTTP client on the HTTPS port gets nowhere.
	if resp, err := http.Get(strings.Replace(s.URL(), "https://", "http://", 1) + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP was answered on the HTTPS port")
		}
	}
}

// TestSecureCookieBehindProxies: over plain HTTP the cookie is not Secure,
// unless a trusted proxy says with X-Forwarded-Proto that the client came
// over HTTPS; the same header from anyone else changes nothing.
func TestSecureCookieBehindProxies(t *testing.T) {
	plain := MustOpenServer(t)
	plain.MustCreateUser(t, "bob", false)
	mustBeSessionCookie(t, sessionCookieOf(t, plain, http.DefaultClient, ""), false, "plain HTTP")
	mustBeSessionCookie(t, sessionCookieOf(t, plain, http.DefaultClient, "https"), false, "X-Forwarded-Proto from an untrusted peer")

	proxied := MustOpenServer(t, WithTrustedProxies("127.0.0.1/32"))
	proxied.MustCreateUser(t, "bob", false)
	mustBeSessionCookie(t, sessionCookieOf(t, proxied, http.DefaultClient, "https"), true, "X-Forwarded-Proto: https from a trusted proxy")
	mustBeSessionCookie(t, sessionCookieOf(t, proxied, http.DefaultClient, "http"), false, "X-Forwarded-Proto: http from a trusted proxy")
	mustBeSessionCookie(t, sessionCookieOf(t, proxied, http.DefaultClient, ""), false, "a trusted proxy without the header")
}
