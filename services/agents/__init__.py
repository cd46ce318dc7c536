"""The agents domain: agents, their state machine, phones and the `agents` channel."""
