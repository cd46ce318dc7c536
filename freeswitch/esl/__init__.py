"""freeswitch/esl."""
