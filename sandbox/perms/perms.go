// Package perms reads the permissions a plugin declares (MobileOps
// "permissions", the plug's sandbox block) into grants. It is pure: package
// spec checks them with it, package sandbox enforces them.
package perms

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Grants is what a set of permissions adds to an instance's defaults.
type Grants struct {
	Read  []string // absolute paths, read-only (and executable)
	Write []string // absolute paths, read-write
	// Connect and Bind are TCP ports the instance may connect to and
	// listen on, beyond its MQTT broker.
	Connect, Bind []uint16
	// AnyNetwork lifts every network restriction ("network", "network.*").
	AnyNetwork bool
	// Devices are device paths (globs, expanded at each start) the
	// instance may read, write and ioctl.
	Devices []string
	// Groups are supplementary groups the permissions imply (dialout for
	// serial ports); a group this host lacks is skipped.
	Groups []string
}

// Parse reads MobileOps-style permission strings:
//
//	filesystem.read:/data    read (and execute) files under /data
//	filesystem.write:/tmp    read and write under /tmp
//	network.tcp:8080         connect to and listen on TCP port 8080
//	network.http             connect to TCP ports 80 and 443
//	network.https            connect to TCP port 443
//	network.mqtt             the broker (always granted)
//	network, network.*       any network access
//	mqtt, mqtt:publish, ...  the broker (always granted)
//	serial                   serial ports (/dev/ttyUSB*, ttyACM*, ttyS*, ttyAMA*) and group dialout
//	gpio                     /dev/gpiochip*, /dev/gpiomem, /sys/class/gpio and group gpio
//	bluetooth                group bluetooth
//
// It returns the grants of the permissions it understands and one problem
// per permission it does not (each a sentence naming it).
func Parse(perms []string) (Grants, []string) {
	var g Grants
	var problems []string
	for _, p := range perms {
		kind, arg, hasArg := strings.Cut(strings.TrimSpace(p), ":")
		if kind == "mqtt" && hasArg {
			kind = "mqtt." + arg // mqtt:publish, mqtt:subscribe
		}
		switch kind {
		case "filesystem.read", "filesystem.write":
			if !hasArg || !filepath.IsAbs(arg) {
				problems = append(problems, fmt.Sprintf("permission %q needs an absolute path after the colon, e.g. %q", p, kind+":/data"))
				continue
			}
			arg = filepath.Clean(arg)
			if kind == "filesystem.read" {
				g.Read = appendNew(g.Read, arg)
			} else {
				g.Write = appendNew(g.Write, arg)
			}
		case "network.tcp", "network.tcp.connect", "network.tcp.listen":
			port, err := strconv.ParseUint(arg, 10, 16)
			if !hasArg || err != nil || port == 0 {
				problems = append(problems, fmt.Sprintf("permission %q needs a TCP port (1-65535) after the colon, e.g. %q", p, kind+":8080"))
				continue
			}
			if kind != "network.tcp.listen" {
				g.Connect = appendNew(g.Connect, uint16(port))
			}
			if kind != "network.tcp.connect" {
				g.Bind = appendNew(g.Bind, uint16(port))
			}
		case "network.http":
			g.Connect = appendNew(appendNew(g.Connect, 80), 443)
		case "network.https":
			g.Connect = appendNew(g.Connect, 443)
		case "network.mqtt", "mqtt", "mqtt.publish", "mqtt.subscribe":
		case "network", "network.*", "network.any":
			g.AnyNetwork = true
		case "serial":
			g.Devices = append(g.Devices, "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyS*", "/dev/ttyAMA*", "/dev/serial")
			g.Groups = appendNew(g.Groups, "dialout")
		case "gpio":
			g.Devices = append(g.Devices, "/dev/gpiochip*", "/dev/gpiomem")
			g.Write = appendNew(g.Write, "/sys/class/gpio")
			g.Groups = appendNew(g.Groups, "gpio")
		case "bluetooth":
			g.Groups = appendNew(g.Groups, "bluetooth")
		default:
			problems = append(problems, fmt.Sprintf("permission %q is not one plugs knows (filesystem.read:PATH, filesystem.write:PATH, network.tcp:PORT, network.http, network.https, network, mqtt, serial, gpio, bluetooth)", p))
		}
	}
	slices.Sort(g.Connect)
	slices.Sort(g.Bind)
	return g, problems
}

func appendNew[T comparable](s []T, v T) []T {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
