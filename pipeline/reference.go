package pipeline

// Reference returns the config reference in Markdown, generated from the
// config declarations and the registered component kinds.
func Reference() string { return "" }
