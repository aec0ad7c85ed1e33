package render

import (
	"encoding/json"
	"fmt"
)

// RestoreSecrets makes an instance's config.json from its redacted form
// (Spec.Redacted) and its current config (the same instance's Spec.Config
// as rendered now): every value the redacted form shows as Sensitive — a
// secret param, the broker password — is taken from current; the rest is
// the redacted form's. It lets a revision be kept without its secrets
// (the daemon's rollout records) and run again with today's. ok is false
// when current lacks one of them: the config cannot be made whole.
func RestoreSecrets(redacted, current []byte) (config []byte, ok bool, err error) {
	var r, c configDoc
	if err := json.Unmarshal(redacted, &r); err != nil {
		return nil, false, fmt.Errorf("redacted config: %w", err)
	}
	if len(current) > 0 {
		if err := json.Unmarshal(current, &c); err != nil {
			return nil, false, fmt.Errorf("current config: %w", err)
		}
	}
	sensitive, _ := json.Marshal(Sensitive)
	for name, raw := range r.Params {
		if string(raw) != string(sensitive) {
			continue
		}
		v, have := c.Params[name]
		if !have {
			return nil, false, nil
		}
		r.Params[name] = v
	}
	if r.Broker.Password == Sensitive {
		if c.Broker.Password == "" {
			return nil, false, nil
		}
		r.Broker.Password = c.Broker.Password
	}
	config, err = marshalConfig(r)
	return config, err == nil, err
}
