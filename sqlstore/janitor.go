package sqlstore

import (
	"context"
	"time"
)

// janitorBatch bounds the rows one janitor write deletes, so that it never
// holds the writer for long.
const janitorBatch = 5000

// Swept counts what one janitor run deleted.
type Swept struct {
	Messages int64
	Events   int64
	Pending  int64
	Sessions int64
}

// DeleteExpired removes expired messages, the events that no message needs
// any more, expired sessions and scheduled messages that can no longer be
// delivered. Every delete goes through an index on the expiry time.
func (db *DB) DeleteExpired(ctx context.Context) (Swept, error) {
	var total Swept
	steps := []struct {
		query string
		count *int64
	}{
		{`DELETE FROM messages WHERE (user_id, seq) IN (SELECT user_id, seq FROM messages WHERE valid_until <= ? LIMIT ?)`, &total.Messages},
		{`DELETE FROM events WHERE id IN (SELECT id FROM events WHERE expires_at <= ? LIMIT ?)`, &total.Events},
		{`DELETE FROM pending WHERE id IN (SELECT id FROM pending WHERE valid_until <= ? LIMIT ?)`, &total.Pending},
		{`DELETE FROM sessions WHERE hash IN (SELECT hash FROM sessions WHERE expires_at <= ? LIMIT ?)`, &total.Sessions},
	}
	for _, step := range steps {
		for {
			var n int64
			err := db.write(ctx, func(tx *Tx) error {
				res, err := tx.exec(step.query, ms(tx.now), janitorBatch)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return total, err
			}
			*step.count += n
			if n < janitorBatch {
				break
			}
		}
	}
	return total, nil
}

// RunJanitor deletes expired rows every interval until ctx ends.
func (db *DB) RunJanitor(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		swept, err := db.DeleteExpired(ctx)
		if err != nil {
			if ctx.Err() == nil {
				db.Logger.Error("janitor", "err", err)
			}
			continue
		}
		if swept != (Swept{}) {
			db.Logger.Debug("janitor", "messages", swept.Messages, "events", swept.Events, "pending", swept.Pending, "sessions", swept.Sessions)
		}
	}
}
