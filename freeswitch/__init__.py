"""Everything that speaks to FreeSWITCH; it imports nothing from the HTTP layer."""
