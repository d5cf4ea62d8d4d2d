package tidings

import (
	"strings"
	"unicode/utf8"
)

// Limits of the text fields of items.
const (
	MaxTitleLength = 200   // characters of a title
	MaxTextLength  = 20000 // characters of a description or a note's body
)

// validateTitle trims a title and checks that it is there and not too long.
func validateTitle(title *string) error {
	*title = strings.TrimSpace(*title)
	if *title == "" {
		return Invalidf("title", "Title is required.")
	}
	if utf8.RuneCountInString(*title) > MaxTitleLength {
		return Invalidf("title", "Title must have at most %d characters.", MaxTitleLength)
	}
	return nil
}

// validateText checks the length of a long text field.
func validateText(field, label, text string) error {
	if utf8.RuneCountInString(text) > MaxTextLength {
		return Invalidf(field, "%s must have at most %d characters.", label, MaxTextLength)
	}
	return nil
}
