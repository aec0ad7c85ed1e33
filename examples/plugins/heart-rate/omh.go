package main

import (
	"crypto/rand"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"time"
)

// DataPoint is an Open mHealth data point: a header 1.2 and a heart-rate 2.0 body.
type DataPoint struct {
	Header Header `json:"header"`
	Body   Body   `json:"body"`
}

// Header is an Open mHealth header 1.2.
type Header struct {
	ID                    string     `json:"id"`
	CreationDateTime      string     `json:"creation_date_time"`
	SchemaID              SchemaID   `json:"schema_id"`
	AcquisitionProvenance Provenance `json:"acquisition_provenance"`
	UserID                string     `json:"user_id,omitempty"`
}

// SchemaID names the schema of the body.
type SchemaID struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Version   string `json:"version"`
}

// Provenance says where the data point comes from.
type Provenance struct {
	SourceName             string `json:"source_name"`
	SourceCreationDateTime string `json:"source_creation_date_time,omitempty"`
	Modality               string `json:"modality"`
}

// Body is an Open mHealth heart-rate 2.0 body.
type Body struct {
	HeartRate          UnitValue `json:"heart_rate"`
	EffectiveTimeFrame TimeFrame `json:"effective_time_frame"`
}

// UnitValue is a number with its unit.
type UnitValue struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// TimeFrame is a point in time.
type TimeFrame struct {
	DateTime string `json:"date_time"`
}

const omhTime = "2006-01-02T15:04:05.000Z07:00"

func newDataPoint(cfg *Config, bpm float64, at time.Time) DataPoint {
	ts := at.UTC().Format(omhTime)
	return DataPoint{
		Header: Header{
			ID:               newUUID(),
			CreationDateTime: ts,
			SchemaID:         SchemaID{Namespace: "omh", Name: "heart-rate", Version: "2.0"},
			AcquisitionProvenance: Provenance{
				SourceName:             "plugs heart-rate simulator, device " + cfg.Params.DeviceID,
				SourceCreationDateTime: ts,
				Modality:               "sensed",
			},
			UserID: cfg.Instance,
		},
		Body: Body{
			HeartRate:          UnitValue{Value: bpm, Unit: "beats/min"},
			EffectiveTimeFrame: TimeFrame{DateTime: ts},
		},
	}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// simulator is a bounded random walk around a resting heart rate.
type simulator struct {
	baseline, current float64
	rng               *mrand.Rand
}

func newSimulator(baseline float64, rng *mrand.Rand) *simulator {
	return &simulator{baseline: baseline, current: baseline, rng: rng}
}

// next returns the next whole-number heart rate: a step of up to ±3 bpm,
// pulled back towards the baseline, kept within ±25 bpm of it.
func (s *simulator) next() float64 {
	s.current += (s.rng.Float64()*2-1)*3 + (s.baseline-s.current)*0.1
	s.current = math.Max(s.baseline-25, math.Min(s.baseline+25, s.current))
	return math.Round(s.current)
}
