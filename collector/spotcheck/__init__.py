"""Live spot checks: devices picked from an auditor's seed and read now."""
