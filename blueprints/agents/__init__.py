"""The agents resource: agents, their state actions and their state trail."""
