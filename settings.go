package tidings

import "context"

// Settings are a user's notification preferences.
type Settings struct {
	Records             bool    `json:"records"`
	Presence            bool    `json:"presence"`
	Reminders           bool    `json:"reminders"`
	Messages            bool    `json:"messages"`
	MutedProjects       []int64 `json:"muted_projects"`
	ReminderLeadMinutes int     `json:"reminder_lead_minutes"`
}

// MaxReminderLeadMinutes bounds the reminder lead time (one week).
const MaxReminderLeadMinutes = 7 * 24 * 60

// Wants reports whether the settings let a message of the given kind about
// the given project (0 for none) through.
func (s *Settings) Wants(kind string, projectID int64) bool {
	switch kind {
	case KindRecords:
		if !s.Records {
			return false
		}
	case KindPresence:
		if !s.Presence {
			return false
		}
	case KindReminders:
		if !s.Reminders {
			return false
		}
	case KindMessages:
		if !s.Messages {
			return false
		}
	}
	if projectID != 0 {
		for _, id := range s.MutedProjects {
			if id == projectID {
				return false
			}
		}
	}
	return true
}

// SettingsUpdate changes the fields that are set.
type SettingsUpdate struct {
	Records             *bool
	Presence            *bool
	Reminders           *bool
	Messages            *bool
	MutedProjects       *[]int64
	ReminderLeadMinutes *int
}

// Validate checks the values of an update.
func (u *SettingsUpdate) Validate() error {
	if u.ReminderLeadMinutes != nil && (*u.ReminderLeadMinutes < 0 || *u.ReminderLeadMinutes > MaxReminderLeadMinutes) {
		return Invalidf("reminder_lead_minutes", "Reminder lead must be between 0 and %d minutes.", MaxReminderLeadMinutes)
	}
	if u.MutedProjects != nil {
		for _, id := range *u.MutedProjects {
			if id <= 0 {
				return Invalidf("muted_projects", "Project id %d is not valid.", id)
			}
		}
	}
	return nil
}

// SettingsService reads and changes the caller's settings.
type SettingsService interface {
	// FindSettings returns the caller's settings.
	FindSettings(ctx context.Context) (*Settings, error)

	// UpdateSettings changes the caller's settings and returns them whole.
	// EINVALID; muting a project the caller does not belong to is ENOTFOUND.
	UpdateSettings(ctx context.Context, upd SettingsUpdate) (*Settings, error)
}
