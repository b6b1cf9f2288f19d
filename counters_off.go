//go:build !workpool_counters

package workpool

// Without -tags workpool_counters the dispatch counters are empty and their
// methods compile to nothing (see counters_on.go).

type workerCounts struct{}

func (*workerCounts) failedPop()  {}
func (*workerCounts) yielded()    {}
func (*workerCounts) parked()     {}
func (*workerCounts) polledTail() {}

type poolCounts struct{}

func (*poolCounts) wokeWorker()    {}
func (*poolCounts) submitYielded() {}
func (*poolCounts) submitParked()  {}

func (p *Pool[T]) mechanism() (dispatchCounts, bool) { return dispatchCounts{}, false }

type ringCounts struct{}

func (*ringCounts) lost(int) {}
