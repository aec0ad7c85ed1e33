package chaos

import "time"

// Size is how hard the chaos suite pushes.
type Size struct {
	Name string
	// DaemonKills is how often the daemon is SIGKILLed and restarted while
	// FlapPlugs plugs of two instances each flap.
	DaemonKills int
	FlapPlugs   int
	// Saves plugs.hcl saves are written within SaveWindow.
	Saves      int
	SaveWindow time.Duration
	// Flood is how long a plugin floods its output.
	Flood time.Duration
	// BrokerOutages is how often the MQTT broker is killed and restarted.
	BrokerOutages int
	// ClockSteps is how many crashes the clock test steps the clock back in.
	ClockSteps int
}

// ShortSize is the configuration of `go test ./chaos/`: every test, small.
func ShortSize() Size {
	return Size{
		Name:          "short",
		DaemonKills:   5,
		FlapPlugs:     2,
		Saves:         100,
		SaveWindow:    time.Second,
		Flood:         5 * time.Second,
		BrokerOutages: 1,
		ClockSteps:    3,
	}
}

// FullSize is the configuration of issue 7, for `make chaos`.
func FullSize() Size {
	return Size{
		Name:          "full",
		DaemonKills:   20,
		FlapPlugs:     4,
		Saves:         100,
		SaveWindow:    time.Second,
		Flood:         60 * time.Second,
		BrokerOutages: 3,
		ClockSteps:    5,
	}
}

// Selected is the size the build asks for (the chaos build tag selects
// FullSize), unless env, the value of PLUGS_CHAOS, is "full" or "short".
func Selected(env string) Size {
	switch {
	case env == "full":
		return FullSize()
	case env == "short":
		return ShortSize()
	case fullByDefault:
		return FullSize()
	}
	return ShortSize()
}
