package task

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// APIError is the body of an error answer of the task API; Kind is
// "input", "not_found", "busy" or "env".
type APIError struct {
	Kind    string `json:"kind"`
	Message string `json:"error"`
	// RetryAfter (seconds) is set with kind "busy".
	RetryAfter int `json:"retry_after,omitempty"`
}

func (e *APIError) Error() string { return e.Message }

// TaskInfo is one entry of GET /v1/tasks.
type TaskInfo struct {
	Plug     string   `json:"plug"`
	Instance string   `json:"instance"`
	Running  int      `json:"running"`
	Queued   int      `json:"queued"`
	Schedule []string `json:"schedule,omitempty"`
	LastRun  *Result  `json:"last_run,omitempty"`
}

// Handler serves the task API for m:
//
//	GET  /v1/tasks                              every task instance, with its last run
//	POST /v1/tasks/{plug}/exec[?instance=I]     run once: the body is the input;
//	POST /v1/tasks/{plug}/{instance}/exec        query timeout=30s, max_output=BYTES
//	GET  /v1/tasks/{plug}/runs[?instance=I&n=N] the history, newest first
//
// A run answers 200 with a Result whatever its exit code; a plug at its
// max_concurrent with a full queue answers 429 with Retry-After. The
// handler does no authentication: wrap it (RequireBearer, or the web config).
func Handler(m *Manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/tasks", func(w http.ResponseWriter, r *http.Request) {
		out := []TaskInfo{}
		for _, s := range m.Status() {
			out = append(out, TaskInfo{Plug: s.ID.Plug, Instance: s.ID.Instance, Running: s.Running,
				Queued: s.Queued, Schedule: s.Schedule, LastRun: s.LastRun})
		}
		writeJSON(w, http.StatusOK, out)
	})
	exec := func(w http.ResponseWriter, r *http.Request, instance string) {
		q := r.URL.Query()
		req := Request{Plug: r.PathValue("plug"), Instance: instance, Trigger: TriggerCall}
		if req.Instance == "" {
			req.Instance = q.Get("instance")
		}
		if s := q.Get("timeout"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				writeError(w, &InputError{fmt.Sprintf("invalid timeout %q: give a positive duration such as 30s", s)})
				return
			}
			req.Timeout = d
		}
		if s := q.Get("max_output"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				writeError(w, &InputError{fmt.Sprintf("invalid max_output %q: give a positive number of bytes", s)})
				return
			}
			req.MaxOutput = n
		}
		in, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxInput))
		if err != nil {
			writeError(w, &InputError{fmt.Sprintf("read input: %v", err)})
			return
		}
		req.Input = in
		res, err := m.Exec(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
	mux.HandleFunc("POST /v1/tasks/{plug}/exec", func(w http.ResponseWriter, r *http.Request) { exec(w, r, "") })
	mux.HandleFunc("POST /v1/tasks/{plug}/{instance}/exec", func(w http.ResponseWriter, r *http.Request) {
		exec(w, r, r.PathValue("instance"))
	})
	mux.HandleFunc("GET /v1/tasks/{plug}/runs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n := 0
		if s := q.Get("n"); s != "" {
			var err error
			if n, err = strconv.Atoi(s); err != nil {
				writeError(w, &InputError{fmt.Sprintf("invalid n %q", s)})
				return
			}
		}
		runs, err := m.Runs(r.PathValue("plug"), q.Get("instance"), n)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, runs)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ToAPIError maps an error of Manager to its HTTP status and the body every
// channel (HTTP, MQTT) answers with.
func ToAPIError(err error) (int, *APIError) {
	var busy *BusyError
	var in *InputError
	switch {
	case errors.As(err, &busy):
		secs := int((busy.RetryAfter + time.Second - 1) / time.Second)
		return http.StatusTooManyRequests, &APIError{Kind: "busy", Message: err.Error(), RetryAfter: secs}
	case errors.As(err, &in):
		return http.StatusBadRequest, &APIError{Kind: "input", Message: err.Error()}
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, &APIError{Kind: "not_found", Message: err.Error()}
	default:
		return http.StatusServiceUnavailable, &APIError{Kind: "env", Message: err.Error()}
	}
}

func writeError(w http.ResponseWriter, err error) {
	code, e := ToAPIError(err)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, code, e)
}
