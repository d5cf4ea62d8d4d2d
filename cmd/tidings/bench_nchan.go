package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// The bench runs its scenarios against Nchan (nginx's pub/sub module, in
// memory) the same way as against Tidings, so that bench/compare.sh can put
// both side by side: the held connections subscribe to one channel, as
// Tidings' are one user's; publishes go to /pub/<channel>. Nchan keeps no
// database, so its publishes are not durable.

// startNchan uses the running nginx; its memory is that of the master and
// its workers.
func (b *bench) startNchan() (stop func(), err error) {
	data, err := os.ReadFile(b.cfg.nchanPIDFile)
	if err != nil {
		return nil, fmt.Errorf("--nchan-pid-file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("--nchan-pid-file %s holds no pid", b.cfg.nchanPIDFile)
	}
	b.url, b.pid = strings.TrimSuffix(b.cfg.nchan, "/"), pid
	return func() {}, nil
}

// nchanRSS is the resident memory of nginx's master and its children.
func nchanRSS(master int) int64 {
	total := rssOf(master)
	children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", master, master))
	for _, f := range strings.Fields(string(children)) {
		if pid, err := strconv.Atoi(f); err == nil {
			total += rssOf(pid)
		}
	}
	return total
}

func rssOf(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func (b *bench) nchanPublish(ctx context.Context, channel, text string) error {
	req, err := http.NewRequestWithContext(ctx, "POST", b.url+"/pub/"+channel, strings.NewReader(text))
	if err != nil {
		return err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("nchan publish: %s", resp.Status)
	}
	return nil
}

// nchanSubscribe opens a subscriber: a long poll for the next message, or
// an event stream.
func (b *bench) nchanSubscribe(ctx context.Context, channel, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", b.url+"/sub/"+channel, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("nchan subscribe: %s", resp.Status)
	}
	return resp, nil
}

// nchanHold holds one subscriber of the idle channel until ctx ends.
func (b *bench) nchanHold(ctx context.Context, transport string) bool {
	switch transport {
	case "poll":
		for ctx.Err() == nil {
			resp, err := b.nchanSubscribe(ctx, "idle", "")
			if err != nil {
				return false
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	case "sse":
		resp, err := b.nchanSubscribe(ctx, "idle", "text/event-stream")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	case "ws":
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.url, "http")+"/sub/idle", nil)
		if err != nil {
			return false
		}
		c.CloseRead(ctx)
		<-ctx.Done()
		c.CloseNow()
	}
	return true
}

// nchanLatency measures publish→delivered for a long poll of the target
// channel, as latency does for Tidings: each poll asks for the next message.
func (b *bench) nchanLatency(ctx context.Context, samples int) (p50, p99, max time.Duration, err error) {
	var d []time.Duration
	for i := range samples {
		answered := make(chan error, 1)
		go func() {
			resp, err := b.nchanSubscribe(ctx, "target", "")
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			answered <- err
		}()
		time.Sleep(2 * time.Millisecond) // the poll is held by then, almost always
		sent := time.Now()
		if err := b.nchanPublish(ctx, "target", fmt.Sprintf("sample %d", i)); err != nil {
			return 0, 0, 0, err
		}
		if err := <-answered; err != nil {
			return 0, 0, 0, err
		}
		d = append(d, time.Since(sent))
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100], d[len(d)-1], nil
}
