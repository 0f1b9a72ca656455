"""Declarations (申报书): what a certified enterprise files for a program, its
attachments, and the review that staff carry out on it."""
