package natsq_test

import (
	"context"
	"fmt"
	"log"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/workpool-go/workpool"
	"github.com/workpool-go/workpool/natsq"
	"github.com/workpool-go/workpool/natsq/embedded"
)

type Email struct {
	To string `json:"to"`
}

func Example() {
	srv, err := embedded.Start(embedded.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	cons, err := natsq.Setup(ctx, js, natsq.QueueConfig{
		Stream: "EMAILS", Subjects: []string{"emails.>"}, Consumer: "senders",
	})
	if err != nil {
		log.Fatal(err)
	}

	p, err := natsq.NewProducer[Email](js, "emails.welcome")
	if err != nil {
		log.Fatal(err)
	}
	for _, to := range []string{"ada@example.com", "bob@example.com", "ada@example.com"} {
		// The message ID dedupes: the second welcome for ada is dropped.
		if _, err := p.Enqueue(ctx, "welcome:"+to, Email{To: to}); err != nil {
			log.Fatal(err)
		}
	}

	var mu sync.Mutex
	var sent []string
	var wg sync.WaitGroup
	wg.Add(2)
	c, err := natsq.NewConsumer(js, cons, func(ctx context.Context, m natsq.Message[Email]) error {
		mu.Lock()
		sent = append(sent, fmt.Sprintf("%s (attempt %d)", m.Value.To, m.Attempt))
		mu.Unlock()
		wg.Done()
		return nil
	}, natsq.WithPoolOptions(workpool.WithWorkers(2)))
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- c.Run(runCtx) }()
	wg.Wait()
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	slices.Sort(sent)
	for _, s := range sent {
		fmt.Println(s)
	}
	fmt.Println("acked:", c.Stats().Acked)
	// Output:
	// ada@example.com (attempt 1)
	// bob@example.com (attempt 1)
	// acked: 2
}
