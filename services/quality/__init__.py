"""Quality and statistics: samples and the alert rule, QualityService, statistics, rollups."""
