"""The declaration zone (一体化申报平台): funding programs, their notices, the staff-
written guide to the 高精尖 platform, and the short links that point at it."""
