"""Full screens of the TUI: chat, help, and the panes (threads, timeline, spill, settings)."""
