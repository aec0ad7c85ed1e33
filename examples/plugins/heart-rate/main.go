// Command heart-rate is an example plugs plugin: a simulated heart-rate strap
// that publishes one Open mHealth heart-rate 2.0 data point every interval to
// the data topic plugs gives it.
//
// It reads everything from the file named by $PLUGS_CONFIG, logs to stderr,
// and disconnects cleanly on SIGTERM. It never logs the broker password or
// the token param.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, logger); err != nil {
		fmt.Fprintln(os.Stderr, "heart-rate:", err)
		os.Exit(1)
	}
}

// Config is the part of the config.json plugs renders that this plugin uses.
type Config struct {
	UUID     string `json:"uuid"`
	Plug     string `json:"plug"`
	Instance string `json:"instance"`
	Version  string `json:"version"`
	Revision string `json:"revision"`
	Broker   struct {
		URL      string `json:"url"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"broker"`
	Topics struct {
		Data  string `json:"data"`
		State string `json:"state"`
	} `json:"topics"`
	Params Params `json:"params"`
}

// Params are the params declared in plugin.hcl.
type Params struct {
	DeviceID    string  `json:"device_id"`
	Interval    string  `json:"interval"`
	Token       string  `json:"token"`
	BaselineBPM float64 `json:"baseline_bpm"`
}

// loadConfig reads and checks the config file named by $PLUGS_CONFIG.
func loadConfig() (*Config, time.Duration, error) {
	path := os.Getenv("PLUGS_CONFIG")
	if path == "" {
		return nil, 0, errors.New("PLUGS_CONFIG is not set: run this plugin under plugs")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read config: %w", err)
	}
	cfg := &Config{Params: Params{Interval: "5s", BaselineBPM: 70}}
	if err := json.Unmarshal(b, cfg); err != nil {
		return nil, 0, fmt.Errorf("decode config %s: %w", path, err)
	}
	var problems []string
	if cfg.Broker.URL == "" {
		problems = append(problems, "broker.url is empty")
	}
	if cfg.Topics.Data == "" {
		problems = append(problems, "topics.data is empty")
	}
	if cfg.Params.DeviceID == "" {
		problems = append(problems, "param device_id is required")
	}
	interval, err := time.ParseDuration(cfg.Params.Interval)
	if err != nil || interval <= 0 {
		problems = append(problems, fmt.Sprintf("param interval %q is not a positive duration", cfg.Params.Interval))
	}
	if cfg.Params.BaselineBPM < 30 || cfg.Params.BaselineBPM > 220 {
		problems = append(problems, fmt.Sprintf("param baseline_bpm %v is outside 30..220", cfg.Params.BaselineBPM))
	}
	if len(problems) > 0 {
		return nil, 0, fmt.Errorf("config %s: %s", path, strings.Join(problems, "; "))
	}
	return cfg, interval, nil
}

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, interval, err := loadConfig()
	if err != nil {
		return err
	}
	logger = logger.With("plug", cfg.Plug, "instance", cfg.Instance, "device_id", cfg.Params.DeviceID)

	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker.URL).
		SetClientID(clientID(cfg)).
		SetUsername(cfg.Broker.Username).
		SetPassword(cfg.Broker.Password).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true). // a broker that starts later is waited for, not fatal
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetOrderMatters(false).
		SetOnConnectHandler(func(mqtt.Client) {
			logger.Info("connected to broker", "url", cfg.Broker.URL)
			sdNotify("READY=1\nSTATUS=connected to broker") // readiness: the notify check of plugin.hcl
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { logger.Warn("connection lost", "err", err) })
	client := mqtt.NewClient(opts)
	client.Connect() // with ConnectRetry the token completes once connected; publishes queue meanwhile
	defer client.Disconnect(250)

	sim := newSimulator(cfg.Params.BaselineBPM, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	logger.Info("heart-rate started", "interval", interval, "topic", cfg.Topics.Data,
		"token_set", cfg.Params.Token != "")

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		now := time.Now()
		bpm := sim.next()
		payload, err := json.Marshal(newDataPoint(cfg, bpm, now))
		if err != nil {
			return fmt.Errorf("encode data point: %w", err)
		}
		tok := client.Publish(cfg.Topics.Data, 1, false, payload)
		// Wait for the broker's PUBACK, but never longer than one interval or past a stop.
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				logger.Warn("publish failed", "err", err)
			} else {
				logger.Info("published", "heart_rate", bpm)
			}
		case <-ticker.C:
			logger.Warn("publish not acknowledged within one interval")
			continue
		case <-ctx.Done():
			logger.Info("stopping")
			return nil
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			logger.Info("stopping")
			return nil
		}
	}
}

// clientID is unique per instance, so two instances never kick each other off.
func clientID(cfg *Config) string {
	if cfg.UUID != "" {
		return "heart-rate-" + cfg.UUID
	}
	return fmt.Sprintf("heart-rate-%s-%s-%d", cfg.Plug, cfg.Instance, os.Getpid())
}
