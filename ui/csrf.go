package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
)

// csrfCookie holds a random per-browser value; a form carries its HMAC
// under the server's key (a signed double submit), so that a page of
// another origin can neither read nor forge it. Cross-origin requests are
// also refused by their Sec-Fetch-Site and Origin headers
// (http.CrossOriginProtection) before the token is looked at.
const (
	csrfCookie = "plugs_csrf"
	csrfField  = "csrf"
)

// csrfToken returns the token forms of this request carry, setting the
// cookie when the browser has none yet.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) != 26 {
		c = &http.Cookie{
			Name: csrfCookie, Value: rand.Text(), Path: "/",
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
		}
		http.SetCookie(w, c)
	}
	return s.sign(c.Value)
}

func (s *Server) sign(v string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("csrf\x00" + v))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// checkCSRF reports whether a state-changing request carries the token of
// its cookie.
func (s *Server) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) != 26 {
		return false
	}
	got := r.PostFormValue(csrfField)
	return hmac.Equal([]byte(got), []byte(s.sign(c.Value)))
}
