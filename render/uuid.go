package render

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strings"
)

// uuid is an RFC 9562 UUID. Only name-based (v5) ones are made here: a
// UUID library would pull the net package in (for node ids), which this
// package must not import.
type uuid [16]byte

// nameSpaceURL is the RFC 9562 namespace of URLs.
var nameSpaceURL = uuid{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// plugsNamespace is the namespace of instances whose manifest has no uuid.
var plugsNamespace = newSHA1UUID(nameSpaceURL, "https://github.com/plugs-dev/plugs")

// newSHA1UUID is the version 5 UUID of name within space.
func newSHA1UUID(space uuid, name string) uuid {
	h := sha1.New()
	h.Write(space[:])
	h.Write([]byte(name))
	var u uuid
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC variant
	return u
}

// parseUUID reads the canonical form, with or without dashes, braces or
// a urn:uuid: prefix.
func parseUUID(s string) (uuid, error) {
	s = strings.TrimPrefix(strings.ToLower(s), "urn:uuid:")
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	s = strings.ReplaceAll(s, "-", "")
	var u uuid
	if len(s) != 32 {
		return u, errors.New("invalid uuid length")
	}
	if _, err := hex.Decode(u[:], []byte(s)); err != nil {
		return u, errors.New("invalid uuid")
	}
	return u, nil
}

func (u uuid) String() string {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return string(buf[:])
}
