package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// With --target nchan the bench runs its scenarios against Nchan (nginx's
// pub/sub module, in memory, configured by bench/compare.sh from
// bench/nchan.conf.in) the same way as against Tidings, so that both can be
// put side by side: the held connections subscribe to one channel, as
// Tidings' are one user's, at /sub/<channel> (long poll), /sse/<channel>
// (EventSource) or /ws/<channel> (WebSocket); publishes go to
// /pub/<channel>. Nchan keeps no database, so its publishes are not durable.

func (b *bench) nchan() bool { return b.cfg.target == "nchan" }

// empty reports whether the bench measures bench/empty, which answers
// Tidings' publishes at once.
func (b *bench) empty() bool { return b.cfg.target == "empty" }

func (b *bench) nchanPublish(ctx context.Context, channel, text string) error {
	_, err := b.nchanPublishAt(ctx, channel, text)
	return err
}

// nchanPublishAt publishes and returns the cursor of the message published.
func (b *bench) nchanPublishAt(ctx context.Context, channel, text string) (nchanCursor, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", b.url+"/pub/"+channel, strings.NewReader(text))
	if err != nil {
		return nchanCursor{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return nchanCursor{}, err
	}
	defer resp.Body.Close()
	// 201 when the channel has subscribers, 202 when it has none.
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		io.Copy(io.Discard, resp.Body)
		return nchanCursor{}, fmt.Errorf("nchan publish: %s", resp.Status)
	}
	var info struct {
		LastMessageID string `json:"last_message_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nchanCursor{}, fmt.Errorf("nchan publish: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	return parseNchanMessageID(info.LastMessageID)
}

// parseNchanMessageID makes a cursor of a message id such as
// "1796221279:1": the message's time in seconds, and its Etag.
func parseNchanMessageID(id string) (nchanCursor, error) {
	secs, tag, ok := strings.Cut(id, ":")
	t, err := strconv.ParseInt(secs, 10, 64)
	if _, err2 := strconv.Atoi(tag); !ok || err != nil || err2 != nil {
		return nchanCursor{}, fmt.Errorf("nchan publish: %q is not a message id", id)
	}
	return nchanCursor{time.Unix(t, 0).UTC().Format(http.TimeFormat), tag}, nil
}

// nchanCursor is where a long poll of Nchan stands: the Last-Modified and
// Etag of the last message it was given. Sent back as If-Modified-Since and
// If-None-Match, they ask for the message after it, even one published
// before the poll arrived; the zero cursor asks for the next one published.
type nchanCursor struct{ lastModified, etag string }

// nchanSubscribe opens a subscriber of a channel: kind is "sub" (a long
// poll from cursor), "sse" (an event stream) or "ws".
func (b *bench) nchanSubscribe(ctx context.Context, kind, channel string, cursor ...nchanCursor) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", b.url+"/"+kind+"/"+channel, nil)
	if err != nil {
		return nil, err
	}
	if kind == "sse" {
		req.Header.Set("Accept", "text/event-stream")
	}
	if len(cursor) > 0 && cursor[0].lastModified != "" {
		req.Header.Set("If-Modified-Since", cursor[0].lastModified)
		req.Header.Set("If-None-Match", cursor[0].etag)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("nchan subscribe to /%s/%s: %s", kind, channel, resp.Status)
	}
	return resp, nil
}

// nchanHold holds one subscriber of the idle channel until ctx ends; false
// if it could not.
func (b *bench) nchanHold(ctx context.Context, transport string) bool {
	switch transport {
	case "poll":
		var cursor nchanCursor
		for ctx.Err() == nil {
			resp, err := b.nchanSubscribe(ctx, "sub", "idle", cursor)
			if err != nil {
				return false
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			cursor = nchanCursor{resp.Header.Get("Last-Modified"), resp.Header.Get("Etag")}
		}
	case "sse":
		resp, err := b.nchanSubscribe(ctx, "sse", "idle")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	case "ws":
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.url, "http")+"/ws/idle", nil)
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
// channel, as latency does for Tidings: each poll asks for the message
// after the last one it was given.
func (b *bench) nchanLatency(ctx context.Context, samples int) (p50, p99, max time.Duration, err error) {
	// The poll after the start marker is answered by the first sample, even
	// if it reaches nginx after the sample does.
	cursor, err := b.nchanPublishAt(ctx, "target", "start")
	if err != nil {
		return 0, 0, 0, err
	}
	return b.sampleLatency(ctx, samples, func(host string) []byte {
		return fmt.Appendf(nil, "GET /sub/target HTTP/1.1\r\nHost: %s\r\nIf-Modified-Since: %s\r\nIf-None-Match: %s\r\n\r\n",
			host, cursor.lastModified, cursor.etag)
	}, func(resp *http.Response, body []byte) error {
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("nchan subscribe to /sub/target: %s, %.200s", resp.Status, body)
		}
		cursor = nchanCursor{resp.Header.Get("Last-Modified"), resp.Header.Get("Etag")}
		return nil
	})
}
