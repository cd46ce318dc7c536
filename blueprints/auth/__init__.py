"""Auth: exchange an API key for a short-lived browser token; who am I."""
