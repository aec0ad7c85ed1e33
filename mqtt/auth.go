package mqtt

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/plugs-dev/plugs/internal/atomicfile"
)

// The fixed account names of the embedded broker. An instance's account is
// named "<plug>/<instance>" (plug and instance names never hold a '/', so
// the three kinds never collide).
const (
	DaemonUsername = "plugs"
	ReaderUsername = "reader"
)

// Files of the broker credentials directory (<state>/broker, mode 0700).
const (
	authKeyFile        = "key"             // the secret every password is derived from, mode 0600
	readerPasswordFile = "reader.password" // the reader account's password, for operators' subscribers
)

// Role is what an account of the embedded broker may do; the rules are
// aclRules.
type Role int

// The roles of the embedded broker's accounts.
const (
	RoleNone     Role = iota // not an account: refused
	RoleDaemon               // the plugs daemon: writes status, reconcile and state topics
	RoleReader               // operators' subscribers and dashboards: read everything, write nothing
	RoleInstance             // one instance: writes its own data topic, reads its own topics
	RoleCaller               // task callers: write exec topics, read replies (mqtt/exec.go)
)

// Account is an authenticated client of the embedded broker.
type Account struct {
	Role           Role
	Plug, Instance string // RoleInstance only
}

// Auth holds the embedded broker's credentials: one secret key, from which
// every account's password is derived (HMAC-SHA256 of the account name), so
// that the broker checks a login without a table and a restarted daemon
// hands every instance the same password again.
type Auth struct {
	key []byte
}

// NewAuth returns an Auth for key (at least 16 bytes).
func NewAuth(key []byte) (*Auth, error) {
	if len(key) < 16 {
		return nil, errors.New("broker key too short")
	}
	return &Auth{key: append([]byte(nil), key...)}, nil
}

// LoadAuth reads the broker key of dir (the state directory's broker/),
// creating dir (0700) and a random key (0600) the first time, so that a
// restarted daemon keeps its credentials. It also (re)writes
// reader.password (0600) for the operator's subscribers.
func LoadAuth(dir string) (*Auth, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	path := filepath.Join(dir, authKeyFile)
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("broker credentials: %w", err)
		}
		raw = []byte(hex.EncodeToString(b) + "\n")
		if err := writeSecretFile(path, raw); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("broker credentials %s: not a hex key (delete it to make a new one)", path)
	}
	a, err := NewAuth(key)
	if err != nil {
		return nil, fmt.Errorf("broker credentials %s: %w (delete it to make a new one)", path, err)
	}
	_, pw := a.Reader()
	if err := writeSecretFile(filepath.Join(dir, readerPasswordFile), []byte(pw+"\n")); err != nil {
		return nil, err
	}
	_, pw = a.Caller()
	if err := writeSecretFile(CallerPasswordPath(dir), []byte(pw+"\n")); err != nil {
		return nil, err
	}
	return a, nil
}

// ReadAuth reads the broker key of dir that LoadAuth made, without
// creating anything: for commands that run beside a daemon (plugs setup).
func ReadAuth(dir string) (*Auth, error) {
	raw, err := os.ReadFile(filepath.Join(dir, authKeyFile))
	if err != nil {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("broker credentials %s: not a hex key", dir)
	}
	return NewAuth(key)
}

// ReaderPasswordPath is the file LoadAuth(dir) keeps the reader account's
// password in.
func ReaderPasswordPath(dir string) string { return filepath.Join(dir, readerPasswordFile) }

// writeSecretFile writes b to path atomically, mode 0600 from its creation
// (internal/atomicfile), unless path is already a regular 0600 file that
// holds b: a daemon restarted on a full disk must not fail on rewriting
// the same password (nothing would run).
func writeSecretFile(path string, b []byte) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == 0o600 && fi.Size() == int64(len(b)) {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
			return nil
		}
	}
	if err := atomicfile.Write(path, b, 0o600, atomicfile.Durable); err != nil {
		return fmt.Errorf("broker credentials: %w", err)
	}
	return nil
}

// password derives the password of an account name.
func (a *Auth) password(username string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte("plugs-broker-account\x00" + username))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// Daemon returns the daemon's own credentials.
func (a *Auth) Daemon() (username, password string) {
	return DaemonUsername, a.password(DaemonUsername)
}

// Reader returns the read-only account's credentials.
func (a *Auth) Reader() (username, password string) {
	return ReaderUsername, a.password(ReaderUsername)
}

// Instance returns the credentials of one instance, which config.json hands
// it (broker.username, broker.password).
func (a *Auth) Instance(plug, instance string) (username, password string) {
	u := plug + "/" + instance
	return u, a.password(u)
}

// Check returns the account a login names, or RoleNone when the password is
// wrong or the name is no account.
func (a *Auth) Check(username, password string) Account {
	acct := accountOf(username)
	if acct.Role == RoleNone || !hmac.Equal([]byte(password), []byte(a.password(username))) {
		return Account{}
	}
	return acct
}

// accountOf is the account a user name names, unauthenticated.
func accountOf(username string) Account {
	switch username {
	case DaemonUsername:
		return Account{Role: RoleDaemon}
	case ReaderUsername:
		return Account{Role: RoleReader}
	case CallerUsername:
		return Account{Role: RoleCaller}
	}
	plug, inst, ok := strings.Cut(username, "/")
	if !ok || plug == "" || inst == "" || strings.Contains(inst, "/") {
		return Account{}
	}
	return Account{Role: RoleInstance, Plug: plug, Instance: inst}
}
