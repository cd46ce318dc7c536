"""The browser pages: the agent console (/) and the supervisor wallboard (/wallboard)."""
