"""Transcripts of recorded calls: speech recognition, sentiment, talk figures, phrases."""
