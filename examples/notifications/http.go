package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/workpool-go/workpool"
)

// maxBody bounds a request body: a notification is small.
const maxBody = 64 << 10

// routes returns the service's handler.
func routes(pools *channelPools, metrics http.Handler, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /notify", &notifyHandler{pools: pools, log: logger})
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !pools.IsRunning() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

// notifyHandler accepts a notification and submits it to its channel's pool
// without blocking: when the queue is full the client is told to retry
// later, so a burst costs a 503 rather than unbounded memory or a hung
// request.
type notifyHandler struct {
	pools  *channelPools
	log    *slog.Logger
	nextID atomic.Uint64
}

func (h *notifyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := decodeNotification(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	n.ID = h.nextID.Add(1)

	switch err := h.pools.Submit(n); {
	case err == nil:
		h.log.Debug("notification accepted", "id", n.ID, "user", n.User, "channel", n.Channel)
		writeJSON(w, http.StatusAccepted, map[string]any{"id": n.ID, "status": "accepted"})
	case errors.Is(err, workpool.ErrQueueFull):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "too many notifications queued; retry later")
	case errors.Is(err, workpool.ErrClosed):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "shutting down; retry on another instance")
	default:
		h.log.Error("submit failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// decodeNotification reads one JSON notification and checks its fields. Its
// errors are meant for the client.
func decodeNotification(w http.ResponseWriter, r *http.Request) (Notification, error) {
	var n Notification
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return n, fmt.Errorf("request body is larger than %d bytes", tooLarge.Limit)
		case errors.Is(err, io.EOF):
			return n, errors.New(`request body is empty; want JSON {"user", "channel", "message"}`)
		}
		return n, fmt.Errorf("request body is not a valid JSON notification: %v", err)
	}
	if dec.More() {
		return n, errors.New("request body has data after the JSON object")
	}
	if n.ID != 0 {
		return n, errors.New(`"id" is assigned by the server`)
	}
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"user", n.User}, {"channel", n.Channel}, {"message", n.Message},
	} {
		if strings.TrimSpace(f.value) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return n, fmt.Errorf("missing required fields: %s", strings.Join(missing, ", "))
	}
	if !slices.ContainsFunc(channels, func(ch channel) bool { return ch.name == n.Channel }) {
		return n, fmt.Errorf("channel %q is not one of %s", n.Channel, channelNames())
	}
	return n, nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is sent; a failed write means the client went away.
	_ = json.NewEncoder(w).Encode(v)
}
