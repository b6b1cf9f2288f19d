package natsq

import "time"

// SetPlacementRetryFor sets how long Setup retries a transient placement
// error, until the returned function restores it.
func SetPlacementRetryFor(d time.Duration) (restore func()) {
	old := placementRetryFor
	placementRetryFor = d
	return func() { placementRetryFor = old }
}
